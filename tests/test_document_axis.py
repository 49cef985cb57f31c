"""The document axis end to end: gateway (real HTTP) -> ``document_axis`` adapter -> mock axis.

Outbound documents and statuses reach the receivers' mailboxes with a correct
hash-file; inbound documents are polled and delivered to the system of the
agency they are addressed to, and settled on the axis.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

import schemas.edxml as edxml
from adapters.document_axis.mock import create_app as create_axis
from tests.fixtures.edxml import samples
from tests.support.document_axis import (
    KEY,
    SO_TC,
    SO_TTTT,
    UBND,
    VPCP,
    Setup,
    axis_mock,
    call_axis_as,
    drop_inbound,
    inbound_records,
    send_document,
    wait_settled,
)
from tests.support.servers import serve_in_thread


def _xml(document: edxml.EdxmlDocument) -> bytes:
    return edxml.build_bytes(document)


def test_outbound_document_reaches_every_receivers_mailbox_with_its_hash(running: Setup) -> None:
    body = _xml(samples.document())  # From UBND, To VPCP and Sở TT&TT
    answer = send_document(running, body)
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    assert sent == {
        "docId": sent["docId"],
        "messageType": "ElectronicDocument",
        "from": UBND,
        "to": [VPCP, SO_TTTT],
        "hash_file": hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }
    view = axis_mock(running, f"documents/{sent['docId']}")
    assert view["sha256"] == sent["hash_file"]
    assert view["statuses"][VPCP] == "initial"
    assert [m["docId"] for m in axis_mock(running, f"mailbox/{VPCP}")] == [sent["docId"]]
    assert httpx.get(f"{running.axis}/__mock/documents/{sent['docId']}/content").content == body
    # Sở TT&TT is one of ours: the poller takes it to its own system.
    (delivered,) = running.so_tttt.wait(1)
    assert delivered["sha256"] == sent["hash_file"]
    assert delivered["path"] == "/lgsp/edocs"
    assert delivered["headers"]["x-lgsp-edoc-id"] == sent["docId"]
    assert delivered["headers"]["x-lgsp-from"] == UBND
    assert wait_settled(running, sent["docId"], SO_TTTT)["statuses"][SO_TTTT] == "done"


def test_outbound_json_form_is_built_into_edxml(running: Setup) -> None:
    form = {
        "MessageHeader": {
            "From": {"OrganId": UBND, "OrganName": "UBND tỉnh Tuyên Quang"},
            "To": [{"OrganId": VPCP, "OrganName": "Văn phòng Chính phủ"}],
            "DocumentId": f"{UBND},2026/11/22,1235/UBND-VP",
            "Subject": "V/v báo cáo tình hình kết nối LGSP",
        },
        "Attachments": [
            {"AttachmentName": "1235-UBND-VP.pdf", "ContentTransferEncoded": "JVBERi0xLjcK"}
        ],
    }
    answer = send_document(running, msgspec.json.encode(form), "application/json")
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    content = httpx.get(f"{running.axis}/__mock/documents/{sent['docId']}/content").content
    assert hashlib.sha256(content).hexdigest() == sent["hash_file"]
    with edxml.parse(content) as document:
        assert document.header.Subject == "V/v báo cáo tình hình kết nối LGSP"
        assert document.attachments[0].open().read() == b"%PDF-1.7\n"

    form["MessageHeader"]["To"] = [{"OrganId": "H53"}]  # type: ignore[index]
    refused = send_document(running, msgspec.json.encode(form), "application/json")
    assert refused.status_code == 422
    assert {e["rule"] for e in refused.json()["errors"]} == {"bad_organ_id"}


def test_bad_input_and_foreign_senders_are_refused_before_the_axis(running: Setup) -> None:
    not_xml = send_document(running, b"<edXML")
    assert (not_xml.status_code, not_xml.json()["code"]) == (400, "malformed_body")
    foreign = send_document(
        running, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TTTT]))
    )
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["errors"][0]["path"] == "From/OrganId"
    assert axis_mock(running, "stats")["requests"].get("sendEdoc", 0) == 0


def test_async_route_delivers_once_when_the_axis_comes_back(
    axis_port: int, start_gateway: Callable[[], Setup]
) -> None:
    setup = start_gateway()  # the axis is down
    body = _xml(samples.document(To=[samples.VPCP]))
    accepted = httpx.post(
        f"{setup.gateway}/v1/documents/async",
        content=body,
        headers={**KEY, "content-type": "application/xml"},
    )
    assert accepted.status_code == 202, accepted.text
    status_url = setup.gateway + accepted.json()["status_url"]
    _wait_state(status_url, "failed")
    with serve_in_thread(create_axis(), port=axis_port):
        view = _wait_state(status_url, "delivered")
        assert axis_mock(setup, "stats")["requests"]["sendEdoc"] == 1
        (item,) = axis_mock(setup, f"mailbox/{VPCP}")
        assert (
            axis_mock(setup, f"documents/{item['docId']}")["sha256"]
            == hashlib.sha256(body).hexdigest()
        )
    assert view["response"]["status"] == 201


def _wait_state(url: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        view: dict[str, Any] = httpx.get(url, headers=KEY).json()
        if view["state"] == state:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def test_inbound_documents_go_to_the_system_of_the_agency_they_are_for(running: Setup) -> None:
    to_ubnd = drop_inbound(
        running, UBND, _xml(samples.document(From=samples.VPCP, To=[samples.UBND_TQ]))
    )
    to_so = drop_inbound(
        running, SO_TTTT, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TTTT]))
    )
    (at_ubnd,) = running.ubnd.wait(1)
    (at_so,) = running.so_tttt.wait(1)
    assert at_ubnd["headers"]["x-lgsp-edoc-id"] == to_ubnd
    assert at_so["headers"]["x-lgsp-edoc-id"] == to_so
    assert at_ubnd["headers"]["x-lgsp-message-type"] == "ElectronicDocument"
    assert at_ubnd["sha256"] == axis_mock(running, f"documents/{to_ubnd}")["sha256"]
    assert wait_settled(running, to_ubnd, UBND)["statuses"] == {UBND: "done"}
    assert wait_settled(running, to_so, SO_TTTT)["statuses"] == {SO_TTTT: "done"}
    time.sleep(0.3)  # more polls: nothing is delivered twice
    assert (len(running.ubnd.received), len(running.so_tttt.received)) == (1, 1)


def test_inbound_message_no_system_here_can_take_is_refused_with_a_reason(
    running: Setup,
) -> None:
    for_mailbox = drop_inbound(
        running, SO_TC, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TC]))
    )
    misaddressed = drop_inbound(
        running, UBND, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TTTT]))
    )
    unreadable = drop_inbound(running, UBND, b"<edXML><edXMLEnvelope>")
    refused = {
        doc_id: wait_settled(running, doc_id, organ)
        for doc_id, organ in ((misaddressed, UBND), (unreadable, UBND))
    }
    # Sở Tài chính has no system: its document waits in the mailbox for it to pull.
    assert axis_mock(running, f"documents/{for_mailbox}")["statuses"] == {SO_TC: "initial"}
    assert refused[misaddressed]["status_desc"][UBND] == f"the document is not addressed to {UBND}"
    assert refused[unreadable]["status_desc"][UBND].startswith("unreadable edXML: not well-formed")
    assert running.ubnd.received == [] and running.so_tttt.received == []


def test_a_document_breaking_edxml_rules_is_delivered_with_its_warnings_on_record(
    running: Setup,
) -> None:
    # A foreign builder's document: one malformed To among the province's two, and an
    # element edXML does not have. Both receivers here still get it.
    header = (
        f"<From><OrganId>{VPCP}</OrganId></From><To><OrganId>{UBND}</OrganId></To>"
        f"<To><OrganId>H53</OrganId></To><To><OrganId>{SO_TTTT}</OrganId></To>"
        f"<DocumentId>{VPCP},2026/11/21,100/VPCP-TH</DocumentId><Subject>Công văn</Subject>"
    )
    body = samples.raw(header, body="<Bogus/>")
    doc_id = drop_inbound(running, f"{UBND},{SO_TTTT}", body)
    (at_ubnd,) = running.ubnd.wait(1)
    (at_so,) = running.so_tttt.wait(1)
    assert at_ubnd["sha256"] == at_so["sha256"] == hashlib.sha256(body).hexdigest()
    assert wait_settled(running, doc_id, UBND)["statuses"] == {UBND: "done", SO_TTTT: "done"}
    records = inbound_records(running.gateway)
    accepted = [r for r in records if r["kind"] == "accepted"]
    assert len(accepted) == 2
    for record in accepted:
        warnings = record["signature"]["warnings"]
        assert {(w["rule"], w["path"].rsplit("/", 2)[-2]) for w in warnings} == {
            ("bad_organ_id", "To[2]"),
            ("unexpected_element", "edXMLEnvelope"),
        }


def test_status_messages_travel_both_ways(running: Setup) -> None:
    # Văn phòng Chính phủ sends Sở TT&TT a document; Sở TT&TT answers "received" through the gateway.
    incoming = samples.document(
        From=samples.VPCP, To=[samples.SO_TTTT], DocumentId=f"{VPCP},2026/11/21,99/VPCP-TH"
    )
    doc_id = drop_inbound(running, SO_TTTT, _xml(incoming))
    running.so_tttt.wait(1)
    reply = {
        "From": {"OrganId": SO_TTTT, "OrganName": "Sở Thông tin và Truyền thông"},
        "ResponseFor": {"OrganId": VPCP, "DocumentId": f"{VPCP},2026/11/21,99/VPCP-TH"},
        "StatusCode": "03",
        "Description": "Đã tiếp nhận",
    }
    answer = httpx.post(f"{running.gateway}/v1/document-statuses", json=reply, headers=KEY)
    assert answer.status_code == 201, answer.text
    assert answer.json()["messageType"] == "StatusDocument"
    (status_item,) = axis_mock(running, f"mailbox/{VPCP}")
    assert status_item["messageType"] == "status"
    assert axis_mock(running, f"documents/{doc_id}")["replies"] == [
        {"from": SO_TTTT, "StatusCode": "03"}
    ]

    # UBND sent a document to Văn phòng Chính phủ, which answers "completed" on the axis.
    sent = send_document(running, _xml(samples.document(To=[samples.VPCP]))).json()
    with edxml.parse(
        httpx.get(f"{running.axis}/__mock/documents/{sent['docId']}/content").content
    ) as original:
        status = edxml.build_status(edxml.status_reply(original, "06", sender=samples.VPCP))
    axis_call = call_axis_as(
        running,
        "vpcp-demo",
        "/sendEdoc",
        [
            ("from", VPCP),
            ("servicetype", "eDoc"),
            ("messagetype", "status"),
            ("hash-file", hashlib.sha256(status).hexdigest()),
        ],
        status,
    )
    assert axis_call["status"] == "OK", axis_call
    (relayed,) = running.ubnd.wait(1)
    assert relayed["path"] == "/lgsp/edoc-statuses"
    assert relayed["headers"]["x-lgsp-message-type"] == "StatusDocument"
    assert relayed["headers"]["x-lgsp-from"] == VPCP
    assert relayed["sha256"] == hashlib.sha256(status).hexdigest()


def test_agency_reads_its_mailbox_through_the_gateway(running: Setup) -> None:
    doc_id = drop_inbound(
        running, SO_TC, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TC]))
    )
    base = f"{running.gateway}/v1/agencies"
    # Sở Tài chính has no system: the poller leaves its documents for it to pull.
    fetched = httpx.get(f"{base}/{SO_TC}/documents/{doc_id}", headers=KEY)
    assert fetched.status_code == 200
    assert (
        hashlib.sha256(fetched.content).hexdigest()
        == axis_mock(running, f"documents/{doc_id}")["sha256"]
    )
    missing = httpx.get(f"{base}/{SO_TC}/documents/nope", headers=KEY)
    assert missing.status_code == 404
    not_ours = httpx.get(f"{base}/{VPCP}/documents", headers=KEY)
    assert (not_ours.status_code, not_ours.json()["code"]) == (403, "forbidden")
    bad = httpx.put(f"{base}/{SO_TC}/documents/{doc_id}", json={"status": "read"}, headers=KEY)
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "$.status"
    done = httpx.put(
        f"{base}/{SO_TC}/documents/{doc_id}", json={"status": "processing"}, headers=KEY
    )
    assert done.json() == {"docId": doc_id, "status": "processing"}
    listed = httpx.get(f"{base}/{SO_TTTT}/documents?limit=5", headers=KEY)
    assert listed.status_code == 200 and listed.json() == {"items": []}


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"latency": "3s"}, 504, "upstream_timeout"),
        ({"status": 503, "body": {"status": "FAIL"}}, 502, "upstream_error"),
        ({"drop": True}, 502, "upstream_unavailable"),
        (
            {"status": 400, "body": {"status": "FAIL", "ErrorCode": "400", "ErrorDesc": "sai"}},
            422,
            "upstream_rejected",
        ),
        (
            {"status": 401, "body": {"status": "FAIL", "ErrorCode": "401"}},
            502,
            "upstream_auth_failed",
        ),
    ],
)
def test_axis_faults_map_to_gateway_codes(
    running: Setup, fault: dict[str, Any], status: int, code: str
) -> None:
    httpx.post(f"{running.axis}/__mock/faults", json={"operation": "sendEdoc", "times": 1, **fault})
    answer = send_document(running, _xml(samples.document(To=[samples.VPCP])))
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert axis_mock(running, "stats")["requests"]["sendEdoc"] == 1  # refused, not retried
    assert axis_mock(running, f"mailbox/{VPCP}") == []
