"""A signing PKI made at test time, with real OCSP and CRL servers on loopback.

Root -> "signing CA" (intermediate, pathLen 0) -> signers of every kind the verifier must
judge, a TSA, and a second, untrusted root. The revocation server is a raw ASGI app on a
port chosen before the certificates are issued, so their AIA and CRL distribution point
URLs point at it. It answers from the PKI's current revocation state, can be taken down
(503) and counts its requests. ``signing_pki`` and ``signers`` are session fixtures
(registered in tests/conftest.py); ``check`` runs the verifier against this PKI.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from gateway.signatures import (
    RevocationChecker,
    SignaturePolicy,
    TrustSettings,
    TrustStore,
    VerificationResult,
    verify,
)
from tests.support.servers import free_port, lifespan, request_body, serve_in_thread

NOW = dt.datetime.now(dt.UTC)
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

SIGN_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
ENCIPHER_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=True,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LGSP Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())


@dataclass
class Issued:
    name: str
    cert: x509.Certificate
    key: PrivateKey
    cert_file: Path
    key_file: Path
    issuer: Authority


@dataclass
class Authority:
    name: str
    cert: x509.Certificate
    key: PrivateKey
    issuer: Authority | None = None
    issued: dict[int, x509.Certificate] = field(default_factory=dict)
    revoked: dict[int, dt.datetime] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return _slug(self.name)


class SigningPKI:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.base_url = f"http://127.0.0.1:{port}"
        self.dead_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        self.down = False
        self.requests: list[str] = []
        self.ocsp_signing = "ca"  # or "delegated", or "forged"
        self.root = self._authority("LGSP Test Root", None, path_length=1)
        self.ca = self._authority("LGSP Test Signing CA", self.root, path_length=0)
        self.other_root = self._authority("Stranger Root", None, path_length=1)
        self.anchors = directory / "anchors"
        self.anchors.mkdir()
        (self.anchors / "root.pem").write_bytes(pem(self.root.cert))
        self.intermediates = directory / "intermediates"
        self.intermediates.mkdir()
        (self.intermediates / "ca.pem").write_bytes(pem(self.ca.cert))
        self.responder = self.issue(
            "OCSP Responder", eku=[ExtendedKeyUsageOID.OCSP_SIGNING], usage=SIGN_USAGE, ocsp=False
        )

    # -- issuing ---------------------------------------------------------------------------

    def _authority(self, common_name: str, issuer: Authority | None, path_length: int) -> Authority:
        key = rsa.generate_private_key(65537, 2048)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(issuer.cert.subject if issuer else name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=365))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(CA_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if issuer is not None:
            builder = self._revocation_pointers(builder, issuer, ocsp=True, crl=True)
        cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
        authority = Authority(common_name, cert, key, issuer)
        if issuer is not None:
            issuer.issued[cert.serial_number] = cert
        return authority

    def _revocation_pointers(
        self,
        builder: x509.CertificateBuilder,
        issuer: Authority,
        *,
        ocsp: bool,
        crl: bool,
        base: str | None = None,
    ) -> x509.CertificateBuilder:
        base = base or self.base_url
        if ocsp:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(f"{base}/ocsp"),
                        )
                    ]
                ),
                critical=False,
            )
        if crl:
            builder = builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[
                                x509.UniformResourceIdentifier(f"{base}/crl/{issuer.slug}.crl")
                            ],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
        return builder

    def issue(
        self,
        common_name: str,
        *,
        issuer: Authority | None = None,
        key_type: str = "rsa2048",
        valid: tuple[int, int] = (-1, 30),
        usage: x509.KeyUsage | None = SIGN_USAGE,
        eku: list[x509.ObjectIdentifier] | None = None,
        ocsp: bool = True,
        crl: bool = True,
        dead: bool = False,
        sha1: bool = False,
    ) -> Issued:
        """A certificate for ``common_name``; ``valid`` is (from, to) in days from now."""
        issuer = issuer or self.ca
        key: PrivateKey
        if key_type == "ec":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(65537, 1024 if key_type == "rsa1024" else 2048)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + dt.timedelta(days=valid[0]))
            .not_valid_after(NOW + dt.timedelta(days=valid[1]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if usage is not None:
            builder = builder.add_extension(usage, critical=True)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
        builder = self._revocation_pointers(
            builder, issuer, ocsp=ocsp, crl=crl, base=self.dead_url if dead else None
        )
        cert = builder.sign(issuer.key, hashes.SHA256())
        if sha1:
            cert = _resign_sha1(cert, issuer.key)
        issuer.issued[cert.serial_number] = cert
        slug = _slug(common_name)
        cert_file, key_file = self.directory / f"{slug}.pem", self.directory / f"{slug}.key"
        cert_file.write_bytes(pem(cert))
        key_file.write_bytes(key_pem(key))
        return Issued(common_name, cert, key, cert_file, key_file, issuer)

    def revoke(self, issued: Issued, when: dt.datetime | None = None) -> None:
        issued.issuer.revoked[issued.cert.serial_number] = when or NOW - dt.timedelta(hours=1)

    # -- revocation server -----------------------------------------------------------------

    def _authorities(self) -> list[Authority]:
        return [self.root, self.ca, self.other_root]

    def ocsp_response(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        authority = next(
            (
                a
                for a in self._authorities()
                if x509.SubjectKeyIdentifier.from_public_key(a.cert.public_key()).digest
                == request.issuer_key_hash
            ),
            None,
        )
        if authority is None or request.serial_number not in authority.issued:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        cert = authority.issued[request.serial_number]
        revoked_at = authority.revoked.get(request.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=authority.cert,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD,
            this_update=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
            next_update=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            revocation_time=revoked_at,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
        )
        signer_cert, signer_key = authority.cert, authority.key
        if self.ocsp_signing == "delegated" and authority is self.ca:
            signer_cert, signer_key = self.responder.cert, self.responder.key
            builder = builder.certificates([signer_cert])
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        der = builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]
        if self.ocsp_signing == "forged":  # the signature value is last: break it
            der = der[:-1] + bytes([der[-1] ^ 0xFF])
        return der

    def crl(self, slug: str, *, stale: bool = False) -> bytes | None:
        authority = next((a for a in self._authorities() if a.slug == slug), None)
        if authority is None:
            return None
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.cert.subject)
            .last_update(now - dt.timedelta(days=3 if stale else 0, minutes=1))
            .next_update(now - dt.timedelta(days=1) if stale else now + dt.timedelta(days=1))
        )
        for serial, when in authority.revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]

    def app(self) -> Any:
        pki = self

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
                return
            body = await request_body(receive)
            path: str = scope["path"]
            pki.requests.append(f"{scope['method']} {path}")
            status, content, kind = 404, b"", "text/plain"
            if pki.down:
                status = 503
            elif path == "/ocsp" and scope["method"] == "POST":
                status, content, kind = 200, pki.ocsp_response(body), "application/ocsp-response"
            elif path.startswith("/crl/") and path.endswith(".crl"):
                stale = path.startswith("/crl/stale-")
                slug = path[len("/crl/") : -len(".crl")].removeprefix("stale-")
                crl = pki.crl(slug, stale=stale)
                if crl is not None:
                    status, content, kind = 200, crl, "application/pkix-crl"
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", kind.encode())],
                }
            )
            await send({"type": "http.response.body", "body": content})

        return app


def _resign_sha1(cert: x509.Certificate, key: Any) -> x509.Certificate:
    """The same certificate signed with sha1WithRSAEncryption (cryptography no longer will)."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa"}
    tbs_der = tbs.dump(force=True)
    signed = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": {"algorithm": "sha1_rsa"},
            "signature_value": key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1()),
        }
    )
    return x509.load_der_x509_certificate(signed.dump())


