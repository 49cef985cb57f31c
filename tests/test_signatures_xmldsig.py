"""Enveloped XML-DSig on edXML: algorithms, tampering, wrapping, namespace quirk, hostile XML."""

from __future__ import annotations

import base64
import copy
import datetime as dt

import pytest
from lxml import etree

from gateway.signatures import UnusableInput
from tests.support.signed_documents import (
    DS_NS,
    EDXML_NS,
    add_xades_timestamp,
    edxml,
    relocate_signature,
    sign_edxml,
)
from tests.support.signing_pki import NOW, Signers, SigningPKI, check, codes, pem

PLAIN = edxml().replace(f'<ds:Signature xmlns:ds="{DS_NS}" Id="placeholder"/>'.encode(), b"")


def test_valid_rsa_sha256_document(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(), signers.good)
    result = check(document, signing_pki)
    assert result.verdict == "valid", result.reasons
    assert result.accepted
    assert result.signer_subject is not None and "Nguyễn Văn An" in result.signer_subject
    assert result.signer_serial == format(signers.good.cert.serial_number, "X")
    assert result.time_source == "verification_time"
    (detail,) = result.signatures
    assert [c.subject.split(",")[0] for c in detail.chain] == [
        "CN=Nguyễn Văn An",
        "CN=LGSP Test Signing CA",
        "CN=LGSP Test Root",
    ]
    assert [(r.status, r.source) for r in detail.revocation] == [("good", "ocsp"), ("good", "ocsp")]
    assert detail.signature_algorithm == "rsa-sha256" and detail.digest_algorithm == "sha256"
    header = result.summary()
    header.encode("ascii")  # a header value
    assert header.startswith("valid; signer=") and "time_source=verification_time" in header


