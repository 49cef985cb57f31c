"""Documents written the way the SDK builders write them: read, normalised, rebuilt canonical."""

from __future__ import annotations

import re

import pytest
from lxml import etree

import schemas.edxml as edxml
from gateway.validation import XmlBody
from schemas.edxml import EdxmlMalformed, build_bytes, validate
from tests.fixtures.edxml import samples
from tests.fixtures.edxml.samples import MESSAGE_HEADER_XML, raw
from tests.support.config import ROOT

DOCUMENT_XSD = XmlBody("edxml/edxml.xsd", str(ROOT / "schemas/edxml/edxml.xsd"))
NS = {"e": samples.EDXML_NS}
TRACE = "/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList"


@pytest.mark.parametrize("sample", [samples.SDK_DOTNET, samples.SDK_JAVA], ids=["dotnet", "java"])
def test_sdk_documents_are_valid_for_the_library_and_the_xsd(sample: object) -> None:
    assert validate(sample) == []  # type: ignore[arg-type]
    DOCUMENT_XSD.validate(samples.SDK_DOTNET.read_bytes())
    DOCUMENT_XSD.validate(samples.SDK_JAVA.read_bytes())


def test_dotnet_builder_document_is_read_normalised() -> None:
    with edxml.parse(samples.SDK_DOTNET) as document:
        header = document.header
        assert header.PromulgationInfo is not None
        assert header.PromulgationInfo.PromulgationDate == "2026/11/24"  # sent 2026-11-24
        assert header.DueDate is None and header.ResponseFor == []  # sent empty
        assert header.OtherInfo is not None and header.OtherInfo.Appendixes == []
        assert document.bussiness is not None and document.bussiness.StaffInfo is not None
        assert document.bussiness.StaffInfo.Mobile is None
        assert not document.signature_present  # an empty DigitalSignature is no signature
        (reference,) = document.manifest
        assert reference.ContentId == "cid:3f1c2a7e-215"
        assert document.attachment("cid:3f1c2a7e-215") is not None


def test_java_builder_document_is_read_normalised() -> None:
    with edxml.parse(samples.SDK_JAVA) as document:
        header = document.header
        assert [(t.OrganId, t.Timestamp) for t in document.trace] == [
            ("000.00.14.H53", "2026/11/25 14:03:09"),  # sent 25/11/2026 14:03:09
            ("000.00.11.H53", "2026/11/25 14:03:12"),
        ]
        assert document.bussiness is not None and document.bussiness.Paper == 1  # "Business"
        assert header.DueDate == "2026/12/15"
        assert header.ResponseFor[0].PromulgationDate == "2026/11/02"
        assert header.PromulgationInfo is not None
        assert header.PromulgationInfo.PromulgationDate is None
        assert header.Content is None and header.SteeringType is None
        assert header.From.Email is None and header.From.Website is None


@pytest.mark.parametrize("sample", [samples.SDK_DOTNET, samples.SDK_JAVA], ids=["dotnet", "java"])
def test_what_we_build_from_them_is_the_canonical_form(sample: object) -> None:
    with edxml.parse(sample) as document:  # type: ignore[arg-type]
        built = build_bytes(document)
    DOCUMENT_XSD.validate(built)
    root = etree.fromstring(built)
    assert root.nsmap == {None: samples.EDXML_NS}
    assert b"xlink" not in built and b"DigitalSignature" not in built
    assert b"Business>" not in built and b"mustUnderstand" not in built
    trace = root.find("e:edXMLEnvelope/e:edXMLHeader/e:TraceHeaderList", NS)
    if trace is not None:  # TraceHeader first, then Bussiness
        assert [etree.QName(c).localname for c in trace][-1] == "Bussiness"
    for date in root.iterfind(".//e:PromulgationDate", NS):
        assert edxml.format_date(edxml.parse_date(date.text or "")) == date.text  # type: ignore[arg-type]
    for stamp in root.iterfind(".//e:Timestamp", NS):
        assert "/" in (stamp.text or "")[:5]  # YYYY/MM/DD HH:mm:ss
    empties = re.findall(rb"<(\w+)[^>/]*(?:/>|></\1>)", built)
    assert set(empties) <= {b"edXMLManifest"}  # no empty leaf is written
    with edxml.parse(built) as again, edxml.parse(sample) as first:  # type: ignore[arg-type]
        assert again.header == first.header and again.trace == first.trace


def test_typed_dates_in_another_form_are_built_canonical() -> None:
    document = samples.document(DueDate="2026-12-31")
    assert edxml.check(document) == []
    built = build_bytes(document)
    assert b"<DueDate>2026/12/31</DueDate>" in built


def test_an_undeclared_prefix_is_malformed_not_an_unexpected_element() -> None:
    for document in (
        raw(after_header="<edXML:Signature/>"),
        raw(MESSAGE_HEADER_XML.replace("<Subject>", '<Subject xlink:href="x">')),
        samples.SDK_DOTNET.read_bytes().replace(
            b' xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"', b""
        ),
    ):
        with pytest.raises(EdxmlMalformed) as caught:
            validate(document)
        assert "prefix" in str(caught.value) and caught.value.line is not None


def test_what_remains_refused() -> None:
    both = raw(
        after_header="<TraceHeaderList><Bussiness><Paper>1</Paper></Bussiness>"
        "<Business><Paper>2</Paper></Business></TraceHeaderList>"
    )
    assert [(i.path, i.rule) for i in validate(both)] == [
        (f"{TRACE}/Business[2]", "duplicate_element")
    ]
    signature = raw(after_header="<DigitalSignature>MIIB...</DigitalSignature>")
    assert [i.rule for i in validate(signature)] == ["unexpected_element"]
    foreign = raw(after_header='<TraceHeaderList lang="vi"/>')
    assert [(i.path, i.rule) for i in validate(foreign)] == [
        (f"{TRACE}/@lang", "unexpected_attribute")
    ]
