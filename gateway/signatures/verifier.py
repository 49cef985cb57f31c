"""Dispatch: an edXML document, a PDF, or content with a detached signature -> one result.

Format modules check the cryptography (``Integrity``); ``assess`` judges each signer the
same way for every format: trusted time, path to an anchor, revocation, algorithm policy.
CPU-heavy parts (parsing, canonicalisation, hashing of large documents) run in a worker
thread so a 5 MB document does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import binascii
import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, BinaryIO, Protocol, TypeVar

from lxml import etree

from adapters import bodies
from gateway.signatures import cms, pades, xmldsig
from gateway.signatures.integrity import Integrity, algorithm_reasons
from gateway.signatures.policy import SignaturePolicy
from gateway.signatures.result import (
    CertificateInfo,
    Reason,
    RevocationInfo,
    Severity,
    SignatureDetail,
    Verdict,
    VerificationResult,
    dedupe,
    reason,
    verdict_of,
    worst,
)
from gateway.signatures.revocation import RevocationChecker
from gateway.signatures.timestamps import trusted_time
from gateway.signatures.trust import TrustStore, certificate_info, serial_of, subject_of
from schemas.xmlsafe import UnsafeXml

EDXML = xmldsig.EDXML
OFFLOAD_BYTES = 256 * 1024
DETACHED_TYPES = {"application/pkcs7-signature", "application/x-pkcs7-signature"}
DETACHED_SUFFIXES = (".p7s", ".sig")

T = TypeVar("T")


class UnusableInput(ValueError):
    """Input that cannot be judged at all: not XML/PDF, hostile XML, unreadable PDF.

    ``code`` matches the gateway's problem codes where one exists (``xml_forbidden``,
    ``malformed_body``, ``unsupported_media_type``).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AttachmentLike(Protocol):
    """What ``verify_attachments`` needs; ``schemas.edxml.Attachment`` has this shape."""

    @property
    def name(self) -> str | None: ...

    @property
    def content_type(self) -> str | None: ...

    def open(self) -> BinaryIO: ...


@dataclass
class Attachment:
    """An attachment decoded from (signed) edXML."""

    name: str
    content_type: str
    data: bytes

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


async def _cpu(function: Callable[..., T], *args: object, size: int) -> T:
    if size > OFFLOAD_BYTES:
        return await asyncio.to_thread(function, *args)
    return function(*args)


def _read(data: bytes | IO[bytes]) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    return data.read()


def document_kind(data: bytes, media_type: str) -> str:
    """``xml`` or ``pdf``, from the media type, else from the first bytes."""
    base = bodies.media_type(media_type)
    if base == "application/pdf":
        return "pdf"
    if base.endswith(("/xml", "+xml")):
        return "xml"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"<"):
        return "xml"
    raise UnusableInput(
        "unsupported_media_type", f"neither XML nor PDF ({media_type or 'no type'})"
    )


async def verify(
    data: bytes | IO[bytes],
    media_type: str,
    *,
    policy: SignaturePolicy,
    trust: TrustStore,
    revocation: RevocationChecker,
    now: dt.datetime | None = None,
) -> VerificationResult:
    """Verify an edXML document (and its attachments) or a PDF; see the package docstring."""
    if policy.mode == "off":
        return VerificationResult(
            verdict="unsigned", accepted=True, media_type=media_type, checked=False
        )
    body = _read(data)
    now = now or dt.datetime.now(dt.UTC)
    if document_kind(body, media_type) == "pdf":
        return await verify_pdf(body, policy=policy, trust=trust, revocation=revocation, now=now)
    return await verify_edxml(body, policy=policy, trust=trust, revocation=revocation, now=now)