def test_signed_content_is_the_document_without_its_signature(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    result = check(sign_edxml(edxml(subject="Công văn gốc"), signers.good), signing_pki)
    assert result.signed_content is not None
    signed = etree.fromstring(result.signed_content)
    assert signed.find(f".//{{{DS_NS}}}Signature") is None
    assert signed.findtext(f".//{{{EDXML_NS}}}Subject") == "Công văn gốc"


@pytest.mark.parametrize(
    ("algorithm", "digest"), [("rsa-sha1", "sha1"), ("rsa-sha256", "sha1"), ("rsa-sha1", "sha256")]
)
def test_sha1_is_a_warning_by_default_and_an_error_when_strict(
    signing_pki: SigningPKI, signers: Signers, algorithm: str, digest: str
) -> None:
    document = sign_edxml(edxml(), signers.good, algorithm=algorithm, digest=digest)
    lenient = check(document, signing_pki)
    assert lenient.verdict == "valid_with_warnings"
    assert codes(lenient) == {"weak_algorithm"}
    assert lenient.signed_content is not None
    strict = check(document, signing_pki, algorithms="strict")
    assert strict.verdict == "invalid" and codes(strict) == {"weak_algorithm"}
    assert strict.signed_content is None and not strict.accepted


def test_ecdsa_signer(signing_pki: SigningPKI, signers: Signers) -> None:
    result = check(sign_edxml(edxml(), signers.ecdsa, algorithm="ecdsa-sha256"), signing_pki)
    assert result.verdict == "valid", result.reasons
    assert result.signatures[0].signer is not None
    assert result.signatures[0].signer.key == "ECDSA secp256r1"


def test_rsa_1024_key_is_weak(signing_pki: SigningPKI, signers: Signers) -> None:
    result = check(sign_edxml(edxml(), signers.weak_rsa), signing_pki)
    assert result.verdict == "valid_with_warnings" and codes(result) == {"weak_algorithm"}
    assert "RSA 1024" in result.reasons[0].detail
    assert check(
        sign_edxml(edxml(), signers.weak_rsa), signing_pki, algorithms="strict"
    ).verdict == ("invalid")


def test_sha1_signed_certificate_is_weak(signing_pki: SigningPKI, signers: Signers) -> None:
    result = check(sign_edxml(edxml(), signers.sha1_cert), signing_pki)
    assert result.verdict == "valid_with_warnings", result.reasons
    assert codes(result) == {"weak_algorithm"}
    assert "certificate signed with sha1" in result.reasons[0].detail


def test_tampered_header(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(edxml(subject="Giao 10 tỷ đồng"), signers.good)
    forged = document.replace("Giao 10 tỷ đồng".encode(), "Giao 99 tỷ đồng".encode())
    result = check(forged, signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"digest_mismatch"}
    assert result.signed_content is None and not result.accepted
    assert result.reasons[0].message_vi.startswith("Nội dung đã bị thay đổi")


def test_tampered_attachment(signing_pki: SigningPKI, signers: Signers) -> None:
    document = sign_edxml(
        edxml(attachments=[("bao-cao.txt", "text/plain", b"so lieu 100")]), signers.good
    )
    encoded = base64.b64encode(b"so lieu 100")
    forged = document.replace(encoded, base64.b64encode(b"so lieu 900"))
    assert forged != document
    result = check(forged, signing_pki)
    assert result.verdict == "invalid" and "digest_mismatch" in codes(result)


def test_swapped_certificate(signing_pki: SigningPKI, signers: Signers) -> None:
    """Another person's certificate in KeyInfo: the signature does not verify with its key."""
    document = etree.fromstring(sign_edxml(edxml(), signers.good, chain=False))
    element = document.find(f".//{{{DS_NS}}}X509Certificate")
    assert element is not None
    element.text = base64.b64encode(signers.other.cert.public_bytes(_der())).decode()
    result = check(etree.tostring(document), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"bad_signature"}


def test_resigned_by_a_stranger_is_untrusted(signing_pki: SigningPKI, signers: Signers) -> None:
    result = check(sign_edxml(edxml(), signers.untrusted), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"untrusted_root"}
    assert "Stranger Root" in result.reasons[0].detail


def test_wrapping_the_whole_document_breaks_the_digest(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """The signed envelope moved into an Object of the signature, forged content where the
    application looks: the reference to "" now covers the forged document."""
    signed = etree.fromstring(sign_edxml(edxml(subject="Bản gốc"), signers.good))
    signature = signed.find(f".//{{{DS_NS}}}Signature")
    envelope = signed.find(f"{{{EDXML_NS}}}edXMLEnvelope")
    assert signature is not None and envelope is not None
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    forged = copy.deepcopy(envelope)
    forged.find(f".//{{{EDXML_NS}}}Subject").text = "Bản giả mạo"  # type: ignore[union-attr]
    signed.replace(envelope, forged)
    etree.SubElement(signature, f"{{{DS_NS}}}Object").append(envelope)
    forged.find(f"{{{EDXML_NS}}}edXMLHeader").append(signature)  # type: ignore[union-attr]
    result = check(etree.tostring(signed), signing_pki)
    assert result.verdict == "invalid"
    assert codes(result) == {"signature_wrapping"}  # refused before any digest is computed
    assert result.signed_content is None


def test_wrapping_an_id_reference_is_refused_and_never_returned(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """A signature over one element (URI="#hdr"), the signed element moved aside and a forged
    one put in its place: the signed element still verifies where it was moved, but the
    signature does not cover what the application reads: refused, no content handed back."""
    from signxml import XMLSigner
    from signxml.algorithms import CanonicalizationMethod

    source = edxml(subject="Bản gốc").replace(b"<MessageHeader>", b'<MessageHeader Id="hdr">')
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    root = signer.sign(
        etree.fromstring(source),
        key=signers.good.key_file.read_bytes(),
        cert=[pem(signers.good.cert).decode(), pem(signing_pki.ca.cert).decode()],
        reference_uri="#hdr",
    )
    honest = check(etree.tostring(root), signing_pki)
    assert honest.verdict == "invalid" and codes(honest) == {"incomplete_coverage"}
    header = root.find(f".//{{{EDXML_NS}}}MessageHeader")
    assert header is not None
    forged = etree.fromstring(etree.tostring(header))
    del forged.attrib["Id"]
    forged.find(f"{{{EDXML_NS}}}Subject").text = "Bản giả mạo"  # type: ignore[union-attr]
    header.addprevious(forged)
    etree.SubElement(root, f"{{{EDXML_NS}}}Extension").append(header)  # moved aside
    result = check(etree.tostring(root), signing_pki)
    assert result.verdict == "invalid" and "incomplete_coverage" in codes(result)
    assert result.signed_content is None


def test_signature_in_the_edxml_namespace_is_verified_and_flagged(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    document = sign_edxml(edxml(), signers.good, default_namespace=True)
    quirky = document.replace(f'<Signature xmlns="{DS_NS}">'.encode(), b"<Signature>")
    assert quirky != document
    result = check(quirky, signing_pki)
    assert result.verdict == "valid_with_warnings", result.reasons
    assert codes(result) == {"nonstandard_namespace"}
    assert "http://www.mic.gov.vn/TBT/QCVN_102_2016" in result.reasons[0].detail
    tampered = check(quirky.replace(b"1234/UBND-VP", b"9999/UBND-VP"), signing_pki)
    assert tampered.verdict == "invalid"
    assert codes(tampered) == {"nonstandard_namespace", "digest_mismatch"}


def test_unsigned_document(signing_pki: SigningPKI) -> None:
    result = check(PLAIN, signing_pki)
    assert result.verdict == "unsigned" and result.accepted
    assert result.reasons[0].code == "unsigned" and result.reasons[0].severity == "warning"
    required = check(PLAIN, signing_pki, mode="required")
    assert required.verdict == "unsigned" and not required.accepted
    assert required.reasons[0].severity == "error"
    off = check(PLAIN, signing_pki, mode="off")
    assert off.accepted and not off.checked


def test_missing_certificate(signing_pki: SigningPKI, signers: Signers) -> None:
    document = etree.fromstring(sign_edxml(edxml(), signers.good))
    key_info = document.find(f".//{{{DS_NS}}}KeyInfo")
    assert key_info is not None
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    result = check(etree.tostring(document), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"signer_certificate_missing"}


def test_two_signatures_are_refused(signing_pki: SigningPKI, signers: Signers) -> None:
    document = etree.fromstring(sign_edxml(edxml(), signers.good))
    signature = document.find(f".//{{{DS_NS}}}Signature")
    assert signature is not None
    document.append(etree.fromstring(etree.tostring(signature)))
    result = check(etree.tostring(document), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"malformed_signature"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<edXML>&b;</edXML>",
            "xml_forbidden",
        ),
        (
            b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
            "xml_forbidden",
        ),
        (b"<edXML><unclosed></edXML>", "malformed_body"),
        (b"\x00\x01binary", "unsupported_media_type"),
    ],
)
def test_hostile_or_unusable_input(signing_pki: SigningPKI, body: bytes, code: str) -> None:
    media_type = "" if code == "unsupported_media_type" else "application/xml"
    with pytest.raises(UnusableInput) as caught:
        check(body, signing_pki, media_type=media_type)
    assert caught.value.code == code


def test_large_document_with_a_text_node_over_ten_megabytes(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """edXML carries attachments as base64 text; libxml2 refuses nodes over 10 MB by default."""
    document = sign_edxml(edxml(filler=11 * 1024 * 1024), signers.good)
    assert check(document, signing_pki).verdict == "valid"


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER


def test_xades_timestamp_gives_the_trusted_signing_time(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """The signer's certificate expired yesterday; a XAdES timestamp says it signed earlier."""
    at = NOW - dt.timedelta(days=5)
    signed = sign_edxml(edxml(), signers.past)
    assert codes(check(signed, signing_pki)) == {"expired"}
    stamped = add_xades_timestamp(signed, signers.tsa, at)
    result = check(stamped, signing_pki)
    assert result.verdict == "valid", result.reasons
    assert result.time_source == "timestamp" and result.time_used is not None
    assert abs((result.time_used - at).total_seconds()) < 2
    forged = stamped.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA", 1)
    assert check(forged, signing_pki).verdict == "invalid"
    other = add_xades_timestamp(sign_edxml(edxml(subject="Khác"), signers.past), signers.tsa, at)
    swapped = _graft_timestamp(other, signed)
    result = check(swapped, signing_pki)
    assert codes(result) == {"timestamp_invalid", "expired"}
    assert "imprint" in next(r.detail for r in result.reasons if r.code == "timestamp_invalid")


def _graft_timestamp(source: bytes, target: bytes) -> bytes:
    """The timestamp of one signature put into another signature."""
    stamp = etree.fromstring(source).find(f".//{{{DS_NS}}}Object")
    root = etree.fromstring(target)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    assert stamp is not None and signature is not None
    signature.append(stamp)
    return etree.tostring(root)


def test_a_relocated_signature_hiding_a_forged_header_is_refused(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    """The untouched signature moved first in the root, a forged MessageHeader in its Object:
    the digest alone would still verify, so placement and content are checked first."""
    attack = relocate_signature(sign_edxml(edxml(subject="Bản gốc"), signers.good))
    root = etree.fromstring(attack)
    first = root.find(f".//{{{EDXML_NS}}}MessageHeader/{{{EDXML_NS}}}Subject")
    assert first is not None and first.text == "Bản giả mạo"  # what a naive reader would see
    result = check(attack, signing_pki)
    assert result.verdict == "invalid" and not result.accepted
    assert codes(result) == {"misplaced_signature", "signature_wrapping"}
    assert result.signed_content is None
    wrapping = next(r for r in result.reasons if r.code == "signature_wrapping")
    assert wrapping.message_vi.startswith("Phần tử Signature chứa nội dung edXML")
    assert "bọc chữ ký" in wrapping.message_vi and "wrapping" in wrapping.message_en
    assert "/edXML/Signature/Object/edXMLEnvelope" in wrapping.detail


def test_a_moved_or_stuffed_signature_is_refused_either_way(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    signed = sign_edxml(edxml(), signers.good)
    moved = etree.fromstring(signed)
    signature = moved.find(f".//{{{DS_NS}}}Signature")
    header = moved.find(f".//{{{EDXML_NS}}}MessageHeader")
    assert signature is not None and header is not None
    header.addprevious(signature)  # in edXMLHeader, but before MessageHeader
    result = check(etree.tostring(moved), signing_pki)
    assert codes(result) == {"misplaced_signature"} and result.signed_content is None
    assert "before MessageHeader" in result.reasons[0].detail

    stuffed = etree.fromstring(signed)
    signature = stuffed.find(f".//{{{DS_NS}}}Signature")
    assert signature is not None
    hidden = etree.SubElement(signature, f"{{{DS_NS}}}Object")
    etree.SubElement(hidden, f"{{{EDXML_NS}}}Subject").text = "Bản giả mạo"
    result = check(etree.tostring(stuffed), signing_pki)
    assert codes(result) == {"signature_wrapping"} and result.signed_content is None


def test_xml_that_is_not_edxml_is_not_called_a_valid_edxml_signature(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    near_miss = edxml().replace(EDXML_NS.encode(), f"{EDXML_NS}/WRONG".encode())
    result = check(sign_edxml(near_miss, signers.good), signing_pki)
    assert result.verdict == "invalid" and codes(result) == {"not_edxml"}
    assert result.signatures[0].target == "XML"
    assert f"{EDXML_NS}/WRONG" in result.reasons[0].detail
    unsigned = check(
        near_miss.split(b"<ds:Signature")[0] + b"</edXMLHeader></edXMLEnvelope></edXML>",
        signing_pki,
    )
    assert unsigned.verdict == "unsigned" and "not_edxml" in codes(unsigned)
