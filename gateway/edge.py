"""Limits at the edge: what a connection may cost before any application code runs.

uvicorn enforces none of these (measured with uvicorn 0.54, httptools 0.9 and
h11 0.16): a 64 KiB header or 2,000 headers are served; a connection that
sends nothing, half a header block or half a body stays open forever
(``timeout_keep_alive`` is armed only after a response); h11's
``max_incomplete_event_size`` applies only to a header block split across
reads; ``limit_concurrency`` answers a plain-text 503 and counts tasks, not
connections. httptools also joins a header value piece by piece, so a 256 MB
header costs minutes of CPU before the application sees it.

``EdgeProtocol`` is uvicorn's httptools protocol with the limits added where
the bytes arrive: the header block's size and count (431), the time to
receive it (408), a cap on open connections (503), and a deadline for the
rest of a body the application answered without reading. Refusals are
problem+json, written by the protocol itself and logged; nothing reaches the
application. What needs a route (the whole body within the route's timeout,
the idle gap between body chunks) is in ``gateway.pipeline.read_body``.
"""

from __future__ import annotations

import os
from asyncio import TimerHandle
from typing import Any, ClassVar

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from adapters.logs import get_logger
from adapters.units import seconds, size_bytes
from gateway.config.model import ServerSettings
from gateway.identity.certificates import PeerRecording
from gateway.problems import ERROR_SOURCE_HEADER, PROBLEM_MEDIA_TYPE, Problem

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 1
"""What ``Retry-After`` says when the gateway is full (connections or requests)."""


class EdgeLimits(msgspec.Struct, frozen=True):
    """``server:`` settings in the units the protocol and the pipeline use."""

    max_header_size: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_connections: int

    @classmethod
    def of(cls, server: ServerSettings) -> EdgeLimits:
        return cls(
            max_header_size=size_bytes(server.max_header_size),
            max_headers=server.max_headers,
            header_timeout=seconds(server.header_timeout),
            body_timeout=seconds(server.body_timeout),
            keep_alive_timeout=seconds(server.keep_alive_timeout),
            max_connections=server.max_connections,
        )


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """What ``uvicorn.Config`` needs to serve with these limits (``serve`` and tests)."""
    limits = EdgeLimits.of(server)
    # PeerRecording: the connection's client certificate, for gateway.identity
    protocol = type("EdgeProtocol", (PeerRecording, EdgeProtocol), {"limits": limits})
    return {"http": protocol, "timeout_keep_alive": limits.keep_alive_timeout}


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing what passes ``limits`` before the app runs."""

    limits: ClassVar[EdgeLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        """Bytes arriving now belong to a request's line and headers."""
        self._head_received = 0  # raw bytes read while in the head (bounds memory and CPU)
        self._head_size = 0  # request target + header names and values, exactly
        self._timer: TimerHandle | None = None
        self._idle_since: float | None = None
        """When the connection last fell idle (its answer done, nothing new yet)."""

    # -- connection

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._answer(
                Problem(
                    "overloaded",
                    "too many open connections; try again shortly",
                    headers={"retry-after": str(RETRY_AFTER_SECONDS)},
                )
            )
            return
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._in_head:
            self._head_received += len(data)
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_received > self.limits.max_header_size:
            self._answer(self._too_large())
        elif self._timer is None:  # a new request on a kept-alive connection: its clock starts
            self._arm(self.limits.header_timeout, self._head_timed_out)

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # data came: busy; the timer, if set, sees it when it fires

    def timeout_keep_alive_handler(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:
            return  # busy: the answer sets the timer again
        left = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:  # idle again since, but not for long enough yet
            self.timeout_keep_alive_task = self.loop.call_later(
                left, self.timeout_keep_alive_handler
            )
            return
        super().timeout_keep_alive_handler()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # a refusal already answered and closed
            super().send_400_response(msg)

    # -- parser callbacks

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        limits = self.limits
        if self._head_size > limits.max_header_size or len(self.headers) > limits.max_headers:
            self._answer(self._too_large())
            return
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:  # made just now, its task not yet started
            self.cycle.__class__ = OneWriteCycle

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():  # refused: the rest of this read is dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.transport.is_closing():
            return
        self._in_head, self._head_received, self._head_size = True, 0, 0
        self._disarm()  # a drain deadline, if the answer came before the body
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, but the keep-alive timer is set only when none is: it is not cancelled
        when the next request comes, but finds the connection busy and sets itself again
        (a timer per request, made and cancelled, was a few per cent of a request)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = self.loop.time()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        if not self._in_head and self.cycle.response_complete and not self.transport.is_closing():
            # Answered before the whole body came (401, 413, ...): the rest is read and
            # dropped, but only for body_timeout; data would otherwise keep it open forever.
            self._arm(self.limits.body_timeout, self.transport.close)

    # -- refusals

    def _too_large(self) -> Problem:
        limits = self.limits
        return Problem(
            "headers_too_large",
            f"request line and headers are limited to {limits.max_header_size} bytes "
            f"and {limits.max_headers} headers",
        )

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; keep-alive takes over after it
        if self._head_received == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        seconds = self.limits.header_timeout
        self._answer(Problem("request_timeout", f"headers not received within {seconds:g}s"))

    def _answer(self, problem: Problem) -> None:
        """Write ``problem`` as the answer and close; the application never sees the request."""
        self._disarm()
        request_id = os.urandom(16).hex()
        body = problem.body(request_id)
        headers = {
            **problem.headers,
            "content-type": PROBLEM_MEDIA_TYPE,
            "content-length": str(len(body)),
            "connection": "close",
            "x-request-id": request_id,
            ERROR_SOURCE_HEADER: problem.source,
        }
        head = f"HTTP/1.1 {problem.status} {problem.title}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        self.transport.write(head.encode("latin-1") + b"\r\n" + body)
        self.transport.close()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        log.warning(
            "edge_refused",
            request_id=request_id,
            status=problem.status,
            error_code=problem.code,
            client_address=client,
        )

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, writing a response's head together with its body.

    uvloop sends to the socket at every ``transport.write``, and uvicorn writes
    the head, then the body: two syscalls and two TCP segments for every
    answer where one does. Here the head is held back
    (uvicorn writes it into a ``_Held``) and goes out with the first body
    bytes, or alone if the response has none (HEAD).
    """

    _held: _Held | None = None

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            held = _Held(self.transport)
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = held.transport
                held.holding = False
            self._held = held if held.head else None
            return
        pending = self._held
        if pending is None:
            await super().send(message)
            return
        self._held = None
        self.transport = pending  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = pending.transport
            pending.flush()


class _Held:
    """The transport as a cycle sees it while its response's head waits for the body."""

    __slots__ = ("head", "holding", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.head = b""
        self.holding = True
        """While uvicorn writes the head; afterwards writes go out, the head before them."""

    def write(self, data: bytes) -> None:
        if self.holding:  # the head: it waits
            self.head += data
        else:
            self.transport.write(self.head + data)
            self.head = b""

    def flush(self) -> None:
        if self.head:
            self.transport.write(self.head)
            self.head = b""

    def is_closing(self) -> bool:
        closing: bool = self.transport.is_closing()
        return closing

    def close(self) -> None:
        self.flush()
        self.transport.close()
