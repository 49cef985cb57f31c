"""The request pipeline: one straight path from an agency's request to its answer.

    authenticate -> match route -> authorize -> read body (size limit)
    -> validate against the route's schema -> call the upstream through its
    adapter (deadline, retries) -> map the response

Each step either returns what the next one needs or raises a ``Problem``;
the app turns problems into RFC 9457 responses. Request id and the access
log line are the middleware's job (``gateway.exchange``).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec
from litestar import Request, Response

from adapters.base import (
    GatewayRequest,
    GatewayResponse,
    RequestRejected,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.config.model import Client
from gateway.exchange import Exchange, exchange_of
from gateway.problems import ERROR_SOURCE_HEADER, Problem
from gateway.routing import MethodNotAllowed, NoRoute
from gateway.runtime import CompiledRoute, Runtime, RuntimeHolder
from gateway.validation import BodyInvalid

API_KEY_HEADER = "x-api-key"
CLIENT_HEADER = "x-lgsp-client"
# Never forwarded upstream: hop-by-hop headers, the caller's own credentials,
# and what the HTTP layer recomputes.
_NOT_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "authorization",
        "cookie",
        "content-length",
        API_KEY_HEADER,
        CLIENT_HEADER,
    }
)
_JSON_TYPES = ("application/json",)
_XML_TYPES = ("application/xml", "text/xml")
LOGGED_BODY_LIMIT = 2048


async def handle(holder: RuntimeHolder, request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime = holder.current
    runtime.inflight += 1
    try:
        return await _handle(runtime, request, exchange_of(request.scope))
    finally:
        runtime.inflight -= 1


async def _handle(
    runtime: Runtime, request: Request[Any, Any, Any], exchange: Exchange
) -> Response[bytes]:
    client = authenticate(runtime, request.headers.get(API_KEY_HEADER))
    exchange.client = client.id
    route, params = match(runtime, request.method, request.scope["path"])
    exchange.route = route.id
    exchange.upstream = route.config.upstream
    exchange.operation = route.config.operation or None
    if not route.allows(client.id):
        raise Problem("forbidden", f"client {client.id!r} may not call route {route.id!r}")
    body = await read_body(request, route.max_body_size)
    exchange.bytes_in = len(body)
    content_type = request.headers.get("content-type", "")
    data = validate(route, body, content_type)
    if route.config.log_bodies:
        exchange.extra["request_body"] = body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
    outbound = GatewayRequest(
        operation=route.config.operation,
        method=request.method,
        path=request.scope["path"],
        body=body,
        content_type=content_type,
        data=data,
        headers=forwarded_headers(request, exchange, client),
        path_params=params,
        query=request.scope["query_string"].decode("latin-1"),
        request_id=exchange.request_id,
        client_id=client.id,
        route_id=route.id,
        deadline=time.monotonic() + route.timeout,
    )
    answer = await call_upstream(route, outbound, exchange)
    if route.config.log_bodies:
        exchange.extra["response_body"] = answer.body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
    return to_response(answer)


def authenticate(runtime: Runtime, api_key: str | None) -> Client:
    client = runtime.clients.lookup(api_key)
    if client is None:
        detail = "missing X-API-Key header" if not api_key else "unknown or disabled API key"
        raise Problem("unauthenticated", detail, headers={"www-authenticate": "ApiKey"})
    return client


def match(runtime: Runtime, method: str, path: str) -> tuple[CompiledRoute, dict[str, str]]:
    try:
        return runtime.router.lookup(method, path)
    except NoRoute:
        raise Problem("route_not_found", f"no route serves {path}") from None
    except MethodNotAllowed as exc:
        allowed = ", ".join(exc.allowed)
        raise Problem(
            "method_not_allowed", f"{path} accepts {allowed}", headers={"allow": allowed}
        ) from None


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The whole body, refused as soon as it is known to pass ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Problem:
    return Problem("payload_too_large", f"body exceeds this route's limit of {limit} bytes")


def validate(route: CompiledRoute, body: bytes, content_type: str) -> object:
    schema = route.schema
    if schema is None:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    accepted, suffix = (
        (_JSON_TYPES, "+json") if schema.media_type == _JSON_TYPES[0] else (_XML_TYPES, "+xml")
    )
    if media_type not in accepted and not media_type.endswith(suffix):
        raise Problem(
            "unsupported_media_type",
            f"this route takes {' or '.join(accepted)}, not {media_type or 'an untyped body'}",
        )
    try:
        return schema.validate(body)
    except BodyInvalid as exc:
        errors = [{"path": e.path, "message": e.message} for e in exc.errors]
        raise Problem(
            exc.code, f"{len(errors)} error(s) in the request body", errors=errors
        ) from None


def forwarded_headers(
    request: Request[Any, Any, Any], exchange: Exchange, client: Client
) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k not in _NOT_FORWARDED}
    headers["x-request-id"] = exchange.request_id
    headers[CLIENT_HEADER] = client.id
    return headers


async def call_upstream(
    route: CompiledRoute, outbound: GatewayRequest, exchange: Exchange
) -> GatewayResponse:
    """Call the adapter within the route's deadline, retrying what the policy allows."""
    policy = route.retry
    started = time.perf_counter()
    try:
        for attempt in range(1, policy.attempts + 1):
            exchange.attempts = attempt
            try:
                answer = await _attempt(route, outbound)
                if answer.status < 500:
                    return answer
                raise UpstreamError(
                    f"upstream answered HTTP {answer.status}", upstream_status=answer.status
                )
            except UpstreamError as failure:
                delay = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # jitter: retries of many callers spread out
                if (
                    attempt == policy.attempts
                    or not route.idempotent
                    or failure.retry_condition not in policy.on
                    or outbound.remaining() <= delay
                ):
                    raise _upstream_problem(failure) from None
            except RequestRejected as rejected:
                raise Problem(rejected.code, rejected.detail) from None
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")
    finally:
        exchange.upstream_ms = round((time.perf_counter() - started) * 1000, 3)


async def _attempt(route: CompiledRoute, outbound: GatewayRequest) -> GatewayResponse:
    budget = outbound.remaining()
    if route.retry.attempt_timeout is not None:
        budget = min(budget, route.retry.attempt_timeout)
    if budget <= 0:
        raise UpstreamTimeout("no time left before the route's deadline")
    attempt = msgspec.structs.replace(outbound, deadline=time.monotonic() + budget)
    try:
        async with asyncio.timeout(budget):
            return await route.adapter.handle(attempt)
    except TimeoutError:
        raise UpstreamTimeout(f"no answer within {budget:.3g}s") from None


def _upstream_problem(error: UpstreamError) -> Problem:
    extra = {} if error.upstream_status is None else {"upstream_status": error.upstream_status}
    return Problem(error.code, error.detail, source="upstream", extra=extra)


def to_response(answer: GatewayResponse) -> Response[bytes]:
    media_type = answer.content_type.split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES and answer.body:
        try:
            msgspec.json.decode(answer.body)
        except msgspec.DecodeError:
            raise Problem(
                "upstream_error", "upstream returned malformed JSON", source="upstream"
            ) from None
    headers = dict(answer.headers)
    if answer.status >= 400:
        headers[ERROR_SOURCE_HEADER] = "upstream"
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type=answer.content_type,
        headers=headers,
    )
