"""Paths to trust anchors, validity, key usage, and revocation over real OCSP/CRL servers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.signatures import RevocationChecker, TrustSettings, TrustStore
from tests.support.signed_documents import edxml, sign_edxml
from tests.support.signing_pki import NOW, Signers, SigningPKI, check, codes, pem, settings_for


@pytest.fixture
def responder_down(signing_pki: SigningPKI) -> Iterator[None]:
    signing_pki.down = True
    try:
        yield
    finally:
        signing_pki.down = False


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("wrong_usage", "key_usage"),
        ("untrusted", "untrusted_root"),
        ("revoked", "revoked"),
    ],
)
def test_certificate_problems(
    signing_pki: SigningPKI, signers: Signers, who: str, code: str
) -> None:
    result = check(sign_edxml(edxml(), getattr(signers, who)), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {code}, result.reasons
    assert not result.accepted and result.signed_content is None
    assert result.time_source == "verification_time"
    vi, en = result.reasons[0].message_vi, result.reasons[0].message_en
    assert vi and en and vi != en


def test_revoked_is_an_error_even_when_revocation_soft_fails(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    result = check(sign_edxml(edxml(), signers.revoked), signing_pki, revocation="soft-fail")
    (detail,) = result.signatures
    assert detail.revocation[0].status == "revoked" and detail.revocation[0].source == "ocsp"
    assert detail.revocation[0].revoked_at is not None
    assert codes(result) == {"revoked"}


def test_revoked_found_in_the_crl(signing_pki: SigningPKI) -> None:
    revoked = signing_pki.issue("CRL Revoked Signer", ocsp=False)
    signing_pki.revoke(revoked)
    result = check(sign_edxml(edxml(), revoked), signing_pki)
    assert codes(result) == {"revoked"}
    assert result.signatures[0].revocation[0].source == "crl"


def test_good_from_the_crl_when_there_is_no_ocsp(signing_pki: SigningPKI, signers: Signers) -> None:
    result = check(sign_edxml(edxml(), signers.crl_only), signing_pki)
    assert result.verdict == "valid", result.reasons
    assert result.signatures[0].revocation[0].source == "crl"


def test_missing_intermediate_comes_from_the_configured_folder(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    document = sign_edxml(edxml(), signers.good, chain=False)
    assert codes(check(document, signing_pki)) == {"untrusted_root"}
    with_folder = settings_for(signing_pki, intermediates=str(signing_pki.intermediates))
    assert check(document, signing_pki, settings=with_folder).verdict == "valid"


def test_path_length_constraint(signing_pki: SigningPKI) -> None:
    """The signing CA has pathLen 0: a CA below it may not issue signers."""
    sub_ca = signing_pki._authority("Rogue Sub CA", signing_pki.ca, path_length=0)
    signer = signing_pki.issue("Below Rogue", issuer=sub_ca)
    document = sign_edxml(edxml(), signer)  # carries the signer and the rogue CA
    settings = settings_for(signing_pki, intermediates=str(signing_pki.intermediates))
    result = check(document, signing_pki, settings=settings)
    assert result.verdict == "invalid" and codes(result) == {"invalid_path"}
    assert "pathLenConstraint 0" in result.reasons[0].detail


@pytest.mark.usefixtures("responder_down")
def test_responder_down_hard_fail_soft_fail_off(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(), signers.good)
    hard = check(document, signing_pki, revocation="hard-fail")
    assert hard.verdict == "invalid" and codes(hard) == {"revocation_unknown"}
    assert hard.reasons[0].severity == "error"
    soft = check(document, signing_pki, revocation="soft-fail")
    assert soft.verdict == "valid_with_warnings" and codes(soft) == {"revocation_unknown"}
    attempts = soft.signatures[0].revocation[0].attempts
    assert len(attempts) == 2 and all("HTTP 503" in a for a in attempts)
    assert attempts[0].startswith("ocsp ") and attempts[1].startswith("crl ")
    off = check(document, signing_pki, revocation="off")
    assert off.verdict == "valid"
    assert [r.status for r in off.signatures[0].revocation] == ["not_checked", "not_checked"]


def test_unreachable_responder(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(), signers.unreachable)
    soft = check(document, signing_pki)
    assert soft.verdict == "valid_with_warnings" and codes(soft) == {"revocation_unknown"}
    assert "cannot connect" in soft.reasons[0].detail
    assert check(document, signing_pki, revocation="hard-fail").verdict == "invalid"


def test_override_reaches_a_mirror(signing_pki: SigningPKI, signers: Signers) -> None:
    """The certificate names a host we cannot reach; the settings name a mirror."""
    settings = settings_for(
        signing_pki, ocsp_overrides={"LGSP Test Signing CA": f"{signing_pki.base_url}/ocsp"}
    )
    result = check(sign_edxml(edxml(), signers.unreachable), signing_pki, settings=settings)
    assert result.signatures[0].revocation[0].status == "good"
    assert result.signatures[0].revocation[0].url == f"{signing_pki.base_url}/ocsp"


def test_stale_crl_is_not_used(signing_pki: SigningPKI, signers: Signers) -> None:
    stale = f"{signing_pki.base_url}/crl/stale-{signing_pki.ca.slug}.crl"
    settings = settings_for(signing_pki, crl_overrides={"*": stale})
    result = check(sign_edxml(edxml(), signers.crl_only), signing_pki, settings=settings)
    assert codes(result) == {"revocation_unknown"}
    assert "stale" in result.signatures[0].revocation[0].attempts[0]


def test_delegated_and_forged_ocsp_responses(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(), signers.good)
    try:
        signing_pki.ocsp_signing = "delegated"
        delegated = check(document, signing_pki)
        assert delegated.verdict == "valid", delegated.reasons
        assert delegated.signatures[0].revocation[0].source == "ocsp"
        signing_pki.ocsp_signing = "forged"
        forged = check(document, signing_pki)
        info = forged.signatures[0].revocation[0]
        assert "signature does not verify" in info.attempts[0]
        assert info.source == "crl" and info.status == "good"  # fell back to the CRL
    finally:
        signing_pki.ocsp_signing = "ca"


def test_answers_are_cached(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(), signers.good)
    settings = settings_for(signing_pki)

    async def twice() -> tuple[int, int, bool]:
        checker = RevocationChecker(settings)
        try:
            first = check_with(checker)
            await first
            fetched = checker.fetches
            second = await check_with(checker)
            return fetched, checker.fetches, second.signatures[0].revocation[0].from_cache
        finally:
            await checker.aclose()

    async def check_with(checker: RevocationChecker):  # type: ignore[no-untyped-def]
        from gateway.signatures import SignaturePolicy, verify

        return await verify(
            document,
            "application/xml",
            policy=SignaturePolicy(),
            trust=TrustStore.load(settings),
            revocation=checker,
        )

    fetched, after, cached = asyncio.run(twice())
    assert fetched == 2 and after == 2 and cached


def test_a_failed_source_is_not_retried_at_once(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(), signers.unreachable)
    settings = settings_for(signing_pki)

    async def twice() -> tuple[int, str]:
        checker = RevocationChecker(settings)
        try:
            from gateway.signatures import SignaturePolicy, verify

            trust = TrustStore.load(settings)
            policy = SignaturePolicy()
            await verify(
                document, "application/xml", policy=policy, trust=trust, revocation=checker
            )
            fetched = checker.fetches
            again = await verify(
                document, "application/xml", policy=policy, trust=trust, revocation=checker
            )
            assert checker.fetches == fetched
            return fetched, again.signatures[0].revocation[0].attempts[0]
        finally:
            await checker.aclose()

    fetched, attempt = asyncio.run(twice())
    assert fetched >= 2 and "not retried" in attempt


def test_trust_store_reads_pem_bundles_and_der_and_reports_junk(
    tmp_path: Path, signing_pki: SigningPKI
) -> None:
    (tmp_path / "root.der").write_bytes(
        signing_pki.root.cert.public_bytes(serialization.Encoding.DER)
    )
    (tmp_path / "bundle.pem").write_bytes(
        pem(signing_pki.ca.cert) + pem(signing_pki.other_root.cert)
    )
    (tmp_path / "notes.crt").write_text("not a certificate")
    (tmp_path / "README.txt").write_text("ignored: not a certificate file name")
    store = TrustStore.load(TrustSettings(anchors=str(tmp_path)))
    assert len(store.anchors) == 3
    assert len(store.problems) == 1 and "notes.crt" in store.problems[0]
    with pytest.raises(FileNotFoundError):
        TrustStore.load(TrustSettings(anchors=str(tmp_path / "missing")))


def test_build_path_reports_each_check(signing_pki: SigningPKI, signers: Signers) -> None:
    store = TrustStore.load(settings_for(signing_pki, intermediates=str(signing_pki.intermediates)))
    result = store.build_path(signers.good.cert, at=NOW)
    assert result.ok
    names = [c.name for c in result.checks]
    assert names.count("issuer_signature") == 2 and "key_usage" in names
    assert all(c.status == "pass" for c in result.checks)
    later = store.build_path(signers.good.cert, at=NOW + dt.timedelta(days=400))
    assert {r.code for r in later.reasons} == {"expired"}
