"""The document axis end to end: gateway (real HTTP) -> ``document_axis`` adapter -> mock axis.

Outbound documents and statuses reach the receivers' mailboxes with a correct
hash-file; inbound documents are polled and delivered to the system of the
agency they are addressed to, and settled on the axis.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

import schemas.edxml as edxml
from adapters.document_axis.mock import DEMO_CREDENTIALS
from adapters.document_axis.mock import create_app as create_axis
from gateway.app import create_app
from tests.delivery_upstream import Receive, Scope, Send
from tests.fixtures.edxml import samples
from tests.support import TEST_KEY, free_port, lifespan, serve_in_thread, write_config

UBND, SO_TTTT, SO_TC, VPCP = "000.00.11.H53", "000.00.12.H53", "000.00.13.H53", "000.00.00.G22"
KEY = {"x-api-key": TEST_KEY}
CONFIG = """\
storage: {{url: "sqlite:///@DB@"}}
delivery: {{backoff: 50ms, max_backoff: 200ms, poll_interval: 50ms, lease: 10s}}
admin: {{api_keys: ["{admin_key}"]}}
clients:
  - {{id: agency-a, name: Agency A, api_keys: ["{test_key}"]}}
upstreams:
  axis:
    type: document_axis
    base_url: "@AXIS@"
    credentials: {{system_id: lgsp-demo, secret: "${{LGSP_AXIS_SECRET}}"}}
    agencies:
      "000.00.11.H53": ubnd-qlvb
      "000.00.12.H53": so-tttt-qlvb
      "000.00.13.H53": so-tc-qlvb     # not configured: its documents are refused
    poll_interval: 100ms
    poll_timeout: 10s
  ubnd-qlvb: {{type: http, base_url: "@UBND@"}}
  so-tttt-qlvb: {{type: http, base_url: "@SO_TTTT@"}}
routes:
  - id: send
    match: {{method: POST, path: /v1/documents}}
    clients: ["*"]
    upstream: axis
    operation: sendEdoc
    request: {{schema: edxml}}
    timeout: 1s
    max_body_size: 50MiB
  - id: send-async
    match: {{method: POST, path: /v1/documents/async}}
    clients: ["*"]
    upstream: axis
    operation: sendEdoc
    request: {{schema: edxml}}
    delivery: async
    timeout: 5s
  - {{id: status, match: {{method: POST, path: /v1/document-statuses}}, clients: ["*"],
      upstream: axis, operation: sendStatus, timeout: 5s}}
  - {{id: received, match: {{method: GET, path: "/v1/agencies/{{organ_id}}/documents"}},
      clients: ["*"], upstream: axis, operation: getReceivedEdocList}}
  - {{id: get, match: {{method: GET, path: "/v1/agencies/{{organ_id}}/documents/{{doc_id}}"}},
      clients: ["*"], upstream: axis, operation: getEdoc}}
  - {{id: update, match: {{method: PUT, path: "/v1/agencies/{{organ_id}}/documents/{{doc_id}}"}},
      clients: ["*"], upstream: axis, operation: updateStatus}}
