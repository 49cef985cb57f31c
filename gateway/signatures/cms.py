"""Detached CMS / PKCS#7 signatures (``.p7s``) over an attachment, and the CMS core of PAdES.

The content is hashed in chunks from a stream, so a large attachment is never held twice.
Integrity (message digest, signature value, the ESS signing-certificate attribute) is
checked with pyHanko's ``validate_sig_integrity``; trust is judged by ``verify`` like every
other format. Attached (enveloping) ``.p7m`` signatures are out of scope: an attachment
carrying one is reported as ``malformed_signature``, not silently skipped.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import IO, Any

from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped]
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.general import CMSStructuralError
from pyhanko.sign.validation import errors as pyhanko_errors
from pyhanko.sign.validation import generic_cms

from gateway.signatures.integrity import Integrity, TimestampEvidence, hash_algorithm
from gateway.signatures.result import SignatureKind, reason

CHUNK = 1 << 20


def load_signed_data(signature: bytes) -> Any:
    """The ``SignedData`` of a DER or PEM (``-----BEGIN PKCS7-----``/``CMS``) signature."""
    data = signature
    if signature.lstrip().startswith(b"-----BEGIN"):  # never strip DER: its last byte may be 0x20
        lines = [line for line in signature.strip().splitlines() if not line.startswith(b"-----")]
        data = base64.b64decode(b"".join(lines))
    info = asn1_cms.ContentInfo.load(data)
    if info["content_type"].native != "signed_data":
        raise ValueError(f"not a CMS SignedData but {info['content_type'].native}")
    signed_data = info["content"]
    _ = signed_data.native  # force a full parse now: malformed input fails here, not later
    return signed_data


def to_cryptography(cert: Any) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


def _certificates(signed_data: Any) -> list[Any]:
    return [c.chosen for c in signed_data["certificates"] or [] if c.name == "certificate"]


def _signer_certificate(signed_data: Any, signer_info: Any) -> Any | None:
    sid = signer_info["sid"]
    for cert in _certificates(signed_data):
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                cert.serial_number == wanted["serial_number"].native
                and cert.issuer == wanted["issuer"]
            ):
                return cert
        elif sid.name == "subject_key_identifier" and cert.key_identifier == sid.chosen.native:
            return cert
    return None


def signer_integrity(
    signed_data: Any,
    signer_info: Any,
    digest_of: Callable[[str], bytes],
    *,
    kind: SignatureKind,
    target: str,
    expected_content_type: str = "data",
) -> Integrity:
    """Integrity of one SignerInfo; ``digest_of(algorithm)`` hashes the signed content."""
    result = Integrity(kind=kind, target=target)
    md_algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
    signature_algorithm = signer_info["signature_algorithm"]
    result.signature_algorithm = _signature_name(signature_algorithm, md_algorithm)
    result.digest_algorithms = [md_algorithm]
    result.claimed_time = generic_cms.extract_self_reported_ts(signer_info)
    cert = _signer_certificate(signed_data, signer_info)
    others = [c for c in _certificates(signed_data) if c is not cert]
    result.extra_certs = [to_cryptography(c) for c in others]
    if cert is None:
        result.reasons.append(reason("signer_certificate_missing"))
        return result
    result.signer = to_cryptography(cert)
    try:
        digest = digest_of(md_algorithm)
    except (ValueError, NotImplementedError, AttributeError):
        result.reasons.append(reason("unsupported_algorithm", detail=f"digest {md_algorithm}"))
        return result
    try:
        intact, valid = generic_cms.validate_sig_integrity(
            signer_info, cert, expected_content_type=expected_content_type, actual_digest=digest
        )
    except (pyhanko_errors.SignatureValidationError, CMSStructuralError) as exc:
        # e.g. the signing-certificate attribute names another certificate (a swap)
        result.reasons.append(reason("bad_signature", detail=str(exc.failure_message)))
        return result
    except (NotImplementedError, ValueError, KeyError) as exc:
        result.reasons.append(
            reason("unsupported_algorithm", detail=f"{result.signature_algorithm}: {exc}")
        )
        return result
    if not valid:
        result.reasons.append(reason("bad_signature", detail="CMS signature value"))
    elif not intact:
        result.reasons.append(reason("digest_mismatch", detail="CMS message digest"))
    for token in generic_cms.extract_tst_data_iter(signer_info, signed=False):
        result.timestamps.append(
            TimestampEvidence(token=token, imprint_data=signer_info["signature"].native)
        )
    return result


def _signature_name(signature_algorithm: Any, md_algorithm: str) -> str:
    name = str(signature_algorithm["algorithm"].native)
    family = {
        "rsassa_pkcs1v15": "rsa",
        "rsassa_pss": "rsa-pss",
        "ecdsa": "ecdsa",
        "dsa": "dsa",
        "ed25519": "ed25519",
        "ed448": "ed448",
    }
    try:
        algo = str(signature_algorithm.signature_algo)
    except ValueError:
        return name
    if algo in ("ed25519", "ed448"):
        return algo
    try:
        hash_algo = str(signature_algorithm.hash_algo)
    except ValueError:
        hash_algo = md_algorithm
    return f"{family.get(algo, algo)}-{hash_algo}"


def stream_digest(content: bytes | IO[bytes], algorithm: str) -> bytes:
    """Hash bytes or a binary stream in chunks (the stream is rewound first if it can be)."""
    md = hashes.Hash(hash_algorithm(algorithm))
    if isinstance(content, bytes | bytearray | memoryview):
        md.update(bytes(content))
        return md.finalize()
    if content.seekable():
        content.seek(0)
    while chunk := content.read(CHUNK):
        md.update(chunk)
    return md.finalize()


def check_detached(content: bytes | IO[bytes], signature: bytes, target: str) -> list[Integrity]:
    """Each signer of a detached CMS signature over ``content``."""
    try:
        signed_data = load_signed_data(signature)
    except (ValueError, TypeError, KeyError) as exc:
        broken = Integrity(kind="cms", target=target)
        broken.reasons.append(reason("malformed_signature", detail=f"not a CMS signature: {exc}"))
        return [broken]
    if signed_data["encap_content_info"]["content"] is not asn1_core.VOID:
        broken = Integrity(kind="cms", target=target)
        broken.reasons.append(
            reason("malformed_signature", detail="an enveloping signature, not a detached one")
        )
        return [broken]
    if isinstance(content, bytes | bytearray):
        content = io.BytesIO(content)
    digests: dict[str, bytes] = {}

    def digest_of(algorithm: str) -> bytes:
        if algorithm not in digests:
            digests[algorithm] = stream_digest(content, algorithm)
        return digests[algorithm]

    signer_infos = list(signed_data["signer_infos"])
    if not signer_infos:
        broken = Integrity(kind="cms", target=target)
        broken.reasons.append(reason("malformed_signature", detail="no SignerInfo"))
        return [broken]
    return [
        signer_integrity(signed_data, info, digest_of, kind="cms", target=target)
        for info in signer_infos
    ]
