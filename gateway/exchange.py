"""The record of one request as it crosses the gateway, and the middleware that keeps it.

The middleware wraps the whole app, routing included, so it runs first and
last for every request, a refused method on a fixed endpoint too: it takes or
makes the request id, echoes it on every response (whatever produced it),
answers ``HEAD`` as ``GET`` without the body, and writes exactly one log line
when the response is done. The pipeline fills in what it learns on the way
(client, route, upstream, error code). Bodies never go in unless the route
allows it.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any
from urllib.parse import unquote

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

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
        "error_code",
        "error_source",
        "extra",
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
        self.message_id = os.urandom(16).hex()
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
    segments = raw.partition(b"?")[0].decode("latin-1").split("/")
    return "/".join(unquote(segment).replace("/", "%2F") for segment in segments)


def _fixed_endpoint(scope: Scope) -> str | None:
    """The path template of a fixed endpoint (``/health/live``); None for the data plane."""
    template: str | None = scope.get("path_template")
    return None if template in (None, "/") else template


def exchange_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id, replaced = _request_id(scope)
        head = scope["method"] == "HEAD"
        if head:  # HEAD is GET without the body, wherever GET is served; the server
            scope = {**scope, "method": "GET"}  # keeps its own scope: it knows it was HEAD
        exchange = Exchange(request_id, scope["method"], _original_path(scope))
        if head:
            exchange.extra["head"] = True
        scope[SCOPE_KEY] = exchange  # type: ignore[literal-required]
        echoed = [(REQUEST_ID_HEADER, request_id.encode())]
        if replaced is not None:
            echoed.append((REPLACED_HEADER, replaced.encode()))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0] != REQUEST_ID_HEADER]
                message["headers"] = [*headers, *echoed]
            elif message["type"] == "http.response.body":
                exchange.bytes_out += len(message.get("body", b""))
                if head:
                    message = {**message, "body": b""}
            await send(message)

        metrics.exchange_started()
        with tracing.exchange_span(scope["headers"], exchange.method) as span:
            try:
                await app(scope, receive, send_with_id)
            finally:
                fields = exchange.log_fields()
                tracing.end_exchange(span, fields)
                logs.access("info" if exchange.status < 500 else "error", fields)
                metrics.exchange_finished(
                    exchange.route or _fixed_endpoint(scope),
                    exchange.client,
                    exchange.status,
                    exchange.error_code,
                    time.perf_counter() - exchange.started,
                )

    return middleware