async def verify_edxml(
    body: bytes,
    *,
    policy: SignaturePolicy,
    trust: TrustStore,
    revocation: RevocationChecker,
    now: dt.datetime,
    media_type: str = "application/xml",
) -> VerificationResult:
    try:
        root = await _cpu(xmldsig.parse, body, size=len(body))
    except UnsafeXml as exc:
        raise UnusableInput("xml_forbidden", str(exc)) from None
    except etree.XMLSyntaxError as exc:
        raise UnusableInput("malformed_body", f"not well-formed XML: {exc}") from None
    signatures = xmldsig.find_signatures(root)
    details: list[SignatureDetail] = []
    extra: list[Reason] = []
    signed_content: bytes | None = None
    # What is read from a signed document is what its signature proved, or nothing.
    source_root: etree._Element | None = None if signatures else root
    if len(signatures) > 1:
        broken = Integrity(kind="xmldsig", target="edXML")
        broken.reasons.append(
            reason(
                "malformed_signature", detail=f"{len(signatures)} Signature elements; one expected"
            )
        )
        details.append(
            await assess(broken, policy=policy, trust=trust, revocation=revocation, now=now)
        )
    elif signatures:
        checked = await _cpu(xmldsig.check, body, root, signatures[0], now, size=len(body))
        details.append(
            await assess(
                checked.integrity, policy=policy, trust=trust, revocation=revocation, now=now
            )
        )
        signed_content = checked.integrity.signed_content
        source_root = checked.signed_root
    elif root.tag != f"{{{EDXML}}}edXML":
        extra.append(reason("not_edxml", "warning", f"the root element is {root.tag}"))
    attachment_details: list[SignatureDetail] = []
    if policy.attachments and source_root is not None:
        attachment_details, unreadable = await verify_attachments(
            edxml_attachments(source_root),
            policy=policy,
            trust=trust,
            revocation=revocation,
            now=now,
        )
        extra += unreadable
    return _result(media_type, details, attachment_details, extra, signed_content, policy)


async def verify_pdf(
    body: bytes,
    *,
    policy: SignaturePolicy,
    trust: TrustStore,
    revocation: RevocationChecker,
    now: dt.datetime,
) -> VerificationResult:
    try:
        checked = await _cpu(pades.check_pdf, body, size=len(body))
    except pades.UnreadablePdf as exc:
        raise UnusableInput("malformed_body", str(exc)) from None
    details = list(
        await asyncio.gather(
            *(
                assess(i, policy=policy, trust=trust, revocation=revocation, now=now)
                for i in checked
            )
        )
    )
    content = None
    for integrity, detail in zip(checked, details, strict=True):
        signed = integrity.signed_content
        valid = detail.verdict in ("valid", "valid_with_warnings")
        if valid and signed and (content is None or len(signed) > len(content)):
            content = signed  # the latest signed revision
    return _result("application/pdf", details, [], [], content, policy)


async def verify_detached(
    content: bytes | IO[bytes],
    signature: bytes,
    *,
    name: str = "content",
    policy: SignaturePolicy,
    trust: TrustStore,
    revocation: RevocationChecker,
    now: dt.datetime | None = None,
) -> VerificationResult:
    """A detached CMS/PKCS#7 signature over ``content`` (streamed, hashed in chunks)."""
    now = now or dt.datetime.now(dt.UTC)
    size = len(content) if isinstance(content, bytes) else OFFLOAD_BYTES + 1
    checked = await _cpu(cms.check_detached, content, signature, name, size=size)
    details = [
        await assess(i, policy=policy, trust=trust, revocation=revocation, now=now) for i in checked
    ]
    valid = all(d.verdict in ("valid", "valid_with_warnings") for d in details)
    signed = _read(content) if valid and isinstance(content, bytes) else None
    return _result("application/pkcs7-signature", details, [], [], signed, policy)


