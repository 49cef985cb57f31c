"""A lean HTTP/1.1 client for forwarding: one connection pool per ``type: http`` upstream.

httpx's request and response models over aiohttp cost about 450 µs of CPU per
forwarded call (URL re-parsing, header models, a cookie jar, aiohttp's own
request objects: ``bench/README.md``). A forwarded call needs none of that:
this client writes the request head and body in one write, parses the answer
with httptools (llhttp, the parser uvicorn already uses) into a status, a raw
header list and the body, and keeps connections alive per upstream.

What it does as httpx did: keep-alive with ``max_connections`` and
``max_keepalive``, TLS with the upstream's context built once, redirects not
followed, gzip and deflate answers decoded. What it adds: a reused connection
that the upstream closed before answering is retried once on a new one, for
idempotent methods only (RFC 9112 §9.3.1). What it does not do: HTTP/2, proxies.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque

import httptools

from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
"""Methods a request may be sent again with (RFC 9110 §9.2.2)."""
ACCEPT_ENCODING = "gzip, deflate"
"""What the client offers, whatever the caller did: it decodes only these."""
SURPLUS_IDLE = 2.0
"""Seconds an idle connection beyond ``max_keepalive`` is kept: under steady load more
than that many are reused all the time, and closing them would mean a connect per call."""
SWEEP = 0.1
"""Seconds between two looks for answers past their deadline: one timer per pool, not one
per request (uvloop's ``call_at`` and ``cancel``: 5 µs a call). The gateway's own deadline
fires on time; this one stops the wait and drops the connection for any other caller."""
_ONE_WRITE = 64 * 1024
"""A body up to this size is joined to the head and written once; a larger one is not copied."""


class Answer:
    """The upstream's answer: header names as sent, values as bytes, the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Closed(Exception):
    """The connection ended before the answer did; ``early``: before any byte of it."""

    def __init__(self, early: bool, reason: str) -> None:
        super().__init__(reason)
        self.early = early
        self.reason = reason


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the pool takes it back when an answer completes."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.when = 0.0
        """The loop time past which the answer is not waited for."""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.received = False
        self.headers_done = False
        self.head = False
        self.reused = False
        self.closed = False
        self.counted = False
        """In the pool's ``open`` count: from ``create_connection``'s return to its loss."""
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing asked: an idle connection the upstream talks on
            self.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamUnavailable(f"{self.pool.name} sent a malformed answer: {exc}"))

    def eof_received(self) -> bool:
        self._ended("closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended("reset the connection" if exc is not None else "closed the connection")
        self.pool.lost(self)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.waiter is None:  # bytes after the answer, in the same packet: not HTTP we know
            raise httptools.HttpParserError("data after the answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head:  # no body follows, whatever Content-Length says; llhttp cannot know
            self.closed = True  # ... so its parser state is unusable for the next answer
            self._complete()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # 100 Continue, 103 Early Hints: wait on
            self.headers, self.headers_done = [], False
            return
        if not self.parser.should_keep_alive():
            self.closed = True
        self._complete()

    # the exchange

    def send(self, head: bytes, body: bytes, when: float, is_head: bool) -> asyncio.Future[Answer]:
        """Write the request; the future gets the answer, or ``_Closed``, or a timeout."""
        assert self.transport is not None
        loop = self.pool.loop
        self.waiter = waiter = loop.create_future()
        self.headers, self.chunks, self.head = [], [], is_head
        self.received = self.headers_done = False
        if len(body) <= _ONE_WRITE:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            self.transport.write(body)
        self.when = when
        self.pool.watch(self)
        return waiter

    def abort(self) -> None:
        """Drop the connection: an answer cut short leaves it unusable."""
        self.closed = True
        self.pool.busy.discard(self)
        if self.transport is not None:
            self.transport.abort()

    def _complete(self) -> None:
        waiter = self.waiter
        self.pool.busy.discard(self)
        if waiter is None or waiter.done():
            return
        status = self.parser.get_status_code()
        body = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        waiter.set_result(Answer(status, self.headers, body))
        self.waiter = None
        if self.closed:
            self.abort()
        else:
            self.pool.release(self)

    def _ended(self, how: str) -> None:
        self.closed = True
        self.pool.busy.discard(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not _framed(self.headers):  # the body ran to the close
            self._complete()
            return
        when = "in the middle of its answer" if self.received else "before answering"
        self._fail(_Closed(not self.received, f"{self.pool.name} {how} {when}"))

    def expire(self) -> None:
        self._fail(UpstreamTimeout(f"{self.pool.name} did not answer in time"))

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()


def _framed(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the answer says where its body ends (else it ends with the connection)."""
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)


class Pool:
    """The keep-alive connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        *,
        max_connections: int,
        max_keepalive: int,
        connect_timeout: float,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.context = context
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.connect_timeout = connect_timeout
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        """Connections waiting for an answer."""
        self._sweeper: asyncio.TimerHandle | None = None
        self.open = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def request(self, method: str, head: bytes, body: bytes, deadline: float) -> Answer:
        """Send ``head`` (request line and headers, blank line included) and ``body``.

        ``deadline`` is a ``time.monotonic()`` value; past it, ``UpstreamTimeout``.
        """
        if self.closed:
            raise UpstreamUnavailable(f"{self.name}: the client is closed")
        loop = self.loop
        when = loop.time() + deadline - time.monotonic()  # the deadline on the loop's clock
        connection = self._idle() or await self._connect(when)
        while True:
            try:
                return await connection.send(head, body, when, method == "HEAD")
            except _Closed as closed:
                if not (closed.early and connection.reused and method in IDEMPOTENT):
                    raise UpstreamUnavailable(closed.reason) from None
            except BaseException:  # cancelled by the caller's deadline: the answer is lost
                connection.abort()
                raise
            # Closed while idle, the close crossing our request: once more on a new connection.
            connection = await self._connect(when)

    async def _connect(self, when: float) -> _Connection:
        while self.open >= self.max_connections:  # rare: wait for one to come back or close
            waiter = self.loop.create_future()
            self.waiting.append(waiter)
            try:
                async with asyncio.timeout_at(when):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken as it gave up: the turn passes to the next one
                if isinstance(exc, TimeoutError):
                    raise UpstreamTimeout(
                        f"{self.name}: no free connection in time ({self.max_connections} busy)"
                    ) from None
                raise
            connection = self._idle()
            if connection is not None:
                return connection
        self.open += 1
        try:
            async with asyncio.timeout_at(min(when, self.loop.time() + self.connect_timeout)):
                _, connection = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.context,
                    server_hostname=self.host if self.context is not None else None,
                )
        except TimeoutError:
            self._gone()
            raise UpstreamUnavailable(f"cannot connect to {self.name}: ConnectTimeout") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            self._gone()
            raise UpstreamUnavailable(
                f"cannot connect to {self.name}: {type(exc).__name__}"
            ) from None
        except BaseException:
            self._gone()
            raise
        if connection.closed:  # lost before create_connection returned: not counted by lost()
            self._gone()
            raise UpstreamUnavailable(f"{self.name} closed the connection at once")
        connection.counted = True
        return connection

    def watch(self, connection: _Connection) -> None:
        """Give up on ``connection``'s answer at its ``when``."""
        self.busy.add(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(SWEEP, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.busy if c.when <= now]:
            connection.expire()
        self._sweeper = self.loop.call_later(SWEEP, self._sweep) if self.busy else None

    def _idle(self) -> _Connection | None:
        """The connection used last (warmest), skipping any the upstream has just closed."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection
        return None

    def release(self, connection: _Connection) -> None:
        """An answer completed on ``connection``: keep it for the next request, or close it."""
        if self.closed:
            connection.abort()
            return
        connection.reused = True
        connection.idle_since = now = self.loop.time()
        idle = self.idle
        idle.append(connection)
        if len(idle) > self.max_keepalive and idle[0].idle_since < now - SURPLUS_IDLE:
            idle.pop(0).abort()  # the one least recently used: requests take the newest
        self._wake()

    def lost(self, connection: _Connection) -> None:
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.counted:  # else _connect, which has not returned it, takes it off
            connection.counted = False
            self._gone()

    def _gone(self) -> None:
        self.open -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.abort()


def decoded(body: bytes, encoding: str) -> bytes:
    """The body without its ``Content-Encoding`` (gzip or deflate, as offered)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, wbits=zlib.MAX_WBITS | 16)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:  # deflate without its zlib wrapper, as some servers send it
                return zlib.decompress(body, wbits=-zlib.MAX_WBITS)
    except zlib.error:
        raise UpstreamError(f"answer not decodable as {encoding}") from None
    raise UpstreamError(f"answer in an encoding the gateway did not offer: {encoding!r}")
