"""edXML documents in and out: build -> parse, samples, the JSON form, attachments."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

import pytest

import schemas.edxml as edxml
from adapters.bodies import BodyInvalid
from gateway.validation import JsonBody, XmlBody, resolve_schema
from schemas.edxml import Attachment, EdxmlInvalid, EdxmlLimits, build_bytes, from_json, parse
from tests.fixtures.edxml import samples
from tests.support.config import ROOT

MH = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
DOCUMENT_XSD = XmlBody("edxml/edxml.xsd", str(ROOT / "schemas/edxml/edxml.xsd"))


def test_built_document_parses_back_to_the_same_message() -> None:
    original = samples.document()
    data = build_bytes(original)
    with parse(data) as parsed:
        assert parsed.header == original.header
        assert parsed.trace == original.trace
        assert parsed.manifest == original.manifest
        (attachment,) = parsed.attachments
        assert attachment.content_id == "cid:1"
        assert attachment.name == "1234-UBND-VP.pdf"
        assert attachment.content_type == "application/pdf"
        assert attachment.description == "Công văn 1234/UBND-VP (bản ký số)"
        assert attachment.read_bytes() == samples.FULL_PDF
        assert not parsed.signature_present
    assert "V/v triển khai nền tảng tích hợp".encode() in data  # UTF-8, not character references


def test_what_the_builder_writes_is_valid_for_the_routes_xsd() -> None:
    DOCUMENT_XSD.validate(build_bytes(samples.document()))  # raises BodyInvalid otherwise


def test_full_sample_reads_every_field() -> None:
    with parse(samples.FULL) as document:
        header = document.header
        assert header.From.OrganizationInCharge == "Ủy ban nhân dân tỉnh Tuyên Quang"
        assert header.From.Website == "https://tuyenquang.gov.vn"
        assert [to.OrganId for to in header.To] == ["000.00.00.G22", "000.00.12.H53"]
        assert header.DocumentId == "000.00.11.H53,2026/11/20,1234/UBND-VP"
        assert header.Code == edxml.Code(CodeNumber="1234", CodeNotation="UBND-VP")
        assert header.PromulgationInfo == edxml.PromulgationInfo(
            Place="Tuyên Quang", PromulgationDate="2026/11/20"
        )
        assert header.DocumentType == edxml.DocumentType(Type=1, TypeDetail=0, TypeName="Công văn")
        assert header.SignerInfo is not None and header.SignerInfo.FullName == "Nguyễn Văn An"
        assert header.OtherInfo is not None and header.OtherInfo.Priority == edxml.Priority.URGENT
        assert header.OtherInfo.Appendixes == ["Phụ lục I: Danh sách cơ quan, đơn vị triển khai"]
        assert header.SteeringType == 0
        assert header.ToPlaces == [
            "Văn phòng Chính phủ",
            "Các sở, ban, ngành tỉnh",
            "Lưu: VT, KGVX",
        ]
        assert document.trace == [
            edxml.TraceHeader(OrganId="000.00.11.H53", Timestamp="2026/11/20 15:42:07")
        ]
        assert document.bussiness is not None
        assert document.bussiness.BussinessDocType == edxml.BussinessDocType.NEW
        assert document.bussiness.StaffInfo == edxml.StaffInfo(
            Department="Phòng Hành chính - Tổ chức",
            Staff="Trần Thị Hoa",
            Email="hoatt@tuyenquang.gov.vn",
            Mobile="0912345678",
        )
        assert [r.AttachmentName for r in document.manifest] == [
            "1234-UBND-VP.pdf",
            "Phu luc I.txt",
        ]
        assert document.manifest_version == "1.0"
        assert document.signature_present
        assert document.signature_xml is not None and b"xmldsig#rsa-sha1" in document.signature_xml


def test_attachments_are_decoded_with_size_and_sha256() -> None:
    with parse(samples.FULL) as document:
        pdf, appendix = document.attachments
        assert (pdf.size, pdf.sha256) == (
            len(samples.FULL_PDF),
            hashlib.sha256(samples.FULL_PDF).hexdigest(),
        )
        assert pdf.read_bytes() == samples.FULL_PDF  # line-wrapped base64 in the file
        assert appendix.size == len(samples.FULL_APPENDIX)
        assert appendix.sha256 == hashlib.sha256(samples.FULL_APPENDIX).hexdigest()
        # The manifest says cid:phu-luc-1, the attachment only phu-luc-1: the same file.
        assert document.attachment("cid:phu-luc-1") is appendix


def test_sample_round_trips_through_the_builder() -> None:
    with parse(samples.FULL) as first, parse(build_bytes(first)) as second:
        assert second.header == first.header
        assert (second.trace, second.bussiness) == (first.trace, first.bussiness)
        assert second.manifest == first.manifest
        assert [a.sha256 for a in second.attachments] == [a.sha256 for a in first.attachments]


def test_each_open_is_an_independent_reader() -> None:
    with parse(samples.FULL, limits=EdxmlLimits(spool_memory_bytes=1024)) as document:
        appendix = document.attachments[1]  # 2400 bytes: spilled to a temp file
        with appendix.open() as one, appendix.open() as two:
            assert one.read(100) == samples.FULL_APPENDIX[:100]
            assert two.read(300) == samples.FULL_APPENDIX[:300]  # its own position
            assert one.read() == samples.FULL_APPENDIX[100:]
        with appendix.open() as again:
            again.seek(-5, io.SEEK_END)
            assert again.read() == samples.FULL_APPENDIX[-5:]
    with pytest.raises(ValueError, match="closed"):
        appendix.open()


def test_sources_bytes_path_str_and_stream() -> None:
    data = samples.FULL.read_bytes()
    for source in (data, samples.FULL, str(samples.FULL), io.BytesIO(data)):
        with parse(source) as document:
            assert document.header.DocumentId == "000.00.11.H53,2026/11/20,1234/UBND-VP"
    with pytest.raises(TypeError, match="as bytes"):
        parse(data.decode())  # a str is a path; XML text must be bytes


JSON_FORM = {
    "MessageHeader": {
        "From": {"OrganId": "000.00.11.H53", "OrganName": "UBND tỉnh Tuyên Quang"},
        "To": [
            {"OrganId": "000.00.00.G22", "OrganName": "Văn phòng Chính phủ"},
            {"OrganId": "000.00.13.H53", "OrganName": "Sở Tài chính tỉnh Tuyên Quang"},
        ],
        "DocumentId": "000.00.11.H53,2026/11/22,1250/UBND-KT",
        "Code": {"CodeNumber": "1250", "CodeNotation": "UBND-KT"},
        "PromulgationInfo": {"Place": "Tuyên Quang", "PromulgationDate": "22/11/2026"},
        "Subject": "V/v triển khai kế hoạch chuyển đổi số năm 2027",
        "OtherInfo": {"Priority": 0, "Appendixes": ["Phụ lục: Kế hoạch chi tiết"]},
        "SteeringType": 0,
    },
    "TraceHeaderList": {
        "TraceHeader": [{"OrganId": "000.00.11.H53", "Timestamp": "2026/11/22 09:00:00"}]
    },
    "Attachments": [
        {
            "AttachmentName": "1250-UBND-KT.pdf",
            "Description": "Công văn 1250/UBND-KT",
            "ContentTransferEncoded": base64.encodebytes(samples.FULL_PDF).decode(),
        }
    ],
}


def test_json_form_becomes_edxml() -> None:
    document = from_json(JSON_FORM)
    data = build_bytes(document)
    DOCUMENT_XSD.validate(data)
    with parse(data) as parsed:
        assert parsed.header.Subject == "V/v triển khai kế hoạch chuyển đổi số năm 2027"
        assert [to.OrganName for to in parsed.header.To] == [
            "Văn phòng Chính phủ",
            "Sở Tài chính tỉnh Tuyên Quang",
        ]
        assert parsed.header.PromulgationInfo == edxml.PromulgationInfo(
            Place="Tuyên Quang",
            PromulgationDate="2026/11/22",  # sent 22/11/2026: built canonical
        )
        assert parsed.trace[0].Timestamp == "2026/11/22 09:00:00"
        # The manifest is made from the attachments; the content type from the name.
        assert parsed.manifest == [
            edxml.Reference(
                ContentId="cid:1",
                ContentType="application/pdf",
                Description="Công văn 1250/UBND-KT",
                AttachmentName="1250-UBND-KT.pdf",
            )
        ]
        assert parsed.attachments[0].read_bytes() == samples.FULL_PDF


def test_json_form_as_text_and_as_a_route_schema(tmp_path: Path) -> None:
    import msgspec

    body = msgspec.json.encode(JSON_FORM)
    assert from_json(body).header.DocumentId == "000.00.11.H53,2026/11/22,1250/UBND-KT"
    schema = resolve_schema("schemas.edxml.jsonform:JsonDocument", str(tmp_path))
    assert isinstance(schema, JsonBody)
    schema.validate(body)  # an agency system's POST, checked by the gateway's own machinery


def test_json_form_shape_errors_have_json_paths() -> None:
    bad = {
        "MessageHeader": {"To": [{"OrganId": 22}], "Subjekt": "V/v ..."},
        "Attachments": [{"AttachmentName": "a.pdf", "ContentTransferEncoded": "JVBERi0xLjQK"}],
    }
    with pytest.raises(EdxmlInvalid) as caught:
        from_json(bad)
    found = {(e.path, e.rule) for e in caught.value.errors}
    assert ("$.MessageHeader.To[0].OrganId", "json_shape") in found
    assert ("$.MessageHeader.Subjekt", "json_shape") in found
    assert ("$.MessageHeader.From", "json_shape") in found  # required, missing
    with pytest.raises(EdxmlInvalid) as caught:
        from_json(b'{"MessageHeader": ')
    assert caught.value.errors[0].path == "$"


def test_json_form_attachment_that_is_not_base64() -> None:
    bad = {
        **JSON_FORM,
        "Attachments": [{"AttachmentName": "a.pdf", "ContentTransferEncoded": "%PDF-1.4"}],
    }
    with pytest.raises(EdxmlInvalid) as caught:
        from_json(bad)
    (issue,) = caught.value.errors
    assert (issue.path, issue.rule) == ("$.Attachments[0].ContentTransferEncoded", "bad_base64")


def test_json_form_rules_are_checked_by_build_with_edxml_paths() -> None:
    header = dict(JSON_FORM["MessageHeader"])  # type: ignore[call-overload]
    header["To"] = [{"OrganId": "000.00.00.G22"}, {"OrganId": "G22"}]
    document = from_json({"MessageHeader": header})
    out = io.BytesIO()
    with pytest.raises(EdxmlInvalid) as caught:
        edxml.build(document, out)
    assert [(e.path, e.rule) for e in caught.value.errors] == [
        (f"{MH}/To[2]/OrganId", "bad_organ_id")
    ]
    assert out.getvalue() == b""  # nothing written for a document that would be refused


def test_builder_inserts_a_signature_element() -> None:
    signature = (
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        b'<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>'
        b"</ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>"
    )
    data = build_bytes(samples.document(), signature=signature)
    DOCUMENT_XSD.validate(data)
    with parse(data) as document:
        assert document.signature_present
    with pytest.raises(ValueError, match="Signature"):
        build_bytes(samples.document(), signature=b"<Foo/>")


def test_attachments_from_a_path_and_a_stream(tmp_path: Path) -> None:
    scan = tmp_path / "To trinh 15-TTr-STC.pdf"
    scan.write_bytes(samples.FULL_PDF * 50)
    upload = io.BytesIO(samples.FULL_APPENDIX)
    document = samples.document(
        attachments=[
            Attachment.from_path(scan, description="Tờ trình 15/TTr-STC"),
            Attachment.from_stream(upload, name="phu-luc.txt", content_id="cid:phu-luc"),
        ]
    )
    with parse(build_bytes(document)) as parsed:
        first, second = parsed.attachments
        assert (first.name, first.content_id, first.size) == (
            scan.name,
            "cid:1",
            scan.stat().st_size,
        )
        assert first.sha256 == hashlib.sha256(scan.read_bytes()).hexdigest()
        assert (second.content_id, second.content_type) == ("cid:phu-luc", "text/plain")
        assert second.read_bytes() == samples.FULL_APPENDIX


def test_closing_the_document_releases_its_temp_files() -> None:
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    document = parse(samples.FULL, limits=EdxmlLimits(spool_memory_bytes=16))
    assert open_files() > before  # both attachments went to temp files
    document.close()
    assert open_files() == before


def test_document_answers_xsd_and_validate_the_same_for_samples() -> None:
    for sample in (samples.FULL, samples.QUIRKS):
        assert edxml.validate(sample) == []
        DOCUMENT_XSD.validate(sample.read_bytes())
    with pytest.raises(BodyInvalid):  # a status message is not a document
        DOCUMENT_XSD.validate(samples.STATUS.read_bytes())