async def verify_attachments(
    attachments: Iterable[AttachmentLike],
    *,
    policy: SignaturePolicy,
    trust: TrustStore,
    revocation: RevocationChecker,
    now: dt.datetime,
) -> tuple[list[SignatureDetail], list[Reason]]:
    """PAdES signatures in PDF attachments and detached CMS signatures next to their files.

    A detached signature pairs with the attachment whose name it extends (``a.pdf.p7s`` for
    ``a.pdf``) or shares a stem with (``a.p7s`` for ``a.pdf``). Returns the details and
    findings about attachments that could not be read.
    """
    items = list(attachments)
    signatures = [a for a in items if _is_detached(a)]
    files = [a for a in items if not _is_detached(a)]
    integrities: list[Integrity] = []
    notes: list[Reason] = []
    for item in files:
        if not _is_pdf(item):
            continue
        with item.open() as stream:
            data = stream.read()
        if not data.lstrip()[:1024].startswith(b"%PDF-"):
            continue
        try:
            found = await _cpu(pades.check_pdf, data, size=len(data))
        except pades.UnreadablePdf as exc:
            notes.append(
                reason("malformed_signature", "warning", f"attachment {_name(item)}: {exc}")
            )
            continue
        for integrity in found:
            integrity.target = f"attachment:{_name(item)} ({integrity.target})"
            integrity.signed_content = None  # the document's own signed content is what counts
        integrities.extend(found)
    for sig in signatures:
        target = f"attachment:{_name(sig)}"
        partner = _partner(sig, files)
        with sig.open() as stream:
            signature_bytes = stream.read()
        if partner is None:
            lonely = Integrity(kind="cms", target=target)
            lonely.reasons.append(reason("detached_content_missing", detail=_name(sig)))
            integrities.append(lonely)
            continue
        with partner.open() as stream:
            checked = await _cpu(
                cms.check_detached,
                stream,
                signature_bytes,
                f"attachment:{_name(partner)} (signature {_name(sig)})",
                size=OFFLOAD_BYTES + 1,
            )
        integrities.extend(checked)
    details = list(
        await asyncio.gather(
            *(
                assess(i, policy=policy, trust=trust, revocation=revocation, now=now)
                for i in integrities
            )
        )
    )
    return details, notes


def edxml_attachments(root: etree._Element) -> list[Attachment]:
    """``AttachmentEncoded/Attachment`` entries decoded from base64 (QCVN 102:2016)."""
    found = []
    for element in root.iter(f"{{{EDXML}}}Attachment", "Attachment"):
        namespace = etree.QName(element).namespace
        prefix = f"{{{namespace}}}" if namespace else ""
        encoded = element.findtext(f"{prefix}ContentTransferEncoded")
        if encoded is None:
            continue
        try:
            data = binascii.a2b_base64(encoded)
        except binascii.Error:
            continue
        found.append(
            Attachment(
                name=(element.findtext(f"{prefix}AttachmentName") or "").strip(),
                content_type=(element.findtext(f"{prefix}ContentType") or "").strip().lower(),
                data=data,
            )
        )
    return found


def _name(item: AttachmentLike) -> str:
    return item.name or ""


def _is_detached(item: AttachmentLike) -> bool:
    content_type = (item.content_type or "").lower()
    return content_type in DETACHED_TYPES or _name(item).lower().endswith(DETACHED_SUFFIXES)


def _is_pdf(item: AttachmentLike) -> bool:
    content_type = (item.content_type or "").lower()
    return content_type == "application/pdf" or _name(item).lower().endswith(".pdf")


def _partner(signature: AttachmentLike, files: list[AttachmentLike]) -> AttachmentLike | None:
    name = _name(signature)
    for suffix in DETACHED_SUFFIXES:
        if name.lower().endswith(suffix):
            base = name[: -len(suffix)]
            for item in files:
                if _name(item) == base:
                    return item
            stem = base.rsplit(".", 1)[0]
            for item in files:
                if _name(item).rsplit(".", 1)[0] == stem:
                    return item
    return None


