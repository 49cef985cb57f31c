"""Status messages: each code built, checked against the XSD, and read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

import schemas.edxml as edxml
from adapters.bodies import BodyInvalid
from gateway.validation import XmlBody
from schemas.edxml import (
    EdxmlInvalid,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusHeader,
    build_status,
    parse_status,
)
from tests.fixtures.edxml import samples
from tests.support.config import ROOT

MH = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
STATUS_XSD = XmlBody("edxml/edxml-status.xsd", str(ROOT / "schemas/edxml/edxml-status.xsd"))

RECEIVED = StatusHeader(
    From=samples.VPCP,
    ResponseFor=ResponseFor(
        OrganId="000.00.11.H53",
        Code="1234/UBND-VP",
        PromulgationDate="2026/11/20",
        DocumentId="000.00.11.H53,2026/11/20,1234/UBND-VP",
    ),
    StaffInfo=StaffInfo(Department="Vụ Hành chính", Staff="Lê Minh Tuấn"),
    StatusCode="03",
    Description="Đã tiếp nhận văn bản",
    Timestamp="2026/11/21 08:05:31",
)


def test_the_status_table() -> None:
    assert [code.value for code in StatusCode] == [
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "13",
        "15",
        "16",
    ]
    assert StatusCode.ARRIVED.meaning_vi == "Đã đến"
    assert StatusCode.IN_PROGRESS.meaning_en == "in progress"
    assert StatusCode("13") is StatusCode.TAKE_BACK_REQUESTED


@pytest.mark.parametrize("code", list(StatusCode))
def test_each_status_code_builds_and_reads_back(code: StatusCode) -> None:
    header = msgspec.structs.replace(RECEIVED, StatusCode=code.value, Description=code.meaning_vi)
    trace = [edxml.TraceHeader(OrganId="000.00.00.G22", Timestamp="2026/11/21 08:05:31")]
    data = build_status(header, trace=trace)
    STATUS_XSD.validate(data)
    message = parse_status(data)
    assert message.header == header
    assert message.status is code
    assert message.trace == trace
    assert not message.signature_present


def test_status_sample_in_another_field_order() -> None:
    message = parse_status(samples.STATUS)
    assert message.status is StatusCode.RECEIVED
    assert message.header.ResponseFor.PromulgationDate == "2026/11/20"  # sent day first
    assert message.header.StaffInfo == StaffInfo(Department="Vụ Hành chính", Staff="Lê Minh Tuấn")
    STATUS_XSD.validate(samples.STATUS.read_bytes())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"StatusCode": "07"}, (f"{MH}/StatusCode", "bad_code")),
        ({"StatusCode": "3"}, (f"{MH}/StatusCode", "bad_code")),
        ({"Timestamp": "2026-11-21T08:05:31"}, (f"{MH}/Timestamp", "bad_date")),
        ({"Timestamp": ""}, (f"{MH}/Timestamp", "missing_element")),
        ({"From": edxml.Organization(OrganId="G22")}, (f"{MH}/From/OrganId", "bad_organ_id")),
    ],
)
def test_broken_status_messages(change: dict[str, object], expected: tuple[str, str]) -> None:
    header = msgspec.structs.replace(RECEIVED, **change)
    with pytest.raises(EdxmlInvalid) as caught:
        build_status(header)
    assert [(e.path, e.rule) for e in caught.value.errors] == [expected]
    data = build_status(header, check=False)  # what a careless system could send
    assert [(e.path, e.rule) for e in edxml.validate_status(data)] == [expected]
    with pytest.raises(BodyInvalid):
        STATUS_XSD.validate(data)


def test_missing_status_fields_are_named() -> None:
    data = build_status(RECEIVED).replace(b"<StatusCode>03</StatusCode>", b"")
    assert [(i.path, i.rule) for i in edxml.validate_status(data)] == [
        (f"{MH}/StatusCode", "missing_element")
    ]


def test_reply_to_a_received_document() -> None:
    at = datetime(2026, 11, 21, 1, 5, 31, tzinfo=UTC)
    with edxml.parse(samples.FULL) as document:
        header = edxml.status_reply(
            document,
            StatusCode.IN_PROGRESS,
            sender=samples.VPCP,
            staff=StaffInfo(Department="Vụ Hành chính", Staff="Lê Minh Tuấn"),
            at=at,
        )
    assert header.ResponseFor == ResponseFor(
        OrganId="000.00.11.H53",
        Code="1234/UBND-VP",
        PromulgationDate="2026/11/20",
        DocumentId="000.00.11.H53,2026/11/20,1234/UBND-VP",
    )
    assert header.Description == "Đang xử lý"
    assert header.Timestamp == "2026/11/21 08:05:31"  # Vietnam time, UTC+7
    assert edxml.parse_timestamp(header.Timestamp) == at.astimezone(timezone(timedelta(hours=7)))
    assert parse_status(build_status(header)).header == header


def test_a_document_is_not_a_status_message_nor_the_reverse() -> None:
    status_issues = {(i.path, i.rule) for i in edxml.validate_status(samples.FULL)}
    assert (f"{MH}/To", "unexpected_element") in status_issues  # not a status field
    assert (f"{MH}/StatusCode", "missing_element") in status_issues
    assert ("/edXML/AttachmentEncoded", "unexpected_element") in status_issues
    document_issues = {(i.path, i.rule) for i in edxml.validate(samples.STATUS)}
    assert (f"{MH}/To", "missing_receiver") in document_issues
    assert (f"{MH}/StatusCode", "unexpected_element") in document_issues