@pytest.fixture(scope="session")
def signing_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigningPKI]:
    """The PKI and its revocation server, made once per test run."""
    port = free_port()
    pki = SigningPKI(tmp_path_factory.mktemp("signing-pki"), port)
    with serve_in_thread(pki.app(), port=port):
        yield pki


@dataclass
class Signers:
    good: Issued
    ecdsa: Issued
    weak_rsa: Issued
    sha1_cert: Issued
    expired: Issued
    not_yet_valid: Issued
    revoked: Issued
    wrong_usage: Issued
    untrusted: Issued
    crl_only: Issued
    unreachable: Issued
    past: Issued
    tsa: Issued
    other: Issued


@pytest.fixture(scope="session")
def signers(signing_pki: SigningPKI) -> Signers:
    """One signer of each kind the verifier must judge (``revoked`` is revoked)."""
    return _make_signers(signing_pki)


def _make_signers(pki: SigningPKI) -> Signers:
    made = Signers(
        good=pki.issue("Nguyễn Văn An"),
        ecdsa=pki.issue("ECDSA Signer", key_type="ec"),
        weak_rsa=pki.issue("RSA-1024 Signer", key_type="rsa1024"),
        sha1_cert=pki.issue("SHA-1 Certificate Signer", sha1=True),
        expired=pki.issue("Expired Signer", valid=(-40, -10)),
        not_yet_valid=pki.issue("Future Signer", valid=(10, 40)),
        revoked=pki.issue("Revoked Signer"),
        wrong_usage=pki.issue("Encryption Only", usage=ENCIPHER_USAGE),
        untrusted=pki.issue("Stranger Signer", issuer=pki.other_root),
        crl_only=pki.issue("CRL Only Signer", ocsp=False),
        unreachable=pki.issue("Unreachable Revocation Signer", dead=True),
        past=pki.issue("Past Signer", valid=(-30, -1)),
        tsa=pki.issue(
            "LGSP Test TSA",
            eku=[ExtendedKeyUsageOID.TIME_STAMPING],
            usage=SIGN_USAGE,
            valid=(-60, 365),
        ),
        other=pki.issue("Trần Thị Bình"),
    )
    pki.revoke(made.revoked)
    return made


def settings_for(pki: SigningPKI, **overrides: Any) -> TrustSettings:
    return TrustSettings(anchors=str(pki.anchors), fetch_timeout="2s", **overrides)


def check(
    data: bytes,
    pki: SigningPKI,
    *,
    media_type: str = "application/xml",
    settings: TrustSettings | None = None,
    checker: RevocationChecker | None = None,
    now: dt.datetime | None = None,
    **policy: Any,
) -> VerificationResult:
    """``verify`` run to completion, with a fresh revocation checker unless one is given."""
    settings = settings or settings_for(pki)
    trust = TrustStore.load(settings)
    chosen = SignaturePolicy(**policy)

    async def run() -> VerificationResult:
        revocation = checker or RevocationChecker(settings)
        try:
            return await verify(
                data, media_type, policy=chosen, trust=trust, revocation=revocation, now=now
            )
        finally:
            if checker is None:
                await revocation.aclose()

    return asyncio.run(run())


def codes(result: VerificationResult) -> set[str]:
    return {r.code for r in result.reasons}
