"""Hosted adapters: started by the server, with durable state and inbound delivery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from litestar.testing import TestClient

from adapters import registry
from adapters.base import (
    AdapterContext,
    AdapterHost,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    InboundMessage,
    UpstreamHealth,
)
from adapters.http import HttpAdapter
from gateway.app import create_app
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import serve_in_thread
from tests.support.upstreams import RecordingUpstream


class InboxSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    target: str
    keys: list[str]


class InboxAdapter:
    """Hands in one message per key when started; reads and writes its state on request."""

    Settings: ClassVar[type[AdapterSettings]] = InboxSettings
    starts = 0

    def __init__(self, name: str, settings: InboxSettings, context: AdapterContext) -> None:
        self.settings = settings
        self.host: AdapterHost | None = None

    async def start(self, host: AdapterHost) -> None:
        InboxAdapter.starts += 1
        self.host = host
        for key in self.settings.keys:
            request = GatewayRequest(
                operation="/edoc", method="POST", path="/edoc", body=key.encode()
            )
            target = self.settings.target if host.has_upstream(self.settings.target) else "?"
            await host.accept(
                InboundMessage(key=key, upstream=target, source="inbox", request=request)
            )

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        assert self.host is not None
        if request.method == "PUT":
            await self.host.state.put("note", request.body.decode())
        value = await self.host.state.get("note")
        return GatewayResponse(body=msgspec.json.encode({"note": value}))

    async def check(self) -> UpstreamHealth:
        return UpstreamHealth(state="up")

    async def aclose(self) -> None:
        pass


CONFIG = """
storage: {{url: "URL"}}
delivery: {{backoff: 50ms, poll_interval: 50ms}}
admin: {{api_keys: ["{admin_key}"]}}
clients:
  - {{id: agency-a, name: Agency A, api_keys: ["{test_key}"]}}
upstreams:
  inbox: {{type: inbox, target: agency, keys: [doc-1, doc-2]}}
  agency: {{type: http, base_url: "BASE"}}
routes:
  - {{id: note-get, match: {{method: GET, path: /v1/note}}, clients: ["*"], upstream: inbox}}
  - {{id: note-put, match: {{method: PUT, path: /v1/note}}, clients: ["*"], upstream: inbox}}
"""


@pytest.fixture
def inbox_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    known = {"http": HttpAdapter, "inbox": InboxAdapter}
    monkeypatch.setattr(registry, "get", known.__getitem__)
    InboxAdapter.starts = 0
    yield


def test_hosted_adapter_hands_in_each_message_once_and_keeps_state_across_restarts(
    inbox_type: None, storage_url: str, tmp_path: Path
) -> None:
    upstream = RecordingUpstream()
    with serve_in_thread(upstream) as base:
        text = CONFIG.replace("URL", storage_url).replace("BASE", base)
        config = str(write_config(tmp_path, text))
        key = {"x-api-key": TEST_KEY}
        with TestClient(create_app(config)) as gateway:
            assert gateway.put("/v1/note", content=b"remember me", headers=key).json() == {
                "note": "remember me"
            }
            deadline = time.monotonic() + 10
            while len(upstream.effects) < 2:
                assert time.monotonic() < deadline, "inbound messages not delivered"
                time.sleep(0.05)
            records: list[dict[str, Any]] = gateway.get(
                "/admin/messages",
                params={"route": "inbound:inbox"},
                headers={"x-api-key": TEST_ADMIN_KEY},
            ).json()["items"]
            assert {r["kind"] for r in records} >= {"accepted"}
        with TestClient(create_app(config)) as gateway:  # restart: same keys handed in again
            assert gateway.get("/v1/note", headers=key).json() == {"note": "remember me"}
            time.sleep(0.3)  # a duplicate would be delivered by now
    assert InboxAdapter.starts == 2
    assert len(upstream.effects) == 2  # one per key...
    assert upstream.requests == 2  # ...and not sent again after the restart
