"""Trust anchors and certification paths: from a signer's certificate to a configured root.

Trust anchors are a folder of certificates an administrator puts there; none is trusted by
default. A Vietnamese deployment normally configures:

- the Government Cipher Committee root (Ban Cơ yếu Chính phủ, "Cơ quan chứng thực số chuyên
  dùng Chính phủ" root; first generation valid 2010-03-10 to 2030-03-05, and its G2
  successor) for government-service signatures (Decree 68/2024/NĐ-CP);
- the NEAC national root(s) (Trung tâm Chứng thực điện tử quốc gia) for public CAs such as
  VNPT-CA, Viettel-CA, BKAV-CA (Decree 23/2025/NĐ-CP).

Take them from the issuers' official publications and compare fingerprints out of band;
the gateway never downloads anchors.

Paths are built here rather than with cryptography's ``x509.verification`` because that
verifier refuses SHA-1-signed certificates outright, and old Vietnamese CA certificates are
SHA-1: we must still build the path and report ``weak_algorithm`` (warning or error by
policy). Checks follow RFC 5280 §6 in the parts that matter for document signatures:
issuer signatures, validity at the time used, basicConstraints and pathLenConstraint,
keyUsage (keyCertSign on CAs; digitalSignature or nonRepudiation on signers), extended key
usage for timestamping and OCSP responders, and unknown critical extensions. Name and policy
constraints are not processed: a path through a CA that marks them critical is refused
(``invalid_path``) rather than silently accepted.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID

from gateway.signatures.policy import (
    AlgorithmPolicy,
    TrustSettings,
    certificate_weaknesses,
    hash_name,
    key_description,
)
from gateway.signatures.result import CertificateInfo, Reason, reason

Usage = Literal["signing", "timestamping", "ocsp"]
E = TypeVar("E", bound=x509.ExtensionType)
MAX_PATH_LENGTH = 8
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".cert")

# Extensions we either enforce or know to be harmless to ignore for document signatures.
_UNDERSTOOD = {
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ExtensionOID.OCSP_NO_CHECK,
    ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES,
    ExtensionOID.FRESHEST_CRL,
}


class Check(msgspec.Struct, kw_only=True):
    """One check made while judging a path, in plain words (``trust check`` prints these)."""

    name: str
    status: Literal["pass", "fail", "warn"]
    certificate: str
    message: str
    code: str | None = None
    """The reason code this check produced, if it failed or warned."""


@dataclass
class PathResult:
    """A built path (signer first, anchor last) and every check made on it."""

    path: list[x509.Certificate]
    trusted: bool
    checks: list[Check] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.trusted and not any(r.severity == "error" for r in self.reasons)


@functools.lru_cache(maxsize=4096)  # names are printed many times per verification
def subject_of(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return "<unreadable subject>"


def serial_of(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def certificate_info(cert: x509.Certificate) -> CertificateInfo:
    try:
        algorithm = hash_name(cert.signature_hash_algorithm)
    except UnsupportedAlgorithm:
        algorithm = cert.signature_algorithm_oid.dotted_string
    return CertificateInfo(
        subject=subject_of(cert),
        issuer=_issuer_of(cert),
        serial=serial_of(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=fingerprint(cert),
        key=key_description(cert.public_key()),
        signature_algorithm=f"{_key_family(cert)}-{algorithm}",
    )


def _key_family(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        return "rsa-pss"
    name = oid._name.lower()
    return "ecdsa" if "ecdsa" in name else "dsa" if "dsa" in name else "rsa"


def verify_signature(
    key: object,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    parameters: object = None,
) -> None:
    """Check a signature with any key type; SHA-1 included (policy judges it separately).

    Raises ``InvalidSignature``, or ``UnsupportedAlgorithm`` for a key/parameter pair we do
    not handle.
    """
    if isinstance(key, rsa.RSAPublicKey):
        if hash_algorithm is None:
            raise UnsupportedAlgorithm("RSA signature without a hash algorithm")
        pad = parameters if isinstance(parameters, padding.PSS) else padding.PKCS1v15()
        key.verify(signature, data, pad, hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if hash_algorithm is None:
            raise UnsupportedAlgorithm("ECDSA signature without a hash algorithm")
        key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, data)
    elif isinstance(key, dsa.DSAPublicKey):
        if hash_algorithm is None:
            raise UnsupportedAlgorithm("DSA signature without a hash algorithm")
        key.verify(signature, data, hash_algorithm)
    else:
        raise UnsupportedAlgorithm(f"unsupported key type {type(key).__name__}")


@functools.lru_cache(maxsize=4096)  # a fact about two immutable certificates: check it once
def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s name and key made ``cert`` (any hash, unlike ``verify_directly_issued_by``)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        verify_signature(
            issuer.public_key(),
            cert.signature,
            cert.tbs_certificate_bytes,
            cert.signature_hash_algorithm,
            cert.signature_algorithm_parameters,
        )
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle or one DER certificate."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _load_folder(folder: Path) -> tuple[list[x509.Certificate], list[str]]:
    certs: list[x509.Certificate] = []
    problems: list[str] = []
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of certificates")
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in CERT_SUFFIXES:
            continue
        try:
            certs.extend(load_certificates(path.read_bytes()))
        except (ValueError, OSError) as exc:
            problems.append(f"{path}: not a PEM or DER certificate ({exc})")
    return certs, problems


def _extension(cert: x509.Certificate, extension: type[E]) -> x509.Extension[E] | None:
    try:
        return cert.extensions.get_extension_for_class(extension)
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension; judged as absent, the checks below then fail
        return None


def _key_ids(cert: x509.Certificate) -> tuple[bytes | None, bytes | None]:
    """(subject key id, authority key id) when present."""
    ski = _extension(cert, x509.SubjectKeyIdentifier)
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    return (
        ski.value.digest if ski else None,
        aki.value.key_identifier if aki else None,
    )


class TrustStore:
    """Anchors and known intermediates. Built once per config; cheap to share."""

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        intermediates: Iterable[x509.Certificate] = (),
        *,
        settings: TrustSettings | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        self.anchors = list(anchors)
        self.intermediates = list(intermediates)
        self.settings = settings
        self.problems = list(problems)
        """Files that could not be read: ``trust check`` shows them."""
        self._anchor_keys = {(a.subject.public_bytes(), _spki(a)): a for a in self.anchors}

    @classmethod
    def load(cls, settings: TrustSettings, base_dir: str | os.PathLike[str] = ".") -> TrustStore:
        """Read the folders named in ``settings`` (relative to ``base_dir``, the config's)."""
        base = Path(base_dir)
        anchors, problems = _load_folder(base / settings.anchors)
        intermediates: list[x509.Certificate] = []
        if settings.intermediates:
            intermediates, more = _load_folder(base / settings.intermediates)
            problems += more
        return cls(anchors, intermediates, settings=settings, problems=problems)

    def anchor_for(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The configured anchor with this certificate's name and key, if any."""
        return self._anchor_keys.get((cert.subject.public_bytes(), _spki(cert)))

    def _issuer_candidates(
        self, cert: x509.Certificate, pool: Sequence[x509.Certificate]
    ) -> list[x509.Certificate]:
        _, aki = _key_ids(cert)
        found = [c for c in (*self.anchors, *pool) if c.subject == cert.issuer]

        def rank(candidate: x509.Certificate) -> tuple[bool, bool]:
            ski, _ = _key_ids(candidate)
            return (aki is None or ski != aki, self.anchor_for(candidate) is None)

        return sorted(found, key=rank)

    def build_path(
        self,
        leaf: x509.Certificate,
        extra: Sequence[x509.Certificate] = (),
        *,
        at: dt.datetime,
        usage: Usage = "signing",
        algorithms: AlgorithmPolicy = "lenient",
    ) -> PathResult:
        """A path from ``leaf`` to an anchor using ``extra`` (the document's certificates) and
        the configured intermediates, then every check on it at time ``at``."""
        pool = [*extra, *self.intermediates]
        path, near_miss = self._search([leaf], pool)
        leaf_name = subject_of(leaf)
        if path is None:
            partial = near_miss or [leaf]
            last = partial[-1]
            detail = f"path ends at {subject_of(last)}, issued by {_issuer_of(last)}"
            detail += ", which is not a configured anchor"
            check = Check(
                name="trust_anchor",
                status="fail",
                certificate=leaf_name,
                message=f"no path to a configured trust anchor: {detail}",
                code="untrusted_root",
            )
            result = PathResult(path=partial, trusted=False, checks=[check])
            result.reasons.append(reason("untrusted_root", "error", detail))
            self._check_validity(result, at)
            return result
        result = PathResult(path=path, trusted=True)
        for child, parent in itertools.pairwise(path):
            result.checks.append(
                Check(
                    name="issuer_signature",
                    status="pass",
                    certificate=subject_of(child),
                    message=f"signed by {subject_of(parent)}",
                )
            )
        result.checks.append(
            Check(
                name="trust_anchor",
                status="pass",
                certificate=subject_of(path[-1]),
                message="is a configured trust anchor",
            )
        )
        self._check_validity(result, at)
        self._check_ca_constraints(result)
        self._check_leaf_usage(result, usage)
        self._check_critical_extensions(result)
        for index, cert in enumerate(path):
            is_anchor = index == len(path) - 1
            for weak in certificate_weaknesses(
                cert, check_signature=not is_anchor, policy=algorithms
            ):
                result.reasons.append(weak)
                result.checks.append(
                    Check(
                        name="algorithm",
                        status="fail" if weak.severity == "error" else "warn",
                        certificate=subject_of(cert),
                        message=weak.detail,
                        code="weak_algorithm",
                    )
                )
        return result

    def _search(
        self, path: list[x509.Certificate], pool: Sequence[x509.Certificate]
    ) -> tuple[list[x509.Certificate] | None, list[x509.Certificate]]:
        """Depth-first, backtracking over cross-certificates and re-issued CAs.

        Returns (a complete path, or None; the longest partial path, for the diagnosis).
        """
        current = path[-1]
        if self.anchor_for(current) is not None:
            return path, path
        if len(path) > MAX_PATH_LENGTH:
            return None, path
        longest = path
        for candidate in self._issuer_candidates(current, pool):
            if any(candidate == seen for seen in path):
                continue
            if not issued_by(current, candidate):
                continue
            found, partial = self._search([*path, candidate], pool)
            if found is not None:
                return found, found
            if len(partial) > len(longest):
                longest = partial
        return None, longest

    def _check_validity(self, result: PathResult, at: dt.datetime) -> None:
        for cert in result.path:
            name = subject_of(cert)
            window = f"{_day(cert.not_valid_before_utc)} to {_day(cert.not_valid_after_utc)}"
            failure = None
            if at < cert.not_valid_before_utc:
                failure = (
                    "not_yet_valid",
                    "not yet valid",
                    f"valid from {_day(cert.not_valid_before_utc)}",
                )
            elif at > cert.not_valid_after_utc:
                failure = ("expired", "expired", f"valid until {_day(cert.not_valid_after_utc)}")
            if failure is not None:
                code, state, bound = failure
                detail = f"{name}: {bound}, time used {_day(at)}"
                result.reasons.append(reason(code, "error", detail))
                result.checks.append(
                    Check(
                        name="validity",
                        status="fail",
                        certificate=name,
                        message=f"{state} at {_day(at)} (valid {window})",
                        code=code,
                    )
                )
            else:
                result.checks.append(
                    Check(
                        name="validity",
                        status="pass",
                        certificate=name,
                        message=f"valid at {_day(at)} ({window})",
                    )
                )

    def _check_ca_constraints(self, result: PathResult) -> None:
        """basicConstraints, pathLenConstraint and keyCertSign on every issuer of the path."""
        path = result.path
        for index in range(1, len(path)):
            cert = path[index]
            name = subject_of(cert)
            is_anchor = index == len(path) - 1
            below = index - 1  # intermediate CAs between this one and the signer
            constraints = _extension(cert, x509.BasicConstraints)
            if constraints is None:
                if is_anchor:  # old v1 roots carry no extensions; trust in them is configured
                    result.checks.append(
                        Check(
                            name="basic_constraints",
                            status="warn",
                            certificate=name,
                            message="anchor without basicConstraints (a v1 root): accepted",
                        )
                    )
                    continue
                self._fail(result, "basic_constraints", name, "has no basicConstraints: not a CA")
                continue
            value: x509.BasicConstraints = constraints.value
            if not value.ca:
                self._fail(
                    result, "basic_constraints", name, "basicConstraints says it is not a CA"
                )
                continue
            if value.path_length is not None and below > value.path_length:
                self._fail(
                    result,
                    "path_length",
                    name,
                    f"pathLenConstraint {value.path_length} but {below} CA(s) below it",
                )
                continue
            usage = _extension(cert, x509.KeyUsage)
            if usage is not None and not usage.value.key_cert_sign:
                self._fail(result, "ca_key_usage", name, "keyUsage lacks keyCertSign")
                continue
            limit = "" if value.path_length is None else f", pathLen {value.path_length}"
            result.checks.append(
                Check(
                    name="basic_constraints",
                    status="pass",
                    certificate=name,
                    message=f"is a CA{limit}",
                )
            )

    def _check_leaf_usage(self, result: PathResult, usage: Usage) -> None:
        leaf = result.path[0]
        name = subject_of(leaf)
        key_usage = _extension(leaf, x509.KeyUsage)
        if usage == "signing":
            if key_usage is None:
                message = "no keyUsage extension: not restricted (RFC 5280)"
                result.checks.append(
                    Check(name="key_usage", status="pass", certificate=name, message=message)
                )
            elif key_usage.value.digital_signature or key_usage.value.content_commitment:
                allowed = [
                    label
                    for label, on in (
                        ("digitalSignature", key_usage.value.digital_signature),
                        ("nonRepudiation", key_usage.value.content_commitment),
                    )
                    if on
                ]
                result.checks.append(
                    Check(
                        name="key_usage",
                        status="pass",
                        certificate=name,
                        message="keyUsage allows " + " and ".join(allowed),
                    )
                )
            else:
                detail = f"{name}: keyUsage has neither digitalSignature nor nonRepudiation"
                result.reasons.append(reason("key_usage", "error", detail))
                result.checks.append(
                    Check(
                        name="key_usage",
                        status="fail",
                        certificate=name,
                        message="keyUsage has neither digitalSignature nor nonRepudiation",
                        code="key_usage",
                    )
                )
            return
        wanted = (
            ExtendedKeyUsageOID.TIME_STAMPING
            if usage == "timestamping"
            else ExtendedKeyUsageOID.OCSP_SIGNING
        )
        eku = _extension(leaf, x509.ExtendedKeyUsage)
        if eku is None or wanted not in eku.value:
            label = "timeStamping" if usage == "timestamping" else "OCSPSigning"
            detail = f"{name}: extendedKeyUsage lacks {label}"
            result.reasons.append(reason("key_usage", "error", detail))
            result.checks.append(
                Check(
                    name="key_usage",
                    status="fail",
                    certificate=name,
                    message=f"extendedKeyUsage lacks {label}",
                    code="key_usage",
                )
            )

    def _check_critical_extensions(self, result: PathResult) -> None:
        for cert in result.path[:-1]:  # the anchor's extensions are the administrator's choice
            for extension in cert.extensions:
                if extension.critical and extension.oid not in _UNDERSTOOD:
                    self._fail(
                        result,
                        "critical_extension",
                        subject_of(cert),
                        f"critical extension {extension.oid._name} "
                        f"({extension.oid.dotted_string}) is not processed",
                    )

    @staticmethod
    def _fail(result: PathResult, name: str, certificate: str, message: str) -> None:
        result.reasons.append(reason("invalid_path", "error", f"{certificate}: {message}"))
        result.checks.append(
            Check(
                name=name,
                status="fail",
                certificate=certificate,
                message=message,
                code="invalid_path",
            )
        )


def _spki(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(
        cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()


@functools.lru_cache(maxsize=4096)
def _issuer_of(cert: x509.Certificate) -> str:
    try:
        return cert.issuer.rfc4514_string()
    except ValueError:
        return "<unreadable issuer>"


def _day(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def pick_signer(
    certs: Sequence[x509.Certificate],
) -> list[x509.Certificate]:
    """Certificates ordered most-likely-signer first: those that issued none of the others."""

    def issues_another(cert: x509.Certificate) -> bool:
        return any(other is not cert and other.issuer == cert.subject for other in certs)

    return sorted(certs, key=issues_another)


__all__ = [
    "Check",
    "PathResult",
    "TrustStore",
    "certificate_info",
    "fingerprint",
    "issued_by",
    "load_certificates",
    "pick_signer",
    "serial_of",
    "subject_of",
    "verify_signature",
]
