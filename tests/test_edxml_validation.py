"""Every edXML rule, with the path and code a sender sees; the tolerated variants."""

from __future__ import annotations

from datetime import date

import pytest

import schemas.edxml as edxml
from adapters.bodies import BodyInvalid
from gateway.validation import XmlBody
from schemas.edxml import EdxmlInvalid, EdxmlLimits, Organization, build_bytes, validate
from tests.fixtures.edxml import samples
from tests.fixtures.edxml.samples import MESSAGE_HEADER_XML, raw
from tests.support.config import ROOT

MH = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
TRACE = "/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList"
MANIFEST = "/edXML/edXMLEnvelope/edXMLBody/edXMLManifest"
ATTACHMENTS = "/edXML/AttachmentEncoded"
DOCUMENT_XSD = XmlBody("edxml/edxml.xsd", str(ROOT / "schemas/edxml/edxml.xsd"))

FROM = "<From><OrganId>000.00.11.H53</OrganId></From>"
TO = "<To><OrganId>000.00.00.G22</OrganId></To>"
TO_2 = "<To><OrganId>000.00.12.H53</OrganId></To>"
SUBJECT = "<Subject>V/v triển khai nền tảng tích hợp</Subject>"


def header(*fields: str) -> str:
    return FROM + TO + "".join(fields)


def attachment(content_id: str, content: str = "JVBERi0xLjQK", name: str = "a.pdf") -> str:
    return (
        f"<Attachment><ContentId>{content_id}</ContentId><AttachmentName>{name}</AttachmentName>"
        f"<ContentTransferEncoded>{content}</ContentTransferEncoded></Attachment>"
    )


def manifest(*content_ids: str, name: str = "a.pdf") -> str:
    references = "".join(
        f"<Reference><ContentId>{c}</ContentId><AttachmentName>{name}</AttachmentName></Reference>"
        for c in content_ids
    )
    return f'<edXMLBody><edXMLManifest version="1.0">{references}</edXMLManifest></edXMLBody>'


