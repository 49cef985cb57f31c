"""What a route asks of signatures, and where trust comes from: msgspec Structs for the YAML.

Both forbid unknown keys and take durations as admins write them (``5m``), like the rest of
the config model; ``adapters.units.seconds`` parses them when they are used.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from adapters.units import Duration, Size, size_bytes
from gateway.signatures.result import Reason, Severity, reason

SignatureMode = Literal["required", "if_present", "off"]
RevocationMode = Literal["hard-fail", "soft-fail", "off"]
AlgorithmPolicy = Literal["lenient", "strict"]

MIN_RSA_BITS = 2048  # Circular 15/2025/TT-BKHCN
MIN_EC_BITS = 256
WEAK_HASHES = frozenset({"sha1", "md5"})


class SignaturePolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per route (or global default): how much a signature is demanded and how strictly judged."""

    mode: SignatureMode = "if_present"
    """``required``: unsigned documents are refused; ``if_present``: signatures found are
    checked, unsigned documents pass; ``off``: nothing is verified."""
    revocation: RevocationMode = "soft-fail"
    """When neither OCSP nor CRL answers: ``hard-fail`` refuses, ``soft-fail`` accepts with the
    warning ``revocation_unknown``; ``off`` does not ask. A revoked certificate is always an
    error."""
    algorithms: AlgorithmPolicy = "lenient"
    """``lenient``: SHA-1 and RSA < 2048 give the warning ``weak_algorithm``; ``strict``: an
    error. Many systems in service still sign with rsa-sha1."""
    attachments: bool = True
    """Also verify signed PDFs and detached CMS signatures inside edXML attachments."""


class TrustSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where trust anchors and revocation data come from (relative paths: next to the config)."""

    anchors: str
    """Folder of trusted root certificates (PEM or DER). None is trusted by default."""
    intermediates: str | None = None
    """Folder of intermediate CA certificates, for signatures that do not carry them."""
    ocsp_overrides: dict[str, str] = {}
    """Issuing CA -> OCSP URL used instead of the certificate's own. The key is the CA's
    subject (``CN=…,O=…``), its common name, or ``*`` for every CA."""
    crl_overrides: dict[str, str] = {}
    """Issuing CA -> CRL URL used instead of the certificate's own, keyed as above."""
    cache_ttl: Duration = "10m"
    """How long an OCSP answer or a CRL is reused (never past its own nextUpdate)."""
    fetch_timeout: Duration = "5s"
    """Per OCSP or CRL request."""
    max_age: Duration = "7d"
    """An OCSP answer or CRL without nextUpdate is accepted this long after thisUpdate."""
    max_document_size: Size = "16MiB"
    """Larger documents are not verified: checking a signature holds about eight times the
    document in memory (the parsed tree, canonical forms, decoded attachments). A route
    answers 413 ``payload_too_large``; ``lgsp-gateway verify`` exits 2."""


def too_large(size: int, settings: TrustSettings) -> str | None:
    """Why a document of ``size`` bytes is not verified, or None if it may be."""
    limit = size_bytes(settings.max_document_size)
    if size <= limit:
        return None
    return (
        f"{size:,} bytes are over the signature-verification limit of "
        f"{settings.max_document_size} (trust.max_document_size)"
    )


def weak_severity(policy: AlgorithmPolicy) -> Severity:
    return "error" if policy == "strict" else "warning"


def hash_name(algorithm: hashes.HashAlgorithm | None) -> str:
    return algorithm.name if algorithm is not None else "none"


def key_description(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__.removeprefix("_").replace("PublicKey", "")


def weak_key(key: object) -> str | None:
    """Why a public key is too weak, or ``None``."""
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"{key_description(key)} bits < {MIN_RSA_BITS}"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return f"{key_description(key)} < {MIN_EC_BITS} bits"
    return None


def weak_hash(name: str) -> bool:
    return name.lower().replace("-", "") in WEAK_HASHES


def certificate_weaknesses(
    cert: x509.Certificate, *, check_signature: bool, policy: AlgorithmPolicy
) -> list[Reason]:
    """``weak_algorithm`` findings for one certificate of a path.

    An anchor's own self-signature proves nothing (trust in it is configured), so callers pass
    ``check_signature=False`` for anchors; its key size still matters.
    """
    found = []
    subject = cert.subject.rfc4514_string()
    problem = weak_key(cert.public_key())
    if problem:
        found.append(reason("weak_algorithm", weak_severity(policy), f"{subject}: {problem}"))
    if check_signature:
        try:
            algorithm = hash_name(cert.signature_hash_algorithm)
        except Exception:  # cryptography raises UnsupportedAlgorithm for exotic hashes
            algorithm = "unknown"
        if weak_hash(algorithm):
            found.append(
                reason(
                    "weak_algorithm",
                    weak_severity(policy),
                    f"{subject}: certificate signed with {algorithm}",
                )
            )
    return found
