"""The inbound poller keeps going through failures and settles a message only once it is stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import msgspec
import pytest

import schemas.edxml as edxml
from adapters.base import AdapterContext, AdapterState, InboundMessage
from adapters.document_axis.adapter import DocumentAxisAdapter
from adapters.document_axis.mock import DEMO_CREDENTIALS, create_app
from adapters.document_axis.poller import Poller
from tests.fixtures.edxml import samples
from tests.support.servers import free_port, serve_in_thread

UBND = "000.00.11.H53"


class FlakyHost:
    """Refuses the first ``failures`` messages (storage down), then keeps them."""

    name = "axis"
    state: AdapterState

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.accepted: list[InboundMessage] = []

    def has_upstream(self, name: str) -> bool:
        return True

    def run_once(
        self, name: str, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> asyncio.Task[None]:
        """The only process there is: the work runs here."""
        return asyncio.create_task(work(), name=name)

    async def accept(self, message: InboundMessage) -> tuple[str, bool]:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.accepted.append(message)
        return "id", True


def _adapter(base: str, interval: str = "20ms") -> DocumentAxisAdapter:
    settings = msgspec.convert(
        {
            "base_url": base,
            "credentials": {"system_id": "lgsp-demo", "secret": DEMO_CREDENTIALS["lgsp-demo"]},
            "agencies": {UBND: "ubnd-qlvb"},
            "poll_interval": interval,
            "poll_timeout": "2s",
        },
        DocumentAxisAdapter.Settings,
    )
    return DocumentAxisAdapter("axis", settings, AdapterContext(config_dir=".", schemas_dir="."))


@pytest.fixture
def axis() -> Iterator[str]:
    with serve_in_thread(create_app()) as base:
        yield base


def test_a_message_is_settled_only_after_it_is_stored(axis: str) -> None:
    body = edxml.build_bytes(samples.document(From=samples.VPCP, To=[samples.UBND_TQ]))
    doc_id = httpx.post(f"{axis}/__mock/inbox/{UBND}", content=body).json()["docId"]
    adapter = _adapter(axis)
    host = FlakyHost(failures=1)
    poller = Poller("axis", adapter.settings, adapter.axis, host)

    async def twice() -> tuple[tuple[bool, bool], tuple[bool, bool]]:
        try:
            return await poller.poll(), await poller.poll()
        finally:
            await adapter.aclose()

    first, second = asyncio.run(twice())
    assert first == (False, True)  # storage failed: left in the mailbox, and backoff
    assert second == (False, False)
    (message,) = host.accepted
    assert (message.key, message.upstream, message.source) == (
        f"edoc:{doc_id}:{UBND}",
        "ubnd-qlvb",
        "axis",
    )
    assert message.request.body == body
    assert message.request.headers["x-lgsp-edoc-id"] == doc_id
    assert httpx.get(f"{axis}/__mock/documents/{doc_id}").json()["statuses"] == {UBND: "done"}


def test_the_poller_survives_an_axis_that_is_down_and_picks_up_when_it_is_back() -> None:
    port = free_port()
    adapter = _adapter(f"http://127.0.0.1:{port}", interval="10ms")
    host = FlakyHost()

    async def scenario() -> list[InboundMessage]:
        await adapter.start(host)
        await asyncio.sleep(0.3)  # polls fail: connection refused
        with serve_in_thread(create_app(), port=port) as base:
            body = edxml.build_bytes(samples.document(From=samples.VPCP, To=[samples.UBND_TQ]))
            httpx.post(f"{base}/__mock/inbox/{UBND}", content=body)
            deadline = time.monotonic() + 10  # backoff is at most 16 intervals
            while not host.accepted and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        await adapter.aclose()
        return host.accepted

    assert len(asyncio.run(scenario())) == 1