# (document, the issue it must produce, whether the XSD can say it too)
# fmt: off
CASES: dict[str, tuple[bytes, tuple[str, str], bool]] = {
    "no receiver": (raw(FROM + SUBJECT), (f"{MH}/To", "missing_receiver"), True),
    "receiver twice": (raw(header(TO_2, TO, SUBJECT)), (f"{MH}/To[3]/OrganId", "duplicate_receiver"), True),
    "subject over 500": (raw(header(f"<Subject>{'V/v ' + 'x' * 497}</Subject>")), (f"{MH}/Subject", "too_long"), True),
    "content over 500": (raw(header(f"<Content>{'đ' * 501}</Content>")), (f"{MH}/Content", "too_long"), True),
    "place over 150": (
        raw(header(f"<PromulgationInfo><Place>{'Hà Nội ' * 22}</Place></PromulgationInfo>")),
        (f"{MH}/PromulgationInfo/Place", "too_long"),
        True,
    ),
    "to-place over 150": (
        raw(header(f"<ToPlaces><Place>Như trên</Place><Place>{'Lưu ' * 40}</Place></ToPlaces>")),
        (f"{MH}/ToPlaces/Place[2]", "too_long"),
        True,
    ),
    "appendix over 250": (
        raw(header(f"<OtherInfo><Appendixes><Appendix>{'Phụ lục ' * 32}</Appendix></Appendixes></OtherInfo>")),
        (f"{MH}/OtherInfo/Appendixes/Appendix[1]", "too_long"),
        True,
    ),
    "attachment name over 200": (
        raw(header(), body=manifest("cid:1", name="a" * 201), attachments=attachment("cid:1", name="a" * 201)),
        (f"{MANIFEST}/Reference[1]/AttachmentName", "too_long"),
        True,
    ),
    "sender id lower case": (
        raw("<From><OrganId>000.00.11.h53</OrganId></From>" + TO),
        (f"{MH}/From/OrganId", "bad_organ_id"),
        True,
    ),
    "receiver id short": (
        raw(header("<To><OrganId>00.00.11.H53</OrganId></To>")),
        (f"{MH}/To[2]/OrganId", "bad_organ_id"),
        True,
    ),
    "document id with a DD/MM/YYYY date": (
        raw(header("<DocumentId>000.00.11.H53,20/11/2026,1234/UBND-VP</DocumentId>")),
        (f"{MH}/DocumentId", "bad_document_id"),
        True,
    ),
    "document id without the agency": (
        raw(header("<DocumentId>1234/UBND-VP</DocumentId>")),
        (f"{MH}/DocumentId", "bad_document_id"),
        True,
    ),
    "document id on 30 February": (
        raw(header("<DocumentId>000.00.11.H53,2026/02/30,1234/UBND-VP</DocumentId>")),
        (f"{MH}/DocumentId", "bad_document_id"),
        False,  # a pattern cannot know calendars
    ),
    "promulgation date with dots": (
        raw(header("<PromulgationInfo><PromulgationDate>20.11.2026</PromulgationDate></PromulgationInfo>")),
        (f"{MH}/PromulgationInfo/PromulgationDate", "bad_date"),
        True,
    ),
    "due date 31/02": (raw(header("<DueDate>31/02/2026</DueDate>")), (f"{MH}/DueDate", "bad_date"), False),
    "trace timestamp ISO with T": (
        raw(
            header(),
            after_header="<TraceHeaderList><TraceHeader><OrganId>000.00.11.H53</OrganId>"
            "<Timestamp>2026-11-20T15:42:07</Timestamp></TraceHeader></TraceHeaderList>",
        ),
        (f"{TRACE}/TraceHeader[1]/Timestamp", "bad_date"),
        True,
    ),
    "no sender": (raw(TO + SUBJECT), (f"{MH}/From", "missing_element"), True),
    "sender without id": (raw("<From><OrganName>UBND tỉnh</OrganName></From>" + TO), (f"{MH}/From/OrganId", "missing_element"), True),
    "no MessageHeader": (
        f'<edXML xmlns="{samples.EDXML_NS}"><edXMLEnvelope><edXMLHeader/></edXMLEnvelope></edXML>'.encode(),
        ("/edXML/edXMLEnvelope/edXMLHeader/MessageHeader", "missing_element"),
        True,
    ),
    "unknown element": (raw(header("<ApplicationType>MCDT</ApplicationType>")), (f"{MH}/ApplicationType", "unexpected_element"), True),
    "element in no namespace": (
        raw(header('<Subject xmlns="">V/v ...</Subject>')),
        (f"{MH}/Subject", "unexpected_element"),
        True,
    ),
    "subject twice": (raw(header(SUBJECT, SUBJECT)), (f"{MH}/Subject[2]", "duplicate_element"), False),
    "To before From": (raw(TO + FROM), (f"{MH}/From", "misplaced_element"), True),
    "steering type in words": (raw(header("<SteeringType>không</SteeringType>")), (f"{MH}/SteeringType", "bad_integer"), True),
    "priority outside the table": (
        raw(header("<OtherInfo><Priority>7</Priority></OtherInfo>")),
        (f"{MH}/OtherInfo/Priority", "bad_code"),
        True,
    ),
    "document type too big": (
        raw(header("<DocumentType><Type>1000</Type></DocumentType>")),
        (f"{MH}/DocumentType/Type", "bad_code"),
        True,
    ),
    "BussinessDocType outside the table": (
        raw(header(), after_header="<TraceHeaderList><Bussiness><BussinessDocType>4</BussinessDocType></Bussiness></TraceHeaderList>"),
        (f"{TRACE}/Bussiness/BussinessDocType", "bad_code"),
        True,
    ),
    "attribute on Subject": (raw(header('<Subject lang="vi">V/v ...</Subject>')), (f"{MH}/Subject/@lang", "unexpected_attribute"), True),
    "text inside From": (
        raw("<From>UBND<OrganId>000.00.11.H53</OrganId></From>" + TO),
        (f"{MH}/From", "unexpected_text"),
        True,
    ),
    "attachment not base64": (
        raw(header(), body=manifest("cid:1"), attachments=attachment("cid:1", "%PDF-1.4 ###")),
        (f"{ATTACHMENTS}/Attachment[1]/ContentTransferEncoded", "bad_base64"),
        True,
    ),
    "attachment without content": (
        raw(header(), body=manifest("cid:1"), attachments="<Attachment><ContentId>cid:1</ContentId></Attachment>"),
        (f"{ATTACHMENTS}/Attachment[1]/ContentTransferEncoded", "missing_element"),
        True,
    ),
    "two attachments, one ContentId": (
        raw(header(), body=manifest("cid:1"), attachments=attachment("cid:1") + attachment("1")),
        (f"{ATTACHMENTS}/Attachment[2]/ContentId", "duplicate_content_id"),
        False,  # cid:1 and 1 are the same file to us, not to a key constraint
    ),
    "manifest lists a missing attachment": (
        raw(header(), body=manifest("cid:1", "cid:2"), attachments=attachment("cid:1")),
        (f"{MANIFEST}/Reference[2]/ContentId", "missing_attachment"),
        False,
    ),
    "attachment not in the manifest": (
        raw(header(), body=manifest("cid:1"), attachments=attachment("cid:1") + attachment("cid:2")),
        (f"{ATTACHMENTS}/Attachment[2]/ContentId", "unreferenced_attachment"),
        False,
    ),
}
# fmt: on


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_names_its_path_and_code(case: str) -> None:
    document, expected, _ = CASES[case]
    issues = validate(document)
    assert expected in {(i.path, i.rule) for i in issues}, issues
    assert all(i.message for i in issues)
    with pytest.raises(EdxmlInvalid) as caught:
        edxml.parse(document)
    assert caught.value.errors == issues


