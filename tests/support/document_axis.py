"""The document axis set up end to end: the gateway, the mock axis and two agency systems.

``running`` (fixture) is all of it on loopback; ``start_gateway`` builds the gateway and
the agency systems when the test says (the axis may be down). The fixtures are registered
in tests/conftest.py.
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

from adapters.document_axis.client import axis_timestamp, now, signed_headers
from adapters.document_axis.mock import DEMO_CREDENTIALS
from adapters.document_axis.mock import create_app as create_axis
from adapters.document_axis.settings import AxisProtocol
from gateway.app import create_app
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import Receive, Scope, Send, free_port, lifespan, serve_in_thread

UBND, SO_TTTT, SO_TC, VPCP = "000.00.11.H53", "000.00.12.H53", "000.00.13.H53", "000.00.00.G22"
KEY = {"x-api-key": TEST_KEY}
CONFIG = """\
storage: {{url: "sqlite:///@DB@"}}
delivery: {{backoff: 50ms, max_backoff: 200ms, poll_interval: 50ms, lease: 10s}}
admin: {{api_keys: ["{admin_key}"]}}
clients:
  - {{id: agency-a, name: Agency A, api_keys: ["{test_key}"]}}
  - {{id: agency-b, name: Agency B, api_keys: ["sha256:ecc26dce5b03c050e4cd6c3254a875b724acafabdbeac6f26c8a80555643a265"]}}  # agency-b-key-0123456789
upstreams:
  axis:
    type: document_axis
    base_url: "@AXIS@"
    credentials: {{system_id: lgsp-demo, secret: "${{LGSP_AXIS_SECRET}}"}}
    agencies:
      "000.00.11.H53": ubnd-qlvb
      "000.00.12.H53": so-tttt-qlvb
      "000.00.13.H53": {{name: Sở Tài chính, parent: "000.00.11.H53", clients: [agency-a]}}
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
    timeout: 1s  # short: a slow axis is a 504 at once
  - id: send-large
    match: {{method: POST, path: /v1/documents/large}}
    clients: ["*"]
    upstream: axis
    operation: sendEdoc
    request: {{schema: edxml}}
    timeout: 60s  # 20 MB on a busy machine: the bounds checked are of memory, not time
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
  - {{id: agencies, match: {{method: GET, path: /v1/agencies}}, clients: ["*"],
      upstream: axis, operation: listAgencies}}
  - {{id: receivers, match: {{method: GET, path: "/v1/documents/{{doc_id}}/receivers"}},
      clients: ["*"], upstream: axis, operation: getDocumentReceivers}}
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
def start_gateway(
    tmp_path: Path, axis_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], Setup]]:
    """Builds the gateway (and the agency systems) once the test has the axis where it wants."""
    stack: list[Any] = []

    def start() -> Setup:
        ubnd, so_tttt = AgencySystem(), AgencySystem()
        ubnd_url = enter(stack, serve_in_thread(ubnd))
        so_tttt_url = enter(stack, serve_in_thread(so_tttt))
        text = (
            CONFIG.replace("@DB@", f"{tmp_path}/gateway.db")
            .replace("@AXIS@", f"http://127.0.0.1:{axis_port}")
            .replace("@UBND@", ubnd_url)
            .replace("@SO_TTTT@", so_tttt_url)
        )
        config = str(write_config(tmp_path, text))
        monkeypatch.setenv("LGSP_AXIS_SECRET", DEMO_CREDENTIALS["lgsp-demo"])
        app = create_app(config)
        gateway = enter(stack, serve_in_thread(app))
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


def enter(stack: list[Any], context: Any) -> Any:
    value = context.__enter__()
    stack.append(context)
    return value


def send_document(
    setup: Setup, body: bytes, content_type: str = "application/xml", *, large: bool = False
) -> httpx.Response:
    """POST a document to the axis through the gateway (``large``: the route with room for time)."""
    headers = {**KEY, "content-type": content_type}
    url = f"{setup.gateway}/v1/documents{'/large' if large else ''}"
    return httpx.post(url, content=body, headers=headers, timeout=90)


def axis_mock(setup: Setup, path: str) -> Any:
    return httpx.get(f"{setup.axis}/__mock/{path}", timeout=10).json()


def inbound_records(gateway: str) -> list[dict[str, Any]]:
    """The message log's records of what the axis adapter took in (route ``inbound:axis``)."""
    items: list[dict[str, Any]] = httpx.get(
        f"{gateway}/admin/messages",
        params={"route": "inbound:axis"},
        headers={"x-api-key": TEST_ADMIN_KEY},
    ).json()["items"]
    return items


def wait_settled(setup: Setup, doc_id: str, organ_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        view: dict[str, Any] = axis_mock(setup, f"documents/{doc_id}")
        if view["statuses"][organ_id] in ("done", "fail"):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def call_axis_as(
    setup: Setup, system_id: str, path: str, entries: list[tuple[str, str]], body: bytes = b""
) -> Any:
    """A call to the axis by another of its accounts (another province's SDK), signed as the
    SDK signs: how Văn phòng Chính phủ answers a document in these tests."""
    content_type = "application/octet-stream" if body else "application/json"
    base = [("timestamp", axis_timestamp(now())), ("systemid", system_id)]
    headers = signed_headers(
        [*base, ("Content-Type", content_type), *entries],
        DEMO_CREDENTIALS[system_id],
        AxisProtocol(),
    )
    return httpx.post(f"{setup.axis}{path}", content=body, headers=headers, timeout=10).json()


def drop_inbound(setup: Setup, organ_id: str, body: bytes, **params: str) -> str:
    dropped = httpx.post(f"{setup.axis}/__mock/inbox/{organ_id}", content=body, params=params)
    assert dropped.status_code == 201, dropped.text
    doc_id: str = dropped.json()["docId"]
    return doc_id
