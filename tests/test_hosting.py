"""Hosted adapters: started by the server, with durable state and inbound delivery; GatewayHost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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
    InboundRefused,
    UpstreamHealth,
)
from adapters.http import HttpAdapter
from gateway.app import create_app
from gateway.config.loader import load_config
from gateway.hosting import GatewayHost, StoredState
from gateway.messagelog import SearchFilter, search
from gateway.persistence import Persistence
from gateway.runtime import Runtime, build_runtime
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import serve_in_thread
from tests.support.upstreams import RecordingUpstream

T = TypeVar("T")


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


# --- GatewayHost and StoredState on their own (gateway/hosting.py) ----------------------------
# Names carry a random suffix: the PostgreSQL database is shared by the test session.

HOST_CONFIG = """
storage: {{url: "URL"}}
upstreams:
  axis: {{type: http, base_url: "http://127.0.0.1:9"}}
  ubnd-qlvb: {{type: http, base_url: "http://127.0.0.1:9"}}
"""


def on_host(
    storage_url: str, tmp_path: Path, work: Callable[[Persistence, Runtime], Awaitable[T]]
) -> T:
    """``work`` with the real persistence on ``storage_url``; the delivery worker claims nothing."""
    loaded = load_config(str(write_config(tmp_path, HOST_CONFIG.replace("URL", storage_url))))

    async def main() -> T:
        persistence = await Persistence.start(loaded, lambda route, upstream: None, lambda u: False)
        runtime = build_runtime(loaded)
        try:
            return await work(persistence, runtime)
        finally:
            await runtime.close()
            await persistence.close()

    return asyncio.run(main())


def inbound(key: str, **options: Any) -> InboundMessage:
    request = GatewayRequest(operation="/edoc", method="POST", path="/edoc", body=b"<edXML/>")
    return InboundMessage(key=key, upstream="ubnd-qlvb", source="axis", request=request, **options)


def test_state_is_kept_per_upstream_and_overwritten_in_place(
    storage_url: str, tmp_path: Path
) -> None:
    axis, portal = f"axis-{uuid.uuid4().hex[:8]}", f"portal-{uuid.uuid4().hex[:8]}"

    async def work(persistence: Persistence, runtime: Runtime) -> tuple[str | None, ...]:
        mine, theirs = StoredState(persistence.store, axis), StoredState(persistence.store, portal)
        missing = await mine.get("last-poll")
        await mine.put("last-poll", "2026-11-30T08:00:00")
        await mine.put("last-poll", "2026-11-30T09:00:00")
        await theirs.put("last-poll", "other")
        return missing, await mine.get("last-poll"), await theirs.get("last-poll")

    assert on_host(storage_url, tmp_path, work) == (None, "2026-11-30T09:00:00", "other")


def test_accept_queues_a_key_once_and_puts_it_on_record(storage_url: str, tmp_path: Path) -> None:
    key = f"edoc:{uuid.uuid4().hex}:000.00.11.H53"

    async def work(persistence: Persistence, runtime: Runtime) -> Any:
        host = GatewayHost("axis", persistence, lambda: runtime)
        other = GatewayHost("portal", persistence, lambda: runtime)
        first, again = await host.accept(inbound(key)), await host.accept(inbound(key))
        elsewhere = await other.accept(inbound(key))  # the same key from another adapter
        queued = await persistence.queue.get(first[0])
        records, _ = await search(persistence.store, SearchFilter(message_id=first[0]))
        return first, again, elsewhere, queued, records

    first, again, elsewhere, queued, records = on_host(storage_url, tmp_path, work)
    assert again == (first[0], False)  # fetched twice, queued once
    assert first[1] is True and elsewhere[1] is True and elsewhere[0] != first[0]
    assert (queued["route"], queued["upstream"], queued["client"]) == (
        "inbound:axis",
        "ubnd-qlvb",
        "axis",
    )
    assert queued["state"] == "queued"
    (record,) = records
    assert (record["kind"], record["status"], record["route"]) == ("accepted", 202, "inbound:axis")


def test_signatures_cannot_be_required_without_a_trust_section(
    storage_url: str, tmp_path: Path
) -> None:
    key = f"edoc:{uuid.uuid4().hex}"

    async def work(persistence: Persistence, runtime: Runtime) -> tuple[str, dict[str, Any] | None]:
        host = GatewayHost("axis", persistence, lambda: runtime)
        with pytest.raises(InboundRefused) as refused:
            await host.accept(inbound(key, verify_signatures="required"))
        message_id, _ = await host.accept(inbound(key))  # the same key, unsigned, is taken
        return str(refused.value), await persistence.queue.get(message_id)

    reason, queued = on_host(storage_url, tmp_path, work)
    assert reason == "signatures cannot be verified: the gateway has no trust section"
    assert queued is not None  # refused first: nothing was stored under the key


def test_has_upstream_follows_the_current_runtime(storage_url: str, tmp_path: Path) -> None:
    async def work(persistence: Persistence, runtime: Runtime) -> tuple[bool, bool]:
        host = GatewayHost("axis", persistence, lambda: runtime)
        return host.has_upstream("ubnd-qlvb"), host.has_upstream("so-tc-qlvb")

    assert on_host(storage_url, tmp_path, work) == (True, False)


def test_hold_keeps_a_message_once_in_its_mailbox_and_on_record(
    storage_url: str, tmp_path: Path
) -> None:
    axis, box, item = f"axis-{uuid.uuid4().hex[:8]}", "000.00.13.H53", uuid.uuid4().hex

    async def work(persistence: Persistence, runtime: Runtime) -> Any:
        host = GatewayHost(axis, persistence, lambda: runtime)
        other = GatewayHost(f"portal-{uuid.uuid4().hex[:8]}", persistence, lambda: runtime)
        message = inbound(f"edoc:{item}:{box}")
        first, again = await host.hold(box, item, message), await host.hold(box, item, message)
        listed = await host.mailboxes.items(box, 10)
        theirs = await other.mailboxes.items(box, 10)
        body = await host.mailboxes.body(box, item)
        processing = await host.mailboxes.settle(box, item, "processing", "")
        still = await host.mailboxes.items(box, 10)
        done = await host.mailboxes.settle(box, item, "fail", "not ours")
        missing = await host.mailboxes.settle(box, "nope", "done", "")
        records, _ = await search(persistence.store, SearchFilter(message_id=first[0]))
        return first, again, listed, theirs, body, processing, still, done, missing, records

    first, again, listed, theirs, body, processing, still, done, missing, records = on_host(
        storage_url, tmp_path, work
    )
    assert first[1] is True and again == (first[0], False)
    (held,) = listed
    assert (held.item, held.message_id, held.state) == (item, first[0], "initial")
    assert theirs == [] and body == b"<edXML/>"
    assert processing is not None and processing.state == "processing" and len(still) == 1
    assert done is not None and (done.state, done.reason) == ("fail", "not ours")
    assert missing is None
    (record,) = records
    assert (record["kind"], record["route"], record["upstream"]) == (
        "accepted",
        f"inbound:{axis}",
        axis,
    )


def test_purge_forgets_what_is_old_and_settled_alone(storage_url: str, tmp_path: Path) -> None:
    axis = f"axis-{uuid.uuid4().hex[:8]}"

    async def work(persistence: Persistence, runtime: Runtime) -> Any:
        host = GatewayHost(axis, persistence, lambda: runtime)
        for key in ("doc:1", "doc:2", "ref:1"):
            await host.state.put(key, "x")
        for item in ("settled", "waiting"):
            await host.hold("box", item, inbound(f"edoc:{item}"))
        await host.mailboxes.settle("box", "settled", "done", "")
        kept = await host.state.purge("doc:", 0) + await host.mailboxes.purge(0)
        kept += await host.state.purge("do_", time.time() + 1)  # "_" is no wildcard
        state = await host.state.purge("doc:", time.time() + 1)
        mailbox = await host.mailboxes.purge(time.time() + 1)
        left = [await host.state.get(k) for k in ("doc:1", "ref:1")]
        return kept, state, mailbox, left, await host.mailboxes.items("box", 10)

    kept, state, mailbox, left, items = on_host(storage_url, tmp_path, work)
    assert (kept, state, mailbox) == (0, 2, 1)
    assert left == [None, "x"]
    assert [i.item for i in items] == ["waiting"]