@pytest.mark.parametrize("case", [c for c, (_, _, xsd) in CASES.items() if xsd])
def test_the_xsd_refuses_what_it_can_express(case: str) -> None:
    with pytest.raises(BodyInvalid):
        DOCUMENT_XSD.validate(CASES[case][0])


def test_valid_minimal_document_for_both() -> None:
    assert validate(raw(MESSAGE_HEADER_XML)) == []
    DOCUMENT_XSD.validate(raw(MESSAGE_HEADER_XML))


def test_every_problem_is_reported_at_once() -> None:
    document = raw(
        "<From><OrganId>UBND-TQ</OrganId></From>"
        "<To><OrganId>000.00.00.G22</OrganId></To><To><OrganId>000.00.00.G22</OrganId></To>"
        "<DocumentId>1234/UBND-VP</DocumentId>"
        f"<Subject>{'x' * 501}</Subject>"
        "<PromulgationInfo><PromulgationDate>20-11-2026</PromulgationDate></PromulgationInfo>"
    )
    assert [(i.path, i.rule) for i in validate(document)] == [
        (f"{MH}/From/OrganId", "bad_organ_id"),
        (f"{MH}/To[2]/OrganId", "duplicate_receiver"),
        (f"{MH}/DocumentId", "bad_document_id"),
        (f"{MH}/PromulgationInfo/PromulgationDate", "bad_date"),
        (f"{MH}/Subject", "too_long"),
    ]


def test_the_messages_say_what_is_expected() -> None:
    issues = {
        i.rule: i.message
        for i in validate(
            raw(
                "<From><OrganId>H53</OrganId></From>" + TO + TO
                + "<DocumentId>1234</DocumentId><Subject>" + "x" * 600 + "</Subject>"
            )
        )
    }  # fmt: skip
    assert "000.00.11.H53" in issues["bad_organ_id"]
    assert "is already To[1]" in issues["duplicate_receiver"]
    assert "<OrganId>,<YYYY/MM/DD>,<Number>/<Notation>" in issues["bad_document_id"]
    assert "600 characters; at most 500" in issues["too_long"]


def test_limits_are_configurable() -> None:
    subject = "V/v triển khai kế hoạch chuyển đổi số năm 2027 trên địa bàn tỉnh"  # 64 characters
    document = raw(header(f"<Subject>{subject}</Subject>"))
    assert validate(document) == []
    (issue,) = validate(document, limits=EdxmlLimits(max_subject_chars=50))
    assert (issue.path, issue.rule) == (f"{MH}/Subject", "too_long")
    assert (
        validate(
            raw(header(f"<Subject>{'x' * 800}</Subject>")),
            limits=EdxmlLimits(max_subject_chars=1000),
        )
        == []
    )


