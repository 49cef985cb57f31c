"""The HTTP/1.1 server protocol: limits at the edge, and one request's ASGI cycle.

uvicorn runs the server (sockets, lifespan, signals, graceful shutdown) and
this protocol speaks HTTP/1.1 on each connection. It replaces uvicorn's
httptools protocol rather than extending it, for two reasons:

- **Limits.** uvicorn enforces none of these (measured with uvicorn 0.54,
  httptools 0.9 and h11 0.16): a 64 KiB header or 2,000 headers are served; a
  connection that sends nothing, half a header block or half a body stays
  open forever; ``limit_concurrency`` answers a plain-text 503 and counts
  tasks, not connections. httptools also joins a header value piece by piece,
  so a 256 MB header costs minutes of CPU before the application sees it.
  Here the limits sit where the bytes arrive: the header block's size and
  count (431), the time to receive it (408), a cap on open connections (503),
  and a deadline for the rest of a body the application answered without
  reading. Refusals are problem+json, written by the protocol and logged;
  nothing reaches the application. What needs a route (the whole body within
  the route's timeout, the idle gap between body chunks) is in
  ``gateway.pipeline.read_body``.
- **Cost.** uvicorn's protocol spent more CPU per request than the whole
  gateway pipeline: an ``asyncio.Event`` and a timer made and cancelled per
  request, the head and the body written by two syscalls, a dozen layers of
  checks. Here each connection has one lazy timer (it fires, looks at what is
  due now, and sets itself again if that moved), a request whose body came
  with its head never waits on anything, and a response's head goes out with
  its first body bytes in one write.
"""

from __future__ import annotations

import asyncio
import http
import os
from collections import deque
from typing import Any, ClassVar
from urllib.parse import unquote

import httptools
import msgspec

from adapters.logs import get_logger
from adapters.units import seconds, size_bytes
from gateway.config.model import ServerSettings
from gateway.identity.certificates import PeerRecording
from gateway.problems import ERROR_SOURCE_HEADER, PROBLEM_MEDIA_TYPE, Problem

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 1
"""What ``Retry-After`` says when the gateway is full (connections or requests)."""
HIGH_WATER = 64 * 1024
"""Body bytes buffered for the application before the connection stops reading."""
_NEVER = float("inf")
_STATUS_LINES = {
    status: f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()
    for status in range(100, 600)
    if status in http.HTTPStatus._value2member_map_
}
_DISCONNECT = {"type": "http.disconnect"}


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


class EdgeProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: requests parsed by httptools, each served as an ASGI cycle.

    Requests on a connection are answered in order; a pipelined request waits
    (and the connection stops reading) until the one before it is answered.
    """

    limits: ClassVar[EdgeLimits]

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """uvicorn's signature for an ``http`` protocol class."""
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.app_state = app_state
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.current: Cycle | None = None
        """The request being answered."""
        self.reading: Cycle | None = None
        """The request whose body is arriving (later than ``current`` when pipelined)."""
        self.waiting: deque[Cycle] = deque()
        """Pipelined requests, parsed, to be answered after ``current``."""
        self.read_paused = False
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        # the request line and headers now arriving
        self.in_head = True
        self.head_received = 0  # raw bytes read while in the head (bounds memory and CPU)
        self.head_size = 0  # request target + header names and values, exactly
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_continue = False
        # one timer: what is due, when (see _due_now)
        self.due = _NEVER
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = _NEVER

    # -- connection

    def connection_made(self, transport: Any) -> None:
        self.connections.add(self)
        self.transport = transport
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        if len(self.connections) > self.limits.max_connections:
            self.refuse(
                Problem(
                    "overloaded",
                    "too many open connections; try again shortly",
                    headers={"retry-after": str(RETRY_AFTER_SECONDS)},
                )
            )
            return
        self.set_due(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for cycle in (self.current, *self.waiting):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.wake()
        self.waiting.clear()
        self.write_paused = False
        self.wake_writer()
        self.parser = None  # type: ignore[assignment]

    def eof_received(self) -> None:
        """Half-closed by the client: answer what was asked, then close (the default)."""

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake_writer()

    def wake_writer(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    async def drain(self) -> None:
        if self.drained is None:
            self.drained = self.loop.create_future()
        await self.drained

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the answer in progress."""
        if self.current is None or self.current.response_complete:
            self.transport.close()
        else:
            self.current.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self.in_head:
            if not self.head_received and self.current is None:  # a new request: its clock
                self.set_due(self.limits.header_timeout)
            self.head_received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # served as plain HTTP (on_headers_complete), then the connection closes
        except httptools.HttpParserError as exc:
            self.refuse(Problem("malformed_request", f"not a valid HTTP/1.1 request: {exc}"))
            return
        if self.in_head and self.head_received > self.limits.max_header_size:
            self.refuse(self.too_large())

    # -- parser callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        limits = self.limits
        if self.head_size > limits.max_header_size or len(self.headers) > limits.max_headers:
            self.refuse(self.too_large())
            return
        parser = self.parser
        version = parser.get_http_version()
        try:
            url = httptools.parse_url(self.url)
            raw_path = url.path
            path = raw_path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            self.refuse(Problem("malformed_request", "the request target is not a valid path"))
            return
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": "",
            "headers": self.headers,
            "state": self.app_state.copy(),
            "method": parser.get_method().decode("ascii"),
            "path": unquote(path) if "%" in path else path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
        }
        keep_alive = version != "1.0" and parser.should_keep_alive() and not parser.should_upgrade()
        cycle = self.reading = Cycle(self, scope, keep_alive, self.expect_continue)
        self.set_due(None)  # busy: nothing is due until the answer is out
        if self.current is None:
            self.start(cycle)
        else:
            self.waiting.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.reading
        if cycle is None or cycle.response_complete or self.transport.is_closing():
            return  # answered already (or refused): the rest is dropped
        cycle.body.append(body)
        cycle.buffered += len(body)
        if cycle.buffered > HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle, self.reading = self.reading, None
        self.in_head, self.head_received, self.head_size = True, 0, 0
        if cycle is None:
            return
        cycle.more_body = False
        if cycle.response_complete and self.current is None and not self.waiting:
            self.set_due(self.limits.keep_alive_timeout)  # drained: idle from now
        cycle.wake()

    # -- requests

    def start(self, cycle: Cycle) -> None:
        self.current = cycle
        task = self.loop.create_task(cycle.run(self.app))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def answered(self, cycle: Cycle) -> None:
        """``cycle``'s response is complete: the next request, or an idle connection."""
        self.server_state.total_requests += 1
        self.current = None
        if self.transport.is_closing():
            return
        if self.waiting:
            self.resume_reading()
            self.start(self.waiting.popleft())
        elif cycle.more_body:
            # Answered before the whole body came (401, 413, ...): the rest is read and
            # dropped, but only for body_timeout; data would otherwise keep it open forever.
            self.resume_reading()
            self.set_due(self.limits.body_timeout)
        else:
            self.resume_reading()
            self.set_due(self.limits.keep_alive_timeout)

    # -- the timer

    def set_due(self, after: float | None) -> None:
        """Something is due ``after`` seconds from now (None: nothing, the connection is busy).

        The timer is set again only when this is sooner than it: when it fires, it
        looks at what is due then (``_due_now``)."""
        if after is None:
            self.due = _NEVER
            return
        self.due = due = self.loop.time() + after
        if due < self.timer_at:
            self.arm(due)

    def arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self.due_now)
        self.timer_at = when

    def due_now(self) -> None:
        self.timer, self.timer_at = None, _NEVER
        if self.due == _NEVER or self.transport.is_closing():
            return
        if self.loop.time() < self.due:
            self.arm(self.due)
        elif self.in_head and self.head_received:
            seconds = self.limits.header_timeout
            self.refuse(Problem("request_timeout", f"headers not received within {seconds:g}s"))
        else:  # idle (kept alive, or never used), or the rest of an answered body is late
            self.transport.close()

    # -- refusals

    def too_large(self) -> Problem:
        limits = self.limits
        return Problem(
            "headers_too_large",
            f"request line and headers are limited to {limits.max_header_size} bytes "
            f"and {limits.max_headers} headers",
        )

    def refuse(self, problem: Problem, event: str = "edge_refused") -> None:
        """Write ``problem`` as the answer and close (the application never sees the request,
        or failed it: ``Cycle.fail``); ``event`` logs it with the answer's request id."""
        self.set_due(None)
        if self.transport.is_closing():
            return  # answered and closed already
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
            event,
            request_id=request_id,
            status=problem.status,
            error_code=problem.code,
            client_address=client,
        )


