"""What each format module hands over: the cryptographic findings, before trust is judged.

Format modules (``xmldsig``, ``pades``, ``cms``) only answer "do these bytes carry an intact
signature, by which certificate, with which algorithms, and what content does it prove".
``verify`` then judges the certificate (path, time, revocation) the same way for all
formats, so a reason code means the same thing whatever was signed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.signatures.policy import AlgorithmPolicy, weak_hash, weak_key, weak_severity
from gateway.signatures.result import Reason, SignatureKind, reason

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """An asn1crypto digest name (``sha256``, ``sha3_256``) as a cryptography hash."""
    try:
        return _HASHES[name.lower().replace("-", "_")]()
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {name}") from None


def digest(name: str, data: bytes) -> bytes:
    md = hashes.Hash(hash_algorithm(name))
    md.update(data)
    return md.finalize()


CRYPTO_FAILURES = frozenset(
    {
        "digest_mismatch",
        "bad_signature",
        "malformed_signature",
        "signer_certificate_missing",
        "unsupported_algorithm",
        "detached_content_missing",
        "misplaced_signature",
        "signature_wrapping",
        "not_edxml",
    }
)


@dataclass
class TimestampEvidence:
    """An RFC 3161 token and the bytes whose hash its message imprint must carry."""

    token: Any  # asn1crypto cms.SignedData (untyped library)
    imprint_data: bytes


@dataclass
class Integrity:
    kind: SignatureKind
    target: str
    reasons: list[Reason] = field(default_factory=list)
    signer: x509.Certificate | None = None
    extra_certs: list[x509.Certificate] = field(default_factory=list)
    signature_algorithm: str = ""
    digest_algorithms: list[str] = field(default_factory=list)
    claimed_time: dt.datetime | None = None
    timestamps: list[TimestampEvidence] = field(default_factory=list)
    coverage: str | None = None
    modifications: str | None = None
    signed_content: bytes | None = None

    @property
    def intact(self) -> bool:
        """The cryptography holds, so the signer is known: worth judging the certificate
        (a PDF changed after signing still has a signer whose certificate is reported)."""
        return self.signer is not None and not any(r.code in CRYPTO_FAILURES for r in self.reasons)


def algorithm_reasons(
    signature_algorithm: str,
    digest_algorithms: list[str],
    signer: x509.Certificate | None,
    policy: AlgorithmPolicy,
) -> list[Reason]:
    """``weak_algorithm`` for SHA-1/MD5 digests or signatures and short signer keys."""
    found = []
    severity = weak_severity(policy)
    weak = sorted({d for d in digest_algorithms if weak_hash(d)})
    if weak:
        found.append(reason("weak_algorithm", severity, "digest " + ", ".join(weak)))
    if any(weak_hash(part) for part in signature_algorithm.replace("_", "-").split("-")):
        found.append(reason("weak_algorithm", severity, f"signature {signature_algorithm}"))
    if signer is not None:
        problem = weak_key(signer.public_key())
        if problem:
            found.append(reason("weak_algorithm", severity, f"signer key {problem}"))
    return found