"""


class AgencySystem:
    """An agency's document system on loopback: records what the gateway delivers to it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []

    def wait(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} delivered"
            time.sleep(0.05)
        return self.received

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        digest, size, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            self.received.append(
                {
                    "path": scope["path"],
                    "headers": headers,
                    "sha256": digest.hexdigest(),
                    "size": size,
                }
            )
        body = b'{"ok":true}'
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send({**start, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class Setup(msgspec.Struct, kw_only=True):
    gateway: str
    axis: str
    ubnd: AgencySystem
    so_tttt: AgencySystem


@pytest.fixture
def axis_port() -> int:
    return free_port()


@pytest.fixture
def start_gateway(tmp_path: Path, axis_port: int) -> Iterator[Callable[[], Setup]]:
    """Builds the gateway (and the agency systems) once the test has the axis where it wants."""
    stack: list[Any] = []

    def start() -> Setup:
        ubnd, so_tttt = AgencySystem(), AgencySystem()
        ubnd_url = _enter(stack, serve_in_thread(ubnd))
        so_tttt_url = _enter(stack, serve_in_thread(so_tttt))
        text = (
            CONFIG.replace("@DB@", f"{tmp_path}/gateway.db")
            .replace("@AXIS@", f"http://127.0.0.1:{axis_port}")
            .replace("@UBND@", ubnd_url)
            .replace("@SO_TTTT@", so_tttt_url)
        )
        config = str(write_config(tmp_path, text))
        app = create_app(config, environ={"LGSP_AXIS_SECRET": DEMO_CREDENTIALS["lgsp-demo"]})
        gateway = _enter(stack, serve_in_thread(app))
        return Setup(
            gateway=gateway, axis=f"http://127.0.0.1:{axis_port}", ubnd=ubnd, so_tttt=so_tttt
        )

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def axis(axis_port: int) -> Iterator[str]:
    with serve_in_thread(create_axis(), port=axis_port) as base:
        yield base


@pytest.fixture
def running(axis: str, start_gateway: Callable[[], Setup]) -> Setup:
    return start_gateway()


def _enter(stack: list[Any], context: Any) -> Any:
    value = context.__enter__()
    stack.append(context)
    return value


def _xml(document: edxml.EdxmlDocument) -> bytes:
    return edxml.build_bytes(document)


def _send(setup: Setup, body: bytes, content_type: str = "application/xml") -> httpx.Response:
    headers = {**KEY, "content-type": content_type}
    return httpx.post(f"{setup.gateway}/v1/documents", content=body, headers=headers, timeout=30)


def _mock(setup: Setup, path: str) -> Any:
    return httpx.get(f"{setup.axis}/__mock/{path}", timeout=10).json()


def _wait_settled(setup: Setup, doc_id: str, organ_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        view: dict[str, Any] = _mock(setup, f"documents/{doc_id}")
        if view["statuses"][organ_id] in ("done", "fail"):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def _drop(setup: Setup, organ_id: str, body: bytes, **params: str) -> str:
    dropped = httpx.post(f"{setup.axis}/__mock/inbox/{organ_id}", content=body, params=params)
    assert dropped.status_code == 201, dropped.text
    doc_id: str = dropped.json()["docId"]
    return doc_id


def test_outbound_document_reaches_every_receivers_mailbox_with_its_hash(running: Setup) -> None:
    body = _xml(samples.document())  # From UBND, To VPCP and Sở TT&TT
    answer = _send(running, body)
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
    view = _mock(running, f"documents/{sent['docId']}")
    assert view["sha256"] == sent["hash_file"]
    assert view["statuses"][VPCP] == "initial"
    assert [m["docId"] for m in _mock(running, f"mailbox/{VPCP}")] == [sent["docId"]]
    assert httpx.get(f"{running.axis}/__mock/documents/{sent['docId']}/content").content == body
    # Sở TT&TT is one of ours: the poller takes it to its own system.
    (delivered,) = running.so_tttt.wait(1)
    assert delivered["sha256"] == sent["hash_file"]
    assert delivered["path"] == "/lgsp/edocs"
    assert delivered["headers"]["x-lgsp-edoc-id"] == sent["docId"]
    assert delivered["headers"]["x-lgsp-from"] == UBND
    assert _wait_settled(running, sent["docId"], SO_TTTT)["statuses"][SO_TTTT] == "done"


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
    answer = _send(running, msgspec.json.encode(form), "application/json")
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    content = httpx.get(f"{running.axis}/__mock/documents/{sent['docId']}/content").content
    assert hashlib.sha256(content).hexdigest() == sent["hash_file"]
    with edxml.parse(content) as document:
        assert document.header.Subject == "V/v báo cáo tình hình kết nối LGSP"
        assert document.attachments[0].open().read() == b"%PDF-1.7\n"

    form["MessageHeader"]["To"] = [{"OrganId": "H53"}]  # type: ignore[index]
    refused = _send(running, msgspec.json.encode(form), "application/json")
    assert refused.status_code == 422
    assert {e["rule"] for e in refused.json()["errors"]} == {"bad_organ_id"}


def test_bad_input_and_foreign_senders_are_refused_before_the_axis(running: Setup) -> None:
    not_xml = _send(running, b"<edXML")
    assert (not_xml.status_code, not_xml.json()["code"]) == (400, "malformed_body")
    foreign = _send(running, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TTTT])))
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["errors"][0]["path"] == "From/OrganId"
    assert _mock(running, "stats")["requests"].get("sendEdoc", 0) == 0


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
        assert _mock(setup, "stats")["requests"]["sendEdoc"] == 1
        (item,) = _mock(setup, f"mailbox/{VPCP}")
        assert (
            _mock(setup, f"documents/{item['docId']}")["sha256"] == hashlib.sha256(body).hexdigest()
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
    to_ubnd = _drop(running, UBND, _xml(samples.document(From=samples.VPCP, To=[samples.UBND_TQ])))
    to_so = _drop(running, SO_TTTT, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TTTT])))
    (at_ubnd,) = running.ubnd.wait(1)
    (at_so,) = running.so_tttt.wait(1)
    assert at_ubnd["headers"]["x-lgsp-edoc-id"] == to_ubnd
    assert at_so["headers"]["x-lgsp-edoc-id"] == to_so
    assert at_ubnd["headers"]["x-lgsp-message-type"] == "ElectronicDocument"
    assert at_ubnd["sha256"] == _mock(running, f"documents/{to_ubnd}")["sha256"]
    assert _wait_settled(running, to_ubnd, UBND)["statuses"] == {UBND: "done"}
    assert _wait_settled(running, to_so, SO_TTTT)["statuses"] == {SO_TTTT: "done"}
    time.sleep(0.3)  # more polls: nothing is delivered twice
    assert (len(running.ubnd.received), len(running.so_tttt.received)) == (1, 1)


