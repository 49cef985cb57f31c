"""The record of one request as it crosses the gateway.

The edge (``gateway.app``) opens it first for every HTTP request, a refused
one too (``begin``), and closes it last (``finish``): it takes or makes the
request id, which every response echoes (the pipeline adds it as it builds
its answer; ``echoing`` adds it to litestar's), answers ``HEAD`` as ``GET``
without the body, and writes exactly one log line when the response is
done. The pipeline fills in what it learns on the way (client, route,
upstream, error code). Bodies never go in unless the route allows it.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, cast
from urllib.parse import unquote

from litestar.types import HTTPScope, Message, Scope, Send
from opentelemetry.trace import Span

from gateway import logs, metrics, tracing
from gateway.personaldata import mask_id_numbers

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
REPLACED_HEADER = b"x-request-id-replaced"
"""Sent when the caller's X-Request-ID was not used as given: ``invalid`` (a new id was
made) or ``masked`` (it held an ID number, masked as log lines mask it)."""
_VALID_REQUEST_ID = re.compile(REQUEST_ID_PATTERN.encode())
SCOPE_KEY = "lgsp_exchange"


class Exchange:
    __slots__ = (
        "attempts",
        "bytes_in",
        "bytes_out",
        "client",
        "echoed",
        "error_code",
        "error_source",
        "extra",
        "head",
        "message_id",
        "method",
        "operation",
        "path",
        "request_id",
        "route",
        "started",
        "started_at",
        "status",
        "upstream",
        "upstream_in_at",
        "upstream_ms",
        "upstream_out_at",
    )

    def __init__(self, request_id: str, method: str, path: str) -> None:
        self.request_id = request_id
        self.method = method
        self.path = path
        self.started = time.perf_counter()
        self.started_at = time.time()
        self.message_id = message_id(self.started_at)
        """Names this exchange in the message log, the delivery queue and the response."""
        self.status = 0
        self.client: str | None = None
        self.route: str | None = None
        self.upstream: str | None = None
        self.operation: str | None = None
        self.attempts = 0
        self.upstream_ms: float | None = None
        self.upstream_out_at: float | None = None
        self.upstream_in_at: float | None = None
        self.error_code: str | None = None
        self.error_source: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.extra: dict[str, Any] = {}
        self.head = False
        """A HEAD request, served as GET without the body."""
        self.echoed = [(REQUEST_ID_HEADER, request_id.encode())]
        """Headers every response of this exchange carries (the request id, and why it is not
        the caller's if it is not)."""

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "message_id": self.message_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }
        for name in ("client", "route", "upstream", "operation", "error_code", "error_source"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        if self.attempts:
            fields["attempts"] = self.attempts
            fields["upstream_ms"] = self.upstream_ms
        fields.update(self.extra)
        return fields


def message_id(now: float) -> str:
    """32 hex digits: milliseconds since the epoch (12), then 80 random bits (20), as UUIDv7.

    Ids made later sort later, so the indexes on them (message log, delivery queue)
    grow at their end: random ids put every record in another index page, and most of
    the message log's disk writes and CPU went to those pages.
    """
    return f"{int(now * 1000):012x}{os.urandom(10).hex()}"


def exchange_of(scope: Scope) -> Exchange:
    exchange: Exchange = scope[SCOPE_KEY]  # type: ignore[literal-required]
    return exchange


def _request_id(scope: Scope) -> tuple[str, str | None]:
    """The id this request goes by, and why it is not the caller's own (None: it is).

    The id is echoed, logged, stored and sent upstream, so one holding an ID
    number is masked here, once, rather than wherever it goes.
    """
    given = [value for name, value in scope["headers"] if name == REQUEST_ID_HEADER]
    if not given:
        return os.urandom(16).hex(), None
    if len(given) > 1 or not _VALID_REQUEST_ID.match(given[0]):
        return os.urandom(16).hex(), "invalid"
    request_id = given[0].decode()
    masked = mask_id_numbers(request_id)
    return masked, None if masked == request_id else "masked"


def _original_path(scope: Scope) -> str:
    """The request path as the client sent it, percent-escapes decoded but ``%2F``.

    Routing (ours and the mount's) must see the segments the client sent: an
    encoded slash stays ``%2F`` inside its segment, never a separator. The path
    comes from ``raw_path``: routing to a mount rewrites ``scope["path"]``.
    """
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return scope["path"]
    # ASGI says raw_path has no query string; httpx's test transport puts it there anyway.
    path = raw.partition(b"?")[0].decode("latin-1")
    if "%" not in path:
        return path
    return "/".join(unquote(segment).replace("/", "%2F") for segment in path.split("/"))


def begin(scope: HTTPScope) -> tuple[Exchange, HTTPScope]:
    """The exchange of a new HTTP request, and the scope the gateway serves it with.

    HEAD is GET without the body, wherever GET is served: the returned scope
    says GET, while the server keeps its own (it knows it was HEAD).
    """
    request_id, replaced = _request_id(scope)
    head = scope["method"] == "HEAD"
    if head:
        scope = cast(HTTPScope, {**scope, "method": "GET"})
    exchange = Exchange(request_id, scope["method"], _original_path(scope))
    if head:
        exchange.head = True
        exchange.extra["head"] = True
    if replaced is not None:
        exchange.echoed = [*exchange.echoed, (REPLACED_HEADER, replaced.encode())]
    scope[SCOPE_KEY] = exchange  # type: ignore[literal-required]
    metrics.exchange_started()
    return exchange, scope


def echoing(exchange: Exchange, send: Send) -> Send:
    """``send`` for responses the gateway did not build itself (litestar's): the request id is
    echoed, the status and size noted, a HEAD's body dropped."""

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            headers = [h for h in message.get("headers", ()) if h[0] != REQUEST_ID_HEADER]
            message["headers"] = [*headers, *exchange.echoed]
        elif message["type"] == "http.response.body":
            exchange.bytes_out += len(message.get("body", b""))
            if exchange.head:
                message = {**message, "body": b""}
        await send(message)

    return send_with_id


def finish(exchange: Exchange, span: Span | None, fixed_endpoint: str | None) -> None:
    """The exchange is over: its one log line, its span's outcome, its metrics."""
    fields = exchange.log_fields()
    tracing.end_exchange(span, fields)
    logs.access("info" if exchange.status < 500 else "error", fields)
    metrics.exchange_finished(
        exchange.route or fixed_endpoint,
        exchange.client,
        exchange.status,
        exchange.error_code,
        time.perf_counter() - exchange.started,
    )
