"""Admission control: how many requests the pipeline works on at once.

Past a cap, more requests only make every request slower (they share one
event loop), and a caller kept waiting past its route's timeout is worse off
than one told at once to come back. So a request takes a slot of its route
(``max_in_flight`` on the route) and one of the process
(``server.max_in_flight``) before its body is read; when none frees within
``server.queue_timeout`` (and never past the route's deadline, which runs
from the request's arrival) it is answered ``503 overloaded`` with
``Retry-After``. The common case, a free slot, costs two semaphore checks.
"""

from __future__ import annotations

import asyncio
import time

from adapters.units import seconds
from gateway.config.model import ServerSettings
from gateway.edge import RETRY_AFTER_SECONDS
from gateway.problems import Problem
from gateway.runtime import CompiledRoute


class Admission:
    """The process's slots and each route's; kept across reloads (start-only settings)."""

    def __init__(self, max_in_flight: int, queue_timeout: float, body_timeout: float) -> None:
        self._server = asyncio.Semaphore(max_in_flight)
        self._routes: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self.queue_timeout = queue_timeout
        self.body_timeout = body_timeout
        """The longest pause in a request body, for ``pipeline.read_body`` (also start-only)."""

    @classmethod
    def of(cls, server: ServerSettings) -> Admission:
        return cls(
            server.max_in_flight, seconds(server.queue_timeout), seconds(server.body_timeout)
        )

    async def enter(self, route: CompiledRoute, deadline: float) -> list[asyncio.Semaphore]:
        """Take the route's slot, then the server's; the caller releases what it gets.

        ``deadline`` is the request's, in ``time.monotonic()`` seconds.
        """
        gates = [self._server]
        limit = route.config.max_in_flight
        if limit is not None:
            entry = self._routes.get(route.id)
            if entry is None or entry[0] != limit:  # new route, or a reload changed its cap
                entry = self._routes[route.id] = (limit, asyncio.Semaphore(limit))
            gates.insert(0, entry[1])  # waiting for the route's slot holds no server slot
        held: list[asyncio.Semaphore] = []
        until = min(time.monotonic() + self.queue_timeout, deadline)
        try:
            for gate in gates:
                if gate.locked():
                    async with asyncio.timeout(until - time.monotonic()):
                        await gate.acquire()
                else:
                    await gate.acquire()  # free: returns at once
                held.append(gate)
        except TimeoutError:
            leave(held)
            scope = "this route" if len(held) < len(gates) - 1 else "the gateway"
            raise Problem(
                "overloaded",
                f"{scope} is at its limit of requests in flight; try again shortly",
                headers={"retry-after": str(RETRY_AFTER_SECONDS)},
            ) from None
        except BaseException:
            leave(held)
            raise
        return held


def leave(held: list[asyncio.Semaphore]) -> None:
    for gate in held:
        gate.release()