def test_inbound_document_no_system_here_can_take_is_refused_with_a_reason(
    running: Setup,
) -> None:
    no_system = _drop(running, SO_TC, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TC])))
    misaddressed = _drop(
        running, UBND, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TTTT]))
    )
    invalid = _drop(running, UBND, samples.raw(body="<Bogus/>"))
    refused = {
        doc_id: _wait_settled(running, doc_id, organ)
        for doc_id, organ in ((no_system, SO_TC), (misaddressed, UBND), (invalid, UBND))
    }
    assert refused[no_system]["statuses"] == {SO_TC: "fail"}
    assert refused[no_system]["status_desc"][SO_TC] == (
        f"the system of agency {SO_TC} is not configured"
    )
    assert refused[misaddressed]["status_desc"][UBND] == f"the document is not addressed to {UBND}"
    assert refused[invalid]["status_desc"][UBND].startswith("invalid edXML: unexpected_element at")
    assert running.ubnd.received == [] and running.so_tttt.received == []


def test_status_messages_travel_both_ways(running: Setup) -> None:
    # Văn phòng Chính phủ sends Sở TT&TT a document; Sở TT&TT answers "received" through the gateway.
    incoming = samples.document(
        From=samples.VPCP, To=[samples.SO_TTTT], DocumentId=f"{VPCP},2026/11/21,99/VPCP-TH"
    )
    doc_id = _drop(running, SO_TTTT, _xml(incoming))
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
    (status_item,) = _mock(running, f"mailbox/{VPCP}")
    assert status_item["messageType"] == "StatusDocument"
    assert _mock(running, f"documents/{doc_id}")["replies"] == [
        {"from": SO_TTTT, "StatusCode": "03"}
    ]

    # UBND sent a document to Văn phòng Chính phủ, which answers "completed" on the axis.
    sent = _send(running, _xml(samples.document(To=[samples.VPCP]))).json()
    with edxml.parse(
        httpx.get(f"{running.axis}/__mock/documents/{sent['docId']}/content").content
    ) as original:
        status = edxml.build_status(edxml.status_reply(original, "06", sender=samples.VPCP))
    axis_call = httpx.post(
        f"{running.axis}/sendEdoc",
        content=status,
        headers={
            "systemId": "lgsp-demo", "secret": DEMO_CREDENTIALS["lgsp-demo"], "from": VPCP,
            "to": f'["{UBND}"]', "messagetype": "StatusDocument",
            "hash-file": hashlib.sha256(status).hexdigest(),
        },
    )  # fmt: skip
    assert axis_call.json()["status"] == "OK", axis_call.text
    (relayed,) = running.ubnd.wait(1)
    assert relayed["path"] == "/lgsp/edoc-statuses"
    assert relayed["headers"]["x-lgsp-message-type"] == "StatusDocument"
    assert relayed["headers"]["x-lgsp-from"] == VPCP
    assert relayed["sha256"] == hashlib.sha256(status).hexdigest()


def test_agency_reads_its_mailbox_through_the_gateway(running: Setup) -> None:
    doc_id = _drop(running, SO_TC, _xml(samples.document(From=samples.VPCP, To=[samples.SO_TC])))
    base = f"{running.gateway}/v1/agencies"
    # Not polled quickly enough to matter: Sở Tài chính has no system, so the poller fails it.
    fetched = httpx.get(f"{base}/{SO_TC}/documents/{doc_id}", headers=KEY)
    assert fetched.status_code == 200
    assert (
        hashlib.sha256(fetched.content).hexdigest()
        == _mock(running, f"documents/{doc_id}")["sha256"]
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
    answer = _send(running, _xml(samples.document(To=[samples.VPCP])))
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert _mock(running, "stats")["requests"]["sendEdoc"] == 1  # refused, not retried
    assert _mock(running, f"mailbox/{VPCP}") == []
