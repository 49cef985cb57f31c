"""PAdES in PDFs, trusted time from timestamps, detached CMS, and edXML attachments."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gateway.signatures import (
    Attachment,
    RevocationChecker,
    SignaturePolicy,
    TrustStore,
    UnusableInput,
    verify_attachments,
    verify_detached,
)
from tests.support.signed_documents import (
    blank_pdf,
    change_page,
    detached_cms,
    edxml,
    sign_edxml,
    sign_pdf,
)
from tests.support.signing_pki import NOW, Signers, SigningPKI, check, codes, settings_for

PDF = "application/pdf"


@pytest.fixture(scope="module")
def signed_pdf(signers: Signers) -> bytes:
    return sign_pdf(blank_pdf(), signers.good, tsa=signers.tsa)


def test_pades_with_a_timestamp(
    signing_pki: SigningPKI, signers: Signers, signed_pdf: bytes
) -> None:
    result = check(signed_pdf, signing_pki, media_type=PDF)
    assert result.verdict == "valid", result.reasons
    assert result.time_source == "timestamp"
    (detail,) = result.signatures
    assert detail.kind == "pades" and detail.coverage == "entire_file"
    assert detail.timestamp_authority is not None and "LGSP Test TSA" in detail.timestamp_authority
    assert detail.claimed_signing_time is not None
    assert result.signed_content == signed_pdf


def test_media_type_is_sniffed(signing_pki: SigningPKI, signed_pdf: bytes) -> None:
    assert check(signed_pdf, signing_pki, media_type="application/octet-stream").verdict == "valid"


def test_expired_certificate_with_a_timestamp_from_its_validity(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """The certificate expired yesterday; the timestamp proves it signed five days ago."""
    at = NOW - dt.timedelta(days=5)
    stamped = sign_pdf(blank_pdf(), signers.past, tsa=signers.tsa, timestamp_at=at)
    result = check(stamped, signing_pki, media_type=PDF)
    assert result.verdict == "valid", result.reasons
    assert result.time_source == "timestamp" and result.time_used is not None
    assert abs((result.time_used - at).total_seconds()) < 2
    unstamped = check(sign_pdf(blank_pdf(), signers.past), signing_pki, media_type=PDF)
    assert codes(unstamped) == {"expired"} and unstamped.time_source == "verification_time"


def test_revoked_after_the_trusted_signing_time(signing_pki: SigningPKI, signers: Signers) -> None:
    signer = signing_pki.issue("Revoked Later")
    signing_pki.revoke(signer, NOW - dt.timedelta(hours=1))
    before = sign_pdf(
        blank_pdf(), signer, tsa=signers.tsa, timestamp_at=NOW - dt.timedelta(hours=3)
    )
    result = check(before, signing_pki, media_type=PDF)
    assert result.verdict == "valid", result.reasons
    info = result.signatures[0].revocation[0]
    assert info.status == "good" and info.revoked_at is not None
    after = check(sign_pdf(blank_pdf(), signer), signing_pki, media_type=PDF)
    assert codes(after) == {"revoked"}


def test_untrusted_timestamp_falls_back_to_verification_time(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    stranger_tsa = signing_pki.issue(
        "Stranger TSA",
        issuer=signing_pki.other_root,
        eku=[__import__("cryptography").x509.oid.ExtendedKeyUsageOID.TIME_STAMPING],
    )
    result = check(
        sign_pdf(blank_pdf(), signers.good, tsa=stranger_tsa), signing_pki, media_type=PDF
    )
    assert result.verdict == "valid_with_warnings" and codes(result) == {"timestamp_invalid"}
    assert result.time_source == "verification_time"


def test_modified_after_signing(signing_pki: SigningPKI, signed_pdf: bytes) -> None:
    result = check(change_page(signed_pdf), signing_pki, media_type=PDF)
    assert result.verdict == "invalid" and codes(result) == {"modified_after_signing"}
    (detail,) = result.signatures
    assert detail.coverage == "entire_revision"
    assert detail.modifications is not None and "not allowed" in detail.modifications
    assert detail.signer is not None  # the signer is still named


def test_bytes_changed_inside_the_signed_range(signing_pki: SigningPKI, signed_pdf: bytes) -> None:
    forged = signed_pdf.replace(b"(Quyet dinh so 1234)", b"(Quyet dinh so 9999)")
    assert forged != signed_pdf
    result = check(forged, signing_pki, media_type=PDF)
    assert result.verdict == "invalid" and codes(result) == {"digest_mismatch"}


def test_appended_bytes_are_reported(signing_pki: SigningPKI, signed_pdf: bytes) -> None:
    """Bytes after %%EOF change nothing a reader shows, but they were not signed: a warning,
    and only the signed revision is handed back."""
    result = check(signed_pdf + b"\n% appended\n", signing_pki, media_type=PDF)
    assert result.verdict == "valid_with_warnings"
    assert codes(result) == {"modified_after_signing"}
    assert result.signed_content == signed_pdf


def test_second_signature_is_not_a_modification(signing_pki: SigningPKI, signers: Signers) -> None:
    first = sign_pdf(blank_pdf(), signers.good, field_name="Signature1")
    both = sign_pdf(first, signers.other, field_name="Signature2")
    result = check(both, signing_pki, media_type=PDF)
    assert result.verdict == "valid", result.reasons
    assert len(result.signatures) == 2
    assert result.signatures[0].modifications is not None
    assert "Signature2" in result.signatures[0].modifications
    assert result.signed_content == both


def test_unsigned_and_unreadable_pdfs(signing_pki: SigningPKI) -> None:
    result = check(blank_pdf(), signing_pki, media_type=PDF)
    assert result.verdict == "unsigned"
    with pytest.raises(UnusableInput):
        check(b"%PDF-1.7\nnot really a pdf", signing_pki, media_type=PDF)


def test_weak_key_in_a_pdf(signing_pki: SigningPKI, signers: Signers) -> None:
    result = check(sign_pdf(blank_pdf(), signers.weak_rsa), signing_pki, media_type=PDF)
    assert result.verdict == "valid_with_warnings" and codes(result) == {"weak_algorithm"}


def _detached(pki: SigningPKI, content: bytes, signature: bytes):  # type: ignore[no-untyped-def]
    settings = settings_for(pki)

    async def run():  # type: ignore[no-untyped-def]
        checker = RevocationChecker(settings)
        try:
            return await verify_detached(
                content,
                signature,
                policy=SignaturePolicy(),
                trust=TrustStore.load(settings),
                revocation=checker,
            )
        finally:
            await checker.aclose()

    return asyncio.run(run())


def test_detached_cms(signing_pki: SigningPKI, signers: Signers) -> None:
    content = b"PK\x03\x04 a .docx attachment" * 100
    signature = detached_cms(content, signers.good)
    result = _detached(signing_pki, content, signature)
    assert result.verdict == "valid", result.reasons
    assert result.signatures[0].kind == "cms" and result.signed_content == content
    assert codes(_detached(signing_pki, content + b"!", signature)) == {"digest_mismatch"}
    assert codes(_detached(signing_pki, content, b"garbage")) == {"malformed_signature"}
    assert codes(_detached(signing_pki, content, _swap_certificate(signature, signers))) == {
        "bad_signature"
    }


def _swap_certificate(signature: bytes, signers: Signers) -> bytes:
    """Someone else's certificate in place of the signer's, and the SignerInfo pointed at it."""
    from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped]
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization

    info = asn1_cms.ContentInfo.load(signature)
    signed_data = info["content"]
    other = asn1_x509.Certificate.load(signers.other.cert.public_bytes(serialization.Encoding.DER))
    ca = asn1_x509.Certificate.load(
        signers.good.issuer.cert.public_bytes(serialization.Encoding.DER)
    )
    signed_data["certificates"] = [other, ca]
    signer_info = signed_data["signer_infos"][0]
    signer_info["sid"] = asn1_cms.SignerIdentifier(
        name="issuer_and_serial_number",
        value={"issuer": other.issuer, "serial_number": other.serial_number},
    )
    return bytes(info.dump(force=True))


def test_edxml_with_signed_attachments(signing_pki: SigningPKI, signers: Signers) -> None:
    pdf = sign_pdf(blank_pdf(), signers.other)
    docx = b"PK\x03\x04 quyet dinh" * 50
    attachments = [
        ("quyet-dinh.pdf", PDF, pdf),
        ("phu-luc.docx", "application/vnd.openxmlformats-officedocument", docx),
        ("phu-luc.docx.p7s", "application/pkcs7-signature", detached_cms(docx, signers.ecdsa)),
    ]
    result = check(sign_edxml(edxml(attachments=attachments), signers.good), signing_pki)
    assert result.verdict == "valid", result.reasons
    assert [s.kind for s in result.signatures] == ["xmldsig", "pades", "cms"]
    assert result.signatures[1].target.startswith("attachment:quyet-dinh.pdf")
    assert "Nguyễn Văn An" in (result.signer_subject or "")


def test_edxml_whose_pdf_was_changed_before_it_was_attached(
    signing_pki: SigningPKI, signers: Signers, signed_pdf: bytes
) -> None:
    attachments = [("quyet-dinh.pdf", PDF, change_page(signed_pdf))]
    result = check(sign_edxml(edxml(attachments=attachments), signers.good), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"modified_after_signing"}
    assert result.reasons[0].detail.startswith("attachment:quyet-dinh.pdf")
    assert result.signatures[0].verdict == "valid"  # the envelope itself is fine


def test_orphan_detached_signature(signing_pki: SigningPKI, signers: Signers) -> None:
    lonely = [("mat-tep.pdf.p7s", "application/pkcs7-signature", detached_cms(b"x", signers.good))]
    result = check(sign_edxml(edxml(attachments=lonely), signers.good), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"detached_content_missing"}


def test_attachments_from_another_parser(signing_pki: SigningPKI, signers: Signers) -> None:
    """``verify_attachments`` takes any objects with name, content_type and open()."""
    pdf = sign_pdf(blank_pdf(), signers.good)
    settings = settings_for(signing_pki)

    async def run():  # type: ignore[no-untyped-def]
        checker = RevocationChecker(settings)
        try:
            return await verify_attachments(
                [Attachment(name="a.pdf", content_type=PDF, data=pdf)],
                policy=SignaturePolicy(),
                trust=TrustStore.load(settings),
                revocation=checker,
                now=NOW,
            )
        finally:
            await checker.aclose()

    details, notes = asyncio.run(run())
    assert [d.verdict for d in details] == ["valid"] and notes == []


def test_attachments_of_the_edxml_parser(signing_pki: SigningPKI, signers: Signers) -> None:
    """The glue the pipeline uses: parse what the signature proved, verify its attachments."""
    import schemas.edxml

    pdf = sign_pdf(blank_pdf(), signers.good)
    signed = sign_edxml(edxml(attachments=[("quyet-dinh.pdf", PDF, pdf)]), signers.good)
    settings = settings_for(signing_pki)

    async def run():  # type: ignore[no-untyped-def]
        checker = RevocationChecker(settings)
        trust = TrustStore.load(settings)
        policy = SignaturePolicy(attachments=False)
        try:
            from gateway.signatures import verify

            result = await verify(
                signed, "application/xml", policy=policy, trust=trust, revocation=checker
            )
            assert result.verdict == "valid" and result.signed_content is not None
            with schemas.edxml.parse(result.signed_content, strict=False) as document:
                return await verify_attachments(
                    document.attachments, policy=policy, trust=trust, revocation=checker, now=NOW
                )
        finally:
            await checker.aclose()

    details, notes = asyncio.run(run())
    assert [(d.kind, d.verdict) for d in details] == [("pades", "valid")] and notes == []


def test_der_signature_ending_in_a_whitespace_byte(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """A DER signature is binary: a last byte of 0x20 or 0x0a must not be trimmed away."""
    for counter in range(5000):
        content = b"attachment %d" % counter
        signature = detached_cms(content, signers.good)
        if signature[-1:].isspace():
            break
    else:  # pragma: no cover - odds of ~1e-11
        pytest.skip("no signature ending in whitespace found")
    assert _detached(signing_pki, content, signature).verdict == "valid"
