"""Verification results as data: verdicts, stable reason codes, messages in Vietnamese and English.

Reason codes are part of the API (callers and dashboards branch on them): add, never rename.
Every code has a message in both languages because Circular 15/2025/TT-BKHCN requires
verification software to show its results in Vietnamese, and operators reading English logs
need the same sentence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal
from urllib.parse import quote

import msgspec

Verdict = Literal["valid", "valid_with_warnings", "invalid", "unsigned"]
Severity = Literal["error", "warning"]
TimeSource = Literal["timestamp", "verification_time"]
SignatureKind = Literal["xmldsig", "pades", "cms"]
RevocationState = Literal["good", "revoked", "unknown", "not_checked"]

# code -> (Vietnamese, English). Stable: add, never rename.
MESSAGES: dict[str, tuple[str, str]] = {
    "unsigned": (
        "Tài liệu không có chữ ký số.",
        "The document carries no digital signature.",
    ),
    "digest_mismatch": (
        "Nội dung đã bị thay đổi sau khi ký: giá trị băm không khớp.",
        "The content was changed after signing: the digest does not match.",
    ),
    "bad_signature": (
        "Giá trị chữ ký không khớp với khóa công khai trong chứng thư số của người ký.",
        "The signature value does not verify with the public key of the signer's certificate.",
    ),
    "signer_certificate_missing": (
        "Chữ ký không kèm chứng thư số của người ký.",
        "The signature does not carry the signer's certificate.",
    ),
    "malformed_signature": (
        "Cấu trúc chữ ký số bị lỗi hoặc không được hỗ trợ.",
        "The signature is malformed or uses an unsupported structure.",
    ),
    "unsupported_algorithm": (
        "Chữ ký dùng thuật toán không được hỗ trợ.",
        "The signature uses an unsupported algorithm.",
    ),
    "incomplete_coverage": (
        "Chữ ký không bao phủ toàn bộ tài liệu.",
        "The signature does not cover the whole document.",
    ),
    "nonstandard_namespace": (
        "Phần tử Signature không nằm trong không gian tên XML-DSig; "
        "đã kiểm tra như thể nó thuộc không gian tên XML-DSig.",
        "The Signature element is not in the XML-DSig namespace; it was verified as if it were.",
    ),
    "untrusted_root": (
        "Không xây dựng được đường dẫn tin cậy tới chứng thư gốc đã cấu hình "
        "(ví dụ: Ban Cơ yếu Chính phủ, NEAC).",
        "No trust path to a configured root certificate "
        "(e.g. the Government Cipher Committee or NEAC root).",
    ),
    "invalid_path": (
        "Chuỗi chứng thư số không hợp lệ (ràng buộc CA, độ dài đường dẫn "
        "hoặc chữ ký của tổ chức cấp).",
        "The certificate chain is invalid (CA constraints, path length or an issuer's signature).",
    ),
    "expired": (
        "Chứng thư số đã hết hạn tại thời điểm dùng để kiểm tra.",
        "A certificate had expired at the time used for the check.",
    ),
    "not_yet_valid": (
        "Chứng thư số chưa có hiệu lực tại thời điểm dùng để kiểm tra.",
        "A certificate was not yet valid at the time used for the check.",
    ),
    "revoked": (
        "Chứng thư số đã bị thu hồi hoặc tạm dừng.",
        "A certificate has been revoked or suspended.",
    ),
    "revocation_unknown": (
        "Không xác định được tình trạng thu hồi của chứng thư số "
        "(OCSP và CRL không truy cập được hoặc không hợp lệ).",
        "The revocation status of a certificate could not be established "
        "(OCSP and CRL unreachable or unusable).",
    ),
    "key_usage": (
        "Mục đích sử dụng khóa của chứng thư số không cho phép ký số.",
        "The certificate's key usage does not allow digital signatures.",
    ),
    "weak_algorithm": (
        "Thuật toán yếu: SHA-1, khóa RSA dưới 2048 bit hoặc ECDSA dưới 256 bit.",
        "Weak algorithm: SHA-1, an RSA key under 2048 bits or ECDSA under 256 bits.",
    ),
    "modified_after_signing": (
        "Tệp PDF đã bị sửa đổi sau khi ký.",
        "The PDF was modified after it was signed.",
    ),
    "timestamp_invalid": (
        "Dấu thời gian không hợp lệ hoặc không tin cậy; đã dùng thời điểm kiểm tra.",
        "The timestamp is invalid or untrusted; the verification time was used instead.",
    ),
    "misplaced_signature": (
        "Chữ ký không nằm ở vị trí chuẩn quy định (edXMLEnvelope/edXMLHeader, sau "
        "TraceHeaderList); chữ ký bị di chuyển là dấu hiệu tấn công bọc chữ ký.",
        "The signature is not where the standard puts it (edXMLEnvelope/edXMLHeader, after "
        "TraceHeaderList); a moved signature is the mark of a signature-wrapping attack.",
    ),
    "signature_wrapping": (
        "Phần tử Signature chứa nội dung edXML (ví dụ một MessageHeader trong ds:Object): "
        "đây là một kiểu tấn công bọc chữ ký, tài liệu bị từ chối.",
        "The Signature element holds edXML content (e.g. a MessageHeader in ds:Object): "
        "a signature-wrapping attempt, the document is refused.",
    ),
    "not_edxml": (
        "Tài liệu XML không phải là edXML (phần tử gốc edXML trong không gian tên "
        "http://www.mic.gov.vn/TBT/QCVN_102_2016); chữ ký XML chỉ được kiểm tra trên edXML.",
        "The XML document is not edXML (root element edXML in namespace "
        "http://www.mic.gov.vn/TBT/QCVN_102_2016); XML signatures are verified on edXML only.",
    ),
    "detached_content_missing": (
        "Chữ ký rời không có tệp đính kèm tương ứng.",
        "A detached signature has no matching attachment.",
    ),
}


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """One finding. ``detail`` is technical (which certificate, which algorithm), in English."""

    code: str
    severity: Severity
    message_vi: str
    message_en: str
    detail: str = ""

    def message(self, lang: str = "vi") -> str:
        text = self.message_vi if lang == "vi" else self.message_en
        return f"{text} ({self.detail})" if self.detail else text


def reason(code: str, severity: Severity = "error", detail: str = "") -> Reason:
    """A ``Reason`` with its fixed messages; ``KeyError`` for an unknown code (a bug)."""
    vi, en = MESSAGES[code]
    return Reason(code=code, severity=severity, message_vi=vi, message_en=en, detail=detail)


class CertificateInfo(msgspec.Struct, kw_only=True):
    subject: str
    issuer: str
    serial: str
    """Hexadecimal, upper case, as CAs print it."""
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str
    key: str
    """e.g. ``RSA 2048`` or ``ECDSA secp256r1``."""
    signature_algorithm: str


class RevocationInfo(msgspec.Struct, kw_only=True):
    """What the revocation check found for one certificate of the path, and how."""

    certificate: str
    status: RevocationState
    source: Literal["ocsp", "crl"] | None = None
    url: str | None = None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    from_cache: bool = False
    attempts: list[str] = []
    """Each source tried, in order, and what happened (``ocsp http://…: connection refused``)."""


class SignatureDetail(msgspec.Struct, kw_only=True):
    kind: SignatureKind
    target: str
    """What was signed: ``edXML``, ``attachment:<name>``, or a PDF signature field."""
    verdict: Verdict
    reasons: list[Reason] = []
    signer: CertificateInfo | None = None
    chain: list[CertificateInfo] = []
    """From the signer to the trust anchor, when a path was built."""
    signature_algorithm: str = ""
    digest_algorithm: str = ""
    time_used: dt.datetime
    time_source: TimeSource
    claimed_signing_time: dt.datetime | None = None
    """What the signer said (signingTime, /M): only a claim, never used for checks."""
    timestamp_authority: str | None = None
    revocation: list[RevocationInfo] = []
    coverage: str | None = None
    modifications: str | None = None
    """For PDFs: what incremental updates after signing changed."""


class VerificationResult(msgspec.Struct, kw_only=True):
    """The answer for one document. Read ``signed_content``, never the original bytes."""

    verdict: Verdict
    accepted: bool
    """The verdict judged by the policy's ``mode`` (``required``: only valid ones)."""
    media_type: str
    reasons: list[Reason] = []
    signer_subject: str | None = None
    signer_serial: str | None = None
    time_used: dt.datetime | None = None
    time_source: TimeSource | None = None
    signatures: list[SignatureDetail] = []
    checked: bool = True
    """False when the policy's mode is ``off``: nothing was looked at."""
    signed_content: bytes | None = None
    """What the verification proved signed: the canonical XML without the signature (edXML),
    or the signed revision (PDF). ``None`` unless the verdict is valid or valid with warnings."""

    def record(self) -> str:
        """The whole result as JSON, for the message log (what was proved is not kept twice)."""
        return msgspec.json.encode(msgspec.structs.replace(self, signed_content=None)).decode()

    def summary(self) -> str:
        """One ASCII line for a response header, e.g. ``X-LGSP-Signature``."""
        parts: list[str] = [self.verdict]
        codes = sorted({r.code for r in self.reasons})
        if codes:
            parts.append("reasons=" + ",".join(codes))
        if self.signer_subject is not None:
            parts.append(f'signer="{_header_safe(self.signer_subject)}"')
        if self.signer_serial is not None:
            parts.append(f"serial={self.signer_serial}")
        if self.time_used is not None:
            parts.append("time=" + self.time_used.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            parts.append(f"time_source={self.time_source}")
        return "; ".join(parts)


def _header_safe(text: str) -> str:
    """Percent-encode what a header cannot carry (Vietnamese letters, quotes, control bytes)."""
    return quote(text, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def verdict_of(reasons: Iterable[Reason]) -> Verdict:
    severities = {r.severity for r in reasons}
    if "error" in severities:
        return "invalid"
    return "valid_with_warnings" if severities else "valid"


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    order: dict[Verdict, int] = {"valid": 0, "valid_with_warnings": 1, "unsigned": 2, "invalid": 3}
    return max(verdicts, key=order.__getitem__, default="unsigned")


def dedupe(reasons: Iterable[Reason]) -> list[Reason]:
    """Keep the first of equal findings, in order (several certificates can give the same)."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for item in reasons:
        key = (item.code, item.severity, item.detail)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept
