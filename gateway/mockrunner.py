"""Runs mock national systems, standalone (``lgsp-gateway mock``) or beside the gateway.

Each mock lives with its adapter, in the package of its national system,
which declares it in its plugin (``adapters.plugin.MockSystem``: the app
factory and default port), so a protocol is described in one place. A config's
``mocks`` section starts them with the gateway, in a thread with an event
loop of its own: ``make run`` then sends a newcomer's first curl through the
real adapter, over real HTTP, to a mock that speaks the national protocol.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from adapters import registry
from adapters.mockkit import MockServer, serve
from gateway import logs
from gateway.config.model import MockSettings


def build(name: str, settings: MockSettings) -> MockServer:
    """The ASGI app of mock ``name`` with its options; ``ValueError`` for a bad option."""
    system = registry.mock_systems()[name]
    try:
        with logs.kept():  # a mock's litestar app may configure logging: ours stays
            app = registry.load(system.app)(**settings.options)
    except TypeError as exc:  # an option create_app does not take
        raise ValueError(f"mocks.{name}.options: {exc}") from None
    port = settings.port or system.default_port
    return MockServer(name=name, app=app, host=settings.host, port=port)


class MockThread:
    """Mock servers running in a daemon thread until ``stop``."""

    def __init__(self, servers: list[MockServer]) -> None:
        self.servers = servers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=logs.MOCK_THREAD, daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        with logs.kept():
            self._thread.start()
            ready = self._ready.wait(timeout)
        if not ready or self._error is not None:
            raise RuntimeError(f"mock national systems did not start: {self._error}")

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()

            async def started() -> None:
                self._ready.set()

            await serve(self.servers, started)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported to start(), which is waiting
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)


def start_configured(mocks: Mapping[str, MockSettings]) -> MockThread | None:
    if not mocks:
        return None
    thread = MockThread([build(name, settings) for name, settings in mocks.items()])
    thread.start()
    return thread


def describe(servers: list[MockServer]) -> list[dict[str, Any]]:
    return [{"mock": s.name, "url": f"http://{s.host}:{s.port}"} for s in servers]