def test_typed_documents_are_checked_the_same_way() -> None:
    document = samples.document(
        To=[samples.VPCP, Organization(OrganId="000.00.00.G22", OrganName="VPCP (lần 2)")],
        Subject="V/v \x01 ký tự điều khiển",
        DueDate="31-12-2026",
    )
    assert {(i.path, i.rule) for i in edxml.check(document)} == {
        (f"{MH}/To[2]/OrganId", "duplicate_receiver"),
        (f"{MH}/Subject", "bad_character"),
        (f"{MH}/DueDate", "bad_date"),
    }
    with pytest.raises(EdxmlInvalid):
        build_bytes(document)


# --- what is tolerated, because systems in service send it ---


def test_quirks_sample_is_valid() -> None:
    with edxml.parse(samples.QUIRKS) as document:
        assert document.signature_present  # a Signature in the edXML namespace
        assert document.signature_xml is not None and b"sig-7816" in document.signature_xml
        header = document.header
        assert header.PromulgationInfo is not None
        assert header.PromulgationInfo.PromulgationDate == "2015/09/30"  # sent 30/09/2015
        assert edxml.parse_date("30/09/2015") == edxml.parse_date("2015-09-30") == date(2015, 9, 30)
        assert header.DueDate == "2015/10/15"
        assert header.DocumentType is not None and header.DocumentType.Type == 18
        assert header.SteeringType == 1
        assert header.From.OrganizationInCharge is None  # an empty element is an absent one
        parts = edxml.parse_document_id(header.DocumentId or "")
        assert parts is not None
        assert (parts.organ_id, parts.date, parts.number, parts.notation) == (
            "000.00.00.G22",
            date(2015, 9, 30),
            "7816",
            "VPCP-TTĐT",
        )


@pytest.mark.parametrize("namespace", ["http://www.w3.org/2000/09/xmldsig#", samples.EDXML_NS])
def test_signature_in_either_namespace(namespace: str) -> None:
    signature = (
        f'<Signature xmlns="{namespace}"><SignedInfo><SignatureMethod '
        'Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/></SignedInfo>'
        "<SignatureValue>AAAA</SignatureValue></Signature>"
    )
    document = raw(MESSAGE_HEADER_XML, after_header=signature)
    assert validate(document) == []
    DOCUMENT_XSD.validate(document)
    with edxml.parse(document) as parsed:
        assert parsed.signature_present


def test_signature_in_another_namespace_or_twice_is_not() -> None:
    foreign = '<Signature xmlns="urn:example:not-dsig"/>'
    twice = '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>' * 2
    assert [i.rule for i in validate(raw(after_header=foreign))] == ["unexpected_element"]
    assert [i.rule for i in validate(raw(after_header=twice))] == ["duplicate_element"]


@pytest.mark.parametrize("promulgation_date", ["2026/11/20", "20/11/2026"])
@pytest.mark.parametrize(("steering", "document_type"), [(0, 1), (1, 18), (5, 42)])
def test_dates_and_small_integers_sources_disagree_on(
    promulgation_date: str, steering: int, document_type: int
) -> None:
    document = raw(
        header(
            f"<PromulgationInfo><PromulgationDate>{promulgation_date}</PromulgationDate></PromulgationInfo>",
            f"<SteeringType>{steering}</SteeringType>",
            f"<DocumentType><Type>{document_type}</Type><TypeName>Công văn</TypeName></DocumentType>",
        )
    )
    assert validate(document) == []
    DOCUMENT_XSD.validate(document)


def test_fields_after_to_in_any_order() -> None:
    document = raw(
        header(
            "<SteeringType>0</SteeringType>",
            SUBJECT,
            "<DocumentId>000.00.11.H53,2026/11/20,1/UBND</DocumentId>",
        )
    )
    assert validate(document) == []
    DOCUMENT_XSD.validate(document)


def test_organ_id_shape_not_a_list() -> None:
    assert edxml.is_organ_id("000.00.11.H53") and edxml.is_organ_id("999.99.99.Z99")
    for bad in (
        "000.00.11.H5",
        "000.00.11.h53",
        "000.00.11.H53 ",
        "０００.00.11.H53",
        "000-00-11-H53",
    ):
        assert not edxml.is_organ_id(bad)