class Cycle:
    """One request: its ASGI ``receive`` and ``send``, and the state of its response.

    A response's head is held until its first body bytes and written with them.
    """

    __slots__ = (
        "body",
        "buffered",
        "chunked",
        "disconnected",
        "expect_continue",
        "finished",
        "head",
        "keep_alive",
        "left",
        "more_body",
        "protocol",
        "response_complete",
        "response_started",
        "scope",
        "waiter",
    )

    def __init__(
        self, protocol: EdgeProtocol, scope: dict[str, Any], keep_alive: bool, expect: bool
    ) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect
        self.body: list[bytes] = []
        self.buffered = 0
        self.more_body = True
        self.finished = False
        """The last of the body was handed to the application."""
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.head = b""
        self.chunked = False
        self.left = 0  # body bytes the content-length still promises

    def responded(self) -> bool:
        """Nothing more to read: the answer is out, or the client is gone."""
        return self.disconnected or self.response_complete

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:  # a forced shutdown: nothing to log
            self.fail(None)
        except BaseException as exc:  # the connection must be answered or closed, whatever it was
            self.fail(exc)
        else:
            if not self.response_complete and not self.disconnected:
                self.fail(RuntimeError("the application returned without a complete response"))

    def fail(self, error: BaseException | None) -> None:
        """The application failed (the edge answers its errors: this is the backstop): a 500
        if nothing was sent yet, with the request id the log line has, and the connection
        closed."""
        protocol = self.protocol
        if error is not None:
            log.error("application_failed", exc_info=error, started=self.response_started)
        if self.disconnected or protocol.transport.is_closing():
            return
        if self.response_started:
            protocol.transport.close()
            return
        self.response_started = True
        protocol.refuse(Problem("internal_error", "see the gateway log"), "application_failed")

    async def receive(self) -> dict[str, Any]:
        protocol = self.protocol
        if self.expect_continue:
            self.expect_continue = False
            if not self.body and self.more_body and not protocol.transport.is_closing():
                protocol.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not self.body and (self.more_body or self.finished) and not self.responded():
            protocol.resume_reading()
            self.waiter = protocol.loop.create_future()
            await self.waiter  # the next chunk, the body's end, the answer or a disconnect
        if self.responded():
            return _DISCONNECT
        body = b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        more = self.more_body
        self.finished = not more  # read whole: later calls wait for the answer or a disconnect
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        protocol = self.protocol
        if protocol.write_paused and not self.disconnected:
            await protocol.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind}")
            self.response_started = True
            self.expect_continue = False
            self.head = self.head_of(message["status"], message.get("headers", ()))
            return
        if self.response_complete or kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind}")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            body = b""
        elif self.chunked:
            body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + (
                b"" if more else b"0\r\n\r\n"
            )
        else:
            self.left -= len(body)
            if self.left < 0 or (not more and self.left):
                raise RuntimeError("response body does not match its content-length")
        if self.head:
            body, self.head = self.head + body, b""
        if body:
            protocol.transport.write(body)
        if not more:
            self.response_complete = True
            self.wake()
            if not self.keep_alive:
                protocol.transport.close()
            protocol.answered(self)

    def head_of(self, status: int, headers: Any) -> bytes:
        """The status line and headers, framing decided: content-length, or chunked."""
        lines = [_STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
        length = None
        close = False
        for name, value in (*self.protocol.server_state.default_headers, *headers):
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
            elif name == b"transfer-encoding":
                continue  # ours to decide
            lines.append(b"%b: %b\r\n" % (name, value))
        if close:
            self.keep_alive = False
        elif not self.keep_alive:
            lines.append(b"connection: close\r\n")
        bodiless = self.scope["method"] == "HEAD" or status in (204, 304) or status < 200
        if length is not None:
            self.left = length
        elif not bodiless:
            self.chunked = True
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines):
            raise RuntimeError("a response header holds a line break")  # response splitting
        return head


def _address(value: Any) -> tuple[str, int] | None:
    return (str(value[0]), int(value[1])) if isinstance(value, tuple) else None