async def assess(
    integrity: Integrity,
    *,
    policy: SignaturePolicy,
    trust: TrustStore,
    revocation: RevocationChecker,
    now: dt.datetime,
) -> SignatureDetail:
    """Judge one signature's signer: trusted time, path, revocation, algorithms."""
    reasons = list(integrity.reasons)
    reasons += algorithm_reasons(
        integrity.signature_algorithm,
        integrity.digest_algorithms,
        integrity.signer,
        policy.algorithms,
    )
    time_used, source = now, "verification_time"
    authority = None
    chain: list[CertificateInfo] = []
    infos: list[RevocationInfo] = []
    if integrity.intact and integrity.signer is not None:
        if integrity.timestamps:
            trusted = await trusted_time(
                integrity.timestamps, trust=trust, revocation=revocation, policy=policy, now=now
            )
            reasons += trusted.reasons
            if trusted.time is not None:
                time_used, source, authority = trusted.time, "timestamp", trusted.authority
        path = trust.build_path(
            integrity.signer,
            integrity.extra_certs,
            at=time_used,
            usage="signing",
            algorithms=policy.algorithms,
        )
        reasons += path.reasons
        if path.trusted:
            chain = [certificate_info(c) for c in path.path]
        if path.ok:
            infos, revocation_reasons = await revocation.check_path(
                path.path, at=time_used, mode=policy.revocation
            )
            reasons += revocation_reasons
    found = dedupe(reasons)
    return SignatureDetail(
        kind=integrity.kind,
        target=integrity.target,
        verdict=verdict_of(found),
        reasons=found,
        signer=certificate_info(integrity.signer) if integrity.signer is not None else None,
        chain=chain,
        signature_algorithm=integrity.signature_algorithm,
        digest_algorithm=",".join(dict.fromkeys(integrity.digest_algorithms)),
        time_used=time_used,
        time_source="timestamp" if source == "timestamp" else "verification_time",
        claimed_signing_time=integrity.claimed_time,
        timestamp_authority=authority,
        revocation=infos,
        coverage=integrity.coverage or ("document" if integrity.kind == "xmldsig" else None),
        modifications=integrity.modifications,
    )


def _result(
    media_type: str,
    primary: list[SignatureDetail],
    attachments: list[SignatureDetail],
    notes: list[Reason],
    signed_content: bytes | None,
    policy: SignaturePolicy,
) -> VerificationResult:
    reasons: list[Reason] = []
    for detail in (*primary, *attachments):
        for item in detail.reasons:
            where = detail.target
            reasons.append(
                Reason(
                    code=item.code,
                    severity=item.severity,
                    message_vi=item.message_vi,
                    message_en=item.message_en,
                    detail=f"{where}: {item.detail}" if item.detail else where,
                )
            )
    reasons += notes
    if not primary:
        attachment_verdicts = [d.verdict for d in attachments]
        verdict: Verdict = "invalid" if "invalid" in attachment_verdicts else "unsigned"
        if verdict == "unsigned":
            severity: Severity = "error" if policy.mode == "required" else "warning"
            reasons.insert(0, reason("unsigned", severity))
    else:
        verdict = worst([d.verdict for d in (*primary, *attachments)])
        if verdict != "invalid" and any(r.severity == "warning" for r in notes):
            verdict = "valid_with_warnings"
    accepted = (
        verdict in ("valid", "valid_with_warnings")
        if policy.mode == "required"
        else verdict != "invalid"
    )
    first = primary[0] if primary else None
    return VerificationResult(
        verdict=verdict,
        accepted=accepted,
        media_type=media_type,
        reasons=dedupe(reasons),
        signer_subject=first.signer.subject if first and first.signer else None,
        signer_serial=first.signer.serial if first and first.signer else None,
        time_used=first.time_used if first else None,
        time_source=first.time_source if first else None,
        signatures=[*primary, *attachments],
        signed_content=signed_content if verdict in ("valid", "valid_with_warnings") else None,
    )


__all__ = [
    "Attachment",
    "AttachmentLike",
    "UnusableInput",
    "assess",
    "document_kind",
    "edxml_attachments",
    "serial_of",
    "subject_of",
    "verify",
    "verify_attachments",
    "verify_detached",
    "verify_edxml",
    "verify_pdf",
]
