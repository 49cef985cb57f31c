"""Is a certificate revoked? OCSP first, then CRL; fetched with httpx, cached, always reported.

Sources are the certificate's own (AIA OCSP, CRL distribution points) unless the trust
settings override them per issuing CA: closed government networks often reach a CA only
through a mirror. Every answer is verified before use: an OCSP response must be signed by
the issuing CA or by a responder certificate that CA issued for OCSP signing; a CRL by the
issuing CA itself. Indirect CRLs, delta CRLs and partitioned CRLs (critical issuing
distribution point restricted to some reasons) are not supported and count as unusable.

Freshness: an answer is used until its nextUpdate (never past it), and reused from the cache
for at most ``cache_ttl``; an answer without nextUpdate is accepted up to ``max_age`` after
its thisUpdate. A source that failed is not asked again for ``FAILURE_TTL`` seconds, so a
responder that is down costs one timeout, not one per request. What happened (each source
tried, cached or not) is always returned: ``revocation_unknown`` is never silent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    SignatureAlgorithmOID,
)

from adapters.units import seconds
from gateway.signatures.policy import RevocationMode, TrustSettings
from gateway.signatures.result import Reason, RevocationInfo, reason
from gateway.signatures.trust import issued_by, subject_of, verify_signature

FAILURE_TTL = 30.0
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_OCSP_BYTES = 1 << 20
MAX_CRL_BYTES = 64 << 20
MAX_CACHE_ENTRIES = 4096

SourceKind = Literal["ocsp", "crl"]


class SourceError(Exception):
    """A source that gave nothing usable; ``reachable`` says whether it answered at all."""

    def __init__(self, message: str, *, reachable: bool) -> None:
        super().__init__(message)
        self.reachable = reachable


@dataclass(frozen=True)
class Answer:
    status: Literal["good", "revoked", "unknown"]
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    revoked_at: dt.datetime | None = None
    revocation_reason: str | None = None
    responder: str | None = None


class Probe(msgspec.Struct, kw_only=True):
    """One source asked by ``trust check``: reachable? usable? what did it say?"""

    kind: SourceKind
    url: str
    reachable: bool
    usable: bool
    status: str | None = None
    detail: str = ""
    elapsed_ms: float = 0.0


@dataclass
class _Entry:
    answer: Answer
    crl: x509.CertificateRevocationList | None
    expires: float  # wall-clock seconds


def _resolve(
    answer: Answer, crl: x509.CertificateRevocationList | None, cert: x509.Certificate
) -> Answer:
    """An OCSP answer as is; for a CRL, look the certificate up in it."""
    if crl is None:
        return answer
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return answer
    return Answer(
        "revoked",
        answer.this_update,
        answer.next_update,
        revoked_at=entry.revocation_date_utc,
        revocation_reason=_crl_reason(entry),
        responder=answer.responder,
    )


def ocsp_urls_in(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.lower().startswith(("http://", "https://"))
    ]


def crl_urls_in(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    urls = []
    for point in points:
        for name in point.full_name or []:
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                ("http://", "https://")
            ):
                urls.append(name.value)
    return urls


def _override(overrides: dict[str, str], issuer: x509.Certificate) -> str | None:
    subject = subject_of(issuer)
    names = [a.value for a in issuer.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    for key in (subject, *[str(n) for n in names], "*"):
        if key in overrides:
            return overrides[key]
    return None


def _key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey bits: how OCSP names a responder or issuer key."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


class RevocationChecker:
    """Fetches and caches revocation data; one per configuration, shared by all requests."""

    def __init__(self, settings: TrustSettings) -> None:
        self.ocsp_overrides = dict(settings.ocsp_overrides)
        self.crl_overrides = dict(settings.crl_overrides)
        self.cache_ttl = seconds(settings.cache_ttl)
        self.timeout = seconds(settings.fetch_timeout)
        self.max_age = dt.timedelta(seconds=seconds(settings.max_age))
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._cache: OrderedDict[tuple[str, ...], _Entry] = OrderedDict()
        self._failures: dict[str, tuple[float, str]] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self.fetches = 0
        """Network requests made (tests and ``trust check`` read it)."""

    # -- public ---------------------------------------------------------------------------

    def ocsp_urls(self, cert: x509.Certificate, issuer: x509.Certificate) -> list[str]:
        override = _override(self.ocsp_overrides, issuer)
        return [override] if override else ocsp_urls_in(cert)

    def crl_urls(self, cert: x509.Certificate, issuer: x509.Certificate) -> list[str]:
        override = _override(self.crl_overrides, issuer)
        return [override] if override else crl_urls_in(cert)

    async def check_path(
        self, path: Sequence[x509.Certificate], *, at: dt.datetime, mode: RevocationMode
    ) -> tuple[list[RevocationInfo], list[Reason]]:
        """Status of every certificate of a path but its anchor, judged under ``mode``."""
        pairs = list(itertools.pairwise(path))
        if mode == "off":
            infos = [
                RevocationInfo(certificate=subject_of(c), status="not_checked") for c, _ in pairs
            ]
            return infos, []
        infos = list(await asyncio.gather(*(self.status(c, i, at=at) for c, i in pairs)))
        reasons = []
        for info in infos:
            if info.status == "revoked":
                when = info.revoked_at.isoformat() if info.revoked_at else "unknown time"
                reasons.append(
                    reason(
                        "revoked", "error", f"{info.certificate}: revoked at {when} ({info.url})"
                    )
                )
            elif info.status == "unknown":
                severity: Literal["error", "warning"] = (
                    "error" if mode == "hard-fail" else "warning"
                )
                tried = "; ".join(info.attempts) or "no source"
                reasons.append(
                    reason("revocation_unknown", severity, f"{info.certificate}: {tried}")
                )
        return infos, reasons

    async def status(
        self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime
    ) -> RevocationInfo:
        """OCSP, then CRL; the first definite answer wins."""
        info = RevocationInfo(certificate=subject_of(cert), status="unknown")
        sources: list[tuple[SourceKind, str]] = [
            *(("ocsp", u) for u in self.ocsp_urls(cert, issuer)),
            *(("crl", u) for u in self.crl_urls(cert, issuer)),
        ]
        if not sources:
            info.attempts.append("the certificate names no OCSP responder or CRL, none configured")
            return info
        for kind, url in sources:
            try:
                answer, cached = await self._answer(kind, url, cert, issuer)
            except SourceError as exc:
                info.attempts.append(f"{kind} {url}: {exc}")
                continue
            info.attempts.append(f"{kind} {url}: {answer.status}" + (" (cached)" if cached else ""))
            if answer.status == "unknown":  # the responder does not know it: ask the next
                continue
            info.source, info.url, info.from_cache = kind, url, cached
            info.this_update, info.next_update = answer.this_update, answer.next_update
            if (
                answer.status == "revoked"
                and answer.revoked_at is not None
                and answer.revoked_at > at
            ):
                info.status = "good"  # revoked later than the (trusted) signing time
                info.revoked_at = answer.revoked_at
                info.attempts.append(
                    f"revoked at {answer.revoked_at.isoformat()}, "
                    f"after the time used {at.isoformat()}"
                )
            else:
                info.status = answer.status
                info.revoked_at = answer.revoked_at
            return info
        return info

    async def probe(self, cert: x509.Certificate, issuer: x509.Certificate) -> list[Probe]:
        """Ask every source of ``cert`` directly (no cache) and say what each did."""
        probes = []
        sources: list[tuple[SourceKind, str]] = [
            *(("ocsp", u) for u in self.ocsp_urls(cert, issuer)),
            *(("crl", u) for u in self.crl_urls(cert, issuer)),
        ]
        for kind, url in sources:
            started = time.perf_counter()
            try:
                fetched, crl = await self._fetch_and_verify(kind, url, cert, issuer)
                answer = _resolve(fetched, crl, cert)
            except SourceError as exc:
                elapsed = (time.perf_counter() - started) * 1000
                probes.append(
                    Probe(
                        kind=kind,
                        url=url,
                        reachable=exc.reachable,
                        usable=False,
                        detail=str(exc),
                        elapsed_ms=elapsed,
                    )
                )
                continue
            elapsed = (time.perf_counter() - started) * 1000
            parts = []
            if answer.responder:
                parts.append(f"signed by {answer.responder}")
            if answer.this_update:
                parts.append(f"this update {answer.this_update:%Y-%m-%d %H:%M}Z")
            if answer.next_update:
                parts.append(f"next update {answer.next_update:%Y-%m-%d %H:%M}Z")
            probes.append(
                Probe(
                    kind=kind,
                    url=url,
                    reachable=True,
                    usable=True,
                    status=answer.status,
                    detail=", ".join(parts),
                    elapsed_ms=elapsed,
                )
            )
        return probes

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- cache ----------------------------------------------------------------------------

    async def _answer(
        self, kind: SourceKind, url: str, cert: x509.Certificate, issuer: x509.Certificate
    ) -> tuple[Answer, bool]:
        key: tuple[str, ...] = (kind, url, _key_hash(issuer).hex(), str(cert.serial_number))
        if kind == "crl":  # one CRL answers for every certificate of its issuer
            key = (kind, url, _key_hash(issuer).hex())
        if len(self._locks) > MAX_CACHE_ENTRIES:  # forget idle locks, keep those in use
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = time.time()
            entry = self._cache.get(key)
            if entry is not None and entry.expires > now:
                self._cache.move_to_end(key)
                return _resolve(entry.answer, entry.crl, cert), True
            failure = self._failures.get(url)
            if failure is not None and failure[0] > now:
                raise SourceError(
                    f"{failure[1]} (failed {int(now - (failure[0] - FAILURE_TTL))} s ago, "
                    f"not retried for {FAILURE_TTL:.0f} s)",
                    reachable=False,
                )
            try:
                answer, crl = await self._fetch_and_verify(kind, url, cert, issuer)
            except SourceError as exc:
                self._failures[url] = (now + FAILURE_TTL, str(exc))
                raise
            self._failures.pop(url, None)
            expires = now + self.cache_ttl
            if answer.next_update is not None:
                expires = min(expires, answer.next_update.timestamp())
            self._cache[key] = _Entry(answer, crl, expires)
            while len(self._cache) > MAX_CACHE_ENTRIES:
                self._cache.popitem(last=False)
            return _resolve(answer, crl, cert), False

    # -- network and verification ---------------------------------------------------------

    async def _fetch_and_verify(
        self, kind: SourceKind, url: str, cert: x509.Certificate, issuer: x509.Certificate
    ) -> tuple[Answer, x509.CertificateRevocationList | None]:
        """A verified answer; for a CRL, the CRL too (it answers for its issuer's others)."""
        now = dt.datetime.now(dt.UTC)
        if kind == "ocsp":
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(
                    cert, issuer, hashes.SHA1()
                )  # SHA-1 CertID: what responders expect
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            raw = await self._fetch(
                url, MAX_OCSP_BYTES, content=request, content_type="application/ocsp-request"
            )
            return self._verify_ocsp(raw, cert, issuer, now), None
        raw = await self._fetch(url, MAX_CRL_BYTES)
        return self._verify_crl(raw, issuer, now)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=True,
                max_redirects=3,
                headers={"user-agent": "lgsp-gateway revocation check"},
            )
            self._client_loop = loop
        return self._client

    async def _fetch(
        self, url: str, limit: int, *, content: bytes | None = None, content_type: str = ""
    ) -> bytes:
        self.fetches += 1
        client = self._http()
        try:
            if content is None:
                request = client.build_request("GET", url)
            else:
                request = client.build_request(
                    "POST", url, content=content, headers={"content-type": content_type}
                )
            response = await client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise SourceError(f"answered HTTP {response.status_code}", reachable=True)
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise SourceError(f"answer larger than {limit} bytes", reachable=True)
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise SourceError(
                f"no answer within {self.timeout:g} s (a firewall or proxy dropping the traffic?)",
                reachable=False,
            ) from None
        except httpx.ConnectError as exc:
            raise SourceError(f"cannot connect: {_short(exc)}", reachable=False) from None
        except httpx.HTTPError as exc:
            raise SourceError(f"transfer failed: {_short(exc)}", reachable=False) from None

    def _verify_ocsp(
        self, raw: bytes, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> Answer:
        try:
            response = ocsp.load_der_ocsp_response(raw)
        except ValueError:
            raise SourceError("the answer is not an OCSP response", reachable=True) from None
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise SourceError(
                f"responder refused: {response.response_status.name.lower()}", reachable=True
            )
        single = None
        for candidate in response.responses:
            digest = candidate.hash_algorithm
            name_hash = hashes.Hash(digest)
            name_hash.update(issuer.subject.public_bytes())
            if (
                candidate.serial_number == cert.serial_number
                and candidate.issuer_name_hash == name_hash.finalize()
                and candidate.issuer_key_hash == _ocsp_key_hash(issuer, digest)
            ):
                single = candidate
                break
        if single is None:
            raise SourceError("the response is about another certificate", reachable=True)
        signer = self._ocsp_signer(response, issuer, now)
        oid = response.signature_algorithm_oid
        if oid == SignatureAlgorithmOID.RSASSA_PSS:
            raise SourceError("RSA-PSS signed OCSP responses are not supported", reachable=True)
        try:
            verify_signature(
                signer.public_key(),
                response.signature,
                response.tbs_response_bytes,
                response.signature_hash_algorithm,
            )
        except (InvalidSignature, UnsupportedAlgorithm):
            raise SourceError("the response's signature does not verify", reachable=True) from None
        this_update, next_update = single.this_update_utc, single.next_update_utc
        self._check_fresh(this_update, next_update, now)
        responder = subject_of(signer)
        if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return Answer("good", this_update, next_update, responder=responder)
        if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            why = single.revocation_reason
            return Answer(
                "revoked",
                this_update,
                next_update,
                revoked_at=single.revocation_time_utc,
                revocation_reason=why.name if why else None,
                responder=responder,
            )
        return Answer("unknown", this_update, next_update, responder=responder)

    def _ocsp_signer(
        self, response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime
    ) -> x509.Certificate:
        """The issuing CA, or a delegated responder it certified for OCSP signing (RFC 6960)."""

        def names(cert: x509.Certificate) -> bool:
            if response.responder_key_hash is not None:
                return response.responder_key_hash == _key_hash(cert)
            return response.responder_name == cert.subject

        if names(issuer):
            return issuer
        for candidate in response.certificates:
            if not names(candidate):
                continue
            if not issued_by(candidate, issuer):
                raise SourceError("the responder certificate is not from the CA", reachable=True)
            try:
                eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                eku = x509.ExtendedKeyUsage([])
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                raise SourceError(
                    "the responder certificate is not for OCSP signing", reachable=True
                )
            if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
                raise SourceError("the responder certificate is expired", reachable=True)
            return candidate
        raise SourceError("the response is not signed by the CA or its responder", reachable=True)

    def _verify_crl(
        self, raw: bytes, issuer: x509.Certificate, now: dt.datetime
    ) -> tuple[Answer, x509.CertificateRevocationList]:
        try:
            crl = (
                x509.load_pem_x509_crl(raw)
                if raw.lstrip().startswith(b"-----BEGIN")
                else x509.load_der_x509_crl(raw)
            )
        except ValueError:
            raise SourceError("the answer is not a CRL", reachable=True) from None
        if crl.issuer != issuer.subject:
            raise SourceError(f"the CRL is issued by {crl.issuer.rfc4514_string()}", reachable=True)
        try:
            verify_signature(
                issuer.public_key(),
                crl.signature,
                crl.tbs_certlist_bytes,
                crl.signature_hash_algorithm,
                crl.signature_algorithm_parameters,
            )
        except (InvalidSignature, UnsupportedAlgorithm, ValueError):
            raise SourceError("the CRL's signature does not verify", reachable=True) from None
        try:
            usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.crl_sign:
                raise SourceError("the CA's keyUsage does not allow signing CRLs", reachable=True)
        except x509.ExtensionNotFound:
            pass
        try:
            point = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
            if point.value.indirect_crl or point.value.only_some_reasons:
                raise SourceError("indirect or partitioned CRLs are not supported", reachable=True)
        except x509.ExtensionNotFound:
            pass
        self._check_fresh(crl.last_update_utc, crl.next_update_utc, now)
        answer = Answer(
            "good",
            crl.last_update_utc,
            crl.next_update_utc,
            responder=subject_of(issuer),
        )
        return answer, crl

    def _check_fresh(
        self, this_update: dt.datetime, next_update: dt.datetime | None, now: dt.datetime
    ) -> None:
        if this_update > now + CLOCK_SKEW:
            raise SourceError(
                f"issued in the future ({this_update.isoformat()}): check the clocks",
                reachable=True,
            )
        if next_update is not None and next_update < now - CLOCK_SKEW:
            raise SourceError(
                f"stale: next update was due {next_update.isoformat()}", reachable=True
            )
        if next_update is None and this_update < now - self.max_age:
            raise SourceError(f"stale: issued {this_update.isoformat()}", reachable=True)


def _ocsp_key_hash(cert: x509.Certificate, digest: hashes.HashAlgorithm) -> bytes:
    if isinstance(digest, hashes.SHA1):
        return _key_hash(cert)
    # the hash of the subjectPublicKey BIT STRING contents, with another algorithm
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_bits = _bit_string_contents(spki)
    h = hashes.Hash(digest)
    h.update(key_bits)
    return h.finalize()


def _bit_string_contents(spki: bytes) -> bytes:
    """The subjectPublicKey bits of a DER SubjectPublicKeyInfo (SEQUENCE { alg, BIT STRING })."""
    from asn1crypto import keys  # type: ignore[import-untyped]

    info = keys.PublicKeyInfo.load(spki)
    bits: bytes = info["public_key"].contents[1:]
    return bits


def _crl_reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        return str(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name)
    except x509.ExtensionNotFound:
        return None


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
