"""The administrator's API under ``/admin``: reload, the message log, dead letters, access
requests and their decisions, exchange statistics.

Every endpoint needs an admin key (``admin.api_keys``) in ``X-API-Key``, or a
bearer token with the admin scope; every action that changes something
(reload, retry, discard, purge) is recorded in the message log with who did it.
What an endpoint does beyond reading its request (parsing filters, reloading,
retrying, discarding) is a plain function here, which the browser console
(``gateway.console``) calls too, so both faces of administration behave the same.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Stream

from adapters.bodies import BodyInvalid
from adapters.units import Duration, seconds
from gateway import metrics, workers
from gateway.catalogue import access as agreements
from gateway.catalogue.index import catalogue_of
from gateway.catalogue.stats import COLUMNS as STATS_COLUMNS
from gateway.catalogue.stats import StatsFilter, as_csv, statistics
from gateway.delivery import STATES, DeliveryQueue
from gateway.exchange import exchange_of
from gateway.messagelog import (
    AuditRecord,
    Cursor,
    LogUnavailable,
    SearchFilter,
    export,
    purge,
    search,
    verify_chains,
)
from gateway.persistence import Persistence
from gateway.problems import Problem
from gateway.reloading import ReloadResult, RuntimeHolder
from gateway.validation import JsonBody, body_problem

MAX_PAGE = 1000


def holder_of(request: ASGIConnection[Any, Any, Any, Any]) -> RuntimeHolder:
    holder: RuntimeHolder = request.app.state.holder
    return holder


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Every admin endpoint: an admin key, or a bearer token with the admin scope. Who it was
    goes on the exchange (the access log line, and the record of every admin action)."""
    identity = holder_of(connection).current.identity
    actor = await identity.admin(dict(connection.headers))
    if actor is None:
        challenge = "ApiKey, Bearer" if identity.tokens else "ApiKey"
        raise Problem(
            "unauthenticated",
            "admin credential required: X-API-Key, or a bearer token with the admin scope",
            headers={"www-authenticate": challenge},
        )
    exchange_of(connection.scope).client = actor


def persistence_of(holder: RuntimeHolder) -> Persistence:
    assert holder.persistence is not None, "persistence starts with the app"
    return holder.persistence


def _admin(request: Request[Any, Any, Any]) -> Persistence:
    """The persistence (the guard has checked the caller)."""
    return persistence_of(holder_of(request))


def reload_problem(result: ReloadResult) -> Problem:
    """A rejected reload, every issue with its file:line."""
    return Problem(
        "config_invalid",
        "the new configuration was rejected; the running one is kept",
        errors=[
            {"path": f"{i.file}:{i.line}: {i.path}", "message": i.message} for i in result.issues
        ],
        extra={"digest": result.digest},
    )


async def recorded(request: Request[Any, Any, Any], action: str, result: dict[str, Any]) -> None:
    """Put an admin action on the message log: what, by whom (the exchange's ``client``: the
    guard's actor, or the console's session), with what outcome."""
    message_log = _admin(request).message_log
    if message_log is None:
        return
    exchange = exchange_of(request.scope)
    exchange.route = f"admin.{action}"
    answer = msgspec.json.encode(result)
    record = AuditRecord.of_exchange(
        exchange,
        kind="admin",
        request=await request.body(),
        response=answer,
        status=200,
        path=exchange.path,
        response_body=answer,
    )
    try:
        await message_log.append(record)
    except LogUnavailable:
        raise Problem(
            "log_unavailable", f"{action} was done but could not be recorded; see the gateway log"
        ) from None


@get("/metrics", media_type=metrics.CONTENT_TYPE)
async def metrics_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus exposition, for an admin caller; absent when ``server.metrics_listen`` serves
    it. An admin key may come as ``Authorization: Bearer``, which is how Prometheus sends one."""
    holder = holder_of(request)
    if holder.current.loaded.config.server.metrics_listen is not None:
        raise Problem("route_not_found", "metrics are served on server.metrics_listen")
    headers = dict(request.headers)
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if "x-api-key" not in headers and scheme.lower() == "bearer":
        headers["x-api-key"] = credential.strip()
    if await holder.current.identity.admin(headers) is None:
        raise Problem("unauthenticated", "admin credential required in X-API-Key")
    persistence = persistence_of(holder)
    await persistence.read_gauges()
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


@post("/reload", status_code=200)
async def reload(request: Request[Any, Any, Any]) -> dict[str, Any]:
    _admin(request)
    result = await holder_of(request).reload()
    if not result.ok:
        raise reload_problem(result)
    workers.reload_all()  # serve --workers N: the other workers too
    answer = {"status": "reloaded", "digest": result.digest}
    await recorded(request, "reload", answer)
    return answer


@get("/config")
async def config_info(request: Request[Any, Any, Any]) -> dict[str, Any]:
    _admin(request)
    loaded = holder_of(request).current.loaded
    return {"path": loaded.path, "files": loaded.files, "digest": loaded.digest}


# --- message log ---


def _time(name: str, value: str | None) -> float | None:
    """ISO 8601 (``2026-11-22T08:00:00+07:00``) or Unix seconds."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            "malformed_body", f"{name}: expected ISO 8601 or Unix seconds, not {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def search_filter(query: Mapping[str, str]) -> SearchFilter:
    """The message-log filter of a query string (empty values mean no filter)."""
    query = {name: value for name, value in query.items() if value}
    status = query.get("status")
    if status is not None and not status.isdigit():
        raise Problem("malformed_body", f"status: expected an HTTP status, not {status!r}")
    return SearchFilter(
        since=_time("since", query.get("since")),
        until=_time("until", query.get("until")),
        client=query.get("client"),
        route=query.get("route"),
        status=int(status) if status else None,
        message_id=query.get("message_id"),
    )


def page_limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit") or "100"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Problem("malformed_body", f"limit: expected 1 to {MAX_PAGE}")
    return int(raw)


@get("/messages")
async def list_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Records matching ``since``, ``until``, ``client``, ``route``, ``status``, ``message_id``."""
    return await search_page(_admin(request), request.query_params)


async def search_page(persistence: Persistence, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of records for the filters, ``limit`` and ``cursor`` of ``query``."""
    cursor = query.get("cursor")
    after: Cursor | None = None
    if cursor:
        try:
            after = msgspec.json.decode(bytes.fromhex(cursor), type=Cursor)
        except (ValueError, msgspec.DecodeError):
            raise Problem("malformed_body", "cursor: not one this API gave out") from None
    items, following = await search(
        persistence.store, search_filter(query), limit=page_limit(query), after=after
    )
    next_cursor = msgspec.json.encode(following).hex() if following else None
    return {"items": items, "next_cursor": next_cursor}


@get("/messages/export")
async def export_messages(request: Request[Any, Any, Any]) -> Stream:
    """The same filters, every match as JSON Lines (bodies base64), streamed."""
    persistence = _admin(request)
    return Stream(
        export(persistence.store, search_filter(request.query_params)),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="message-log.jsonl"'},
    )


@get("/messages/verify")
async def verify_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return await chain_report(_admin(request))


async def chain_report(persistence: Persistence) -> dict[str, Any]:
    reports = await verify_chains(persistence.store)
    return {
        "ok": all(r.ok for r in reports),
        "chains": [msgspec.structs.asdict(r) for r in reports],
    }


class PurgeRequest(msgspec.Struct, forbid_unknown_fields=True):
    older_than: Duration


@post("/messages/purge", status_code=200)
async def purge_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Delete (archiving first, if configured) records older than ``older_than`` (e.g. 365d)."""
    persistence = _admin(request)
    body = await _body(request, PurgeRequest)
    cutoff = time.time() - seconds(body.older_than)
    purged = await purge(persistence.store, cutoff, persistence.archive_dir)
    answer = {"purged": purged, "before": cutoff}
    await recorded(request, "purge", answer)
    return answer


async def _body(request: Request[Any, Any, Any], kind: type[Any], empty_ok: bool = False) -> Any:
    raw = await request.body()
    if empty_ok and not raw.strip():
        raw = b"{}"
    return typed_body(kind, raw)


def typed_body(kind: type[Any], raw: bytes) -> Any:
    """A JSON body as ``kind``, or the same 422 every route gives (each error with its path)."""
    try:
        data = JsonBody(kind.__name__, kind).validate(raw)
    except BodyInvalid as exc:
        raise body_problem(exc) from None
    return msgspec.convert(data, kind)


# --- deliveries (store-and-forward) ---


def _queue(request: Request[Any, Any, Any]) -> DeliveryQueue:
    return _admin(request).queue


# Static paths only: the data plane is mounted at "/", and litestar lets a
# mount shadow any route with a path parameter. Ids go in the query or body.


@get("/deliveries")
async def list_deliveries(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """``?state=dead`` lists the dead letters (``after`` pages by id); ``?message_id=`` shows one
    with its attempt history."""
    return {"items": await delivery_page(_queue(request), request.query_params)}


async def delivery_page(queue: DeliveryQueue, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """One delivery with its attempts (``message_id``), or a page of them (``state``, ``after``)."""
    message_id = query.get("message_id")
    if message_id:
        view = await queue.get(message_id)
        if view is None:
            raise Problem("not_found", f"no delivery {message_id}")
        return [view]
    state = query.get("state") or None
    if state is not None and state not in STATES:
        raise Problem("malformed_body", f"state: expected one of {', '.join(STATES)}")
    return await queue.list(state, limit=page_limit(query), after=query.get("after") or None)


class RetryRequest(msgspec.Struct, forbid_unknown_fields=True):
    message_id: str | None = None
    """One dead letter; none: every dead letter."""


@post("/deliveries/retry", status_code=200)
async def retry_deliveries(request: Request[Any, Any, Any]) -> dict[str, Any]:
    queue = _queue(request)
    body = await _body(request, RetryRequest, empty_ok=True)
    answer = {"requeued": await retry_dead(queue, body)}
    await recorded(request, "retry", answer)
    return answer


async def retry_dead(queue: DeliveryQueue, body: RetryRequest) -> int:
    requeued = await queue.retry(body.message_id)
    if body.message_id is not None and requeued != 1:
        raise Problem("not_found", f"no dead delivery {body.message_id}")
    return requeued


class DiscardRequest(msgspec.Struct, forbid_unknown_fields=True):
    message_id: str
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


@post("/deliveries/discard", status_code=200)
async def discard_delivery(request: Request[Any, Any, Any]) -> dict[str, Any]:
    queue = _queue(request)
    body = await _body(request, DiscardRequest)
    answer = await discard(queue, body, by=exchange_of(request.scope).client or "admin")
    await recorded(request, "discard", answer)
    return answer


async def discard(queue: DeliveryQueue, body: DiscardRequest, by: str) -> dict[str, Any]:
    """Give up on an undelivered message; ``by`` (who) is kept with the reason."""
    if not await queue.discard(body.message_id, body.reason, by=by):
        raise Problem("not_found", f"no undelivered message {body.message_id}")
    return {"message_id": body.message_id, "state": "discarded", "reason": body.reason}


# --- access requests (service catalogue) ---

ACCESS_COLUMNS = (
    "id",
    "service",
    "client",
    "state",
    "purpose",
    "legal_basis",
    "expected_volume",
    "contact",
    "requested_at",
    "decided_at",
    "decided_by",
    "reason",
    "decision_legal_basis",
    "expires_at",
    "rate_limit",
    "revoked_at",
    "revoked_by",
    "revoke_reason",
)


def _access_filter(request: Request[Any, Any, Any]) -> agreements.Filter:
    query = request.query_params
    state = query.get("state")
    if state is not None and state not in agreements.STATES:
        raise Problem("malformed_body", f"state: expected one of {', '.join(agreements.STATES)}")
    return agreements.Filter(client=query.get("client"), service=query.get("service"), state=state)


def _tabular(
    request: Request[Any, Any, Any],
    name: str,
    items: list[dict[str, Any]],
    columns: tuple[str, ...],
) -> Response[bytes]:
    """``format=json`` (default) or ``format=csv``, as a download named ``name``."""
    kind = request.query_params.get("format", "json")
    if kind not in ("json", "csv"):
        raise Problem("malformed_body", "format: expected json or csv")
    if kind == "csv":
        body, media_type = as_csv(items, columns), "text/csv; charset=utf-8"
    else:
        body, media_type = msgspec.json.encode({"items": items}), "application/json"
    disposition = f'attachment; filename="{name}.{kind}"'
    return Response(body, media_type=media_type, headers={"content-disposition": disposition})


@get("/access-requests")
async def list_access_requests(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Requests and decisions, newest first: ``state``, ``client``, ``service``, ``limit``."""
    persistence = _admin(request)
    items = await persistence.access.list(
        _access_filter(request), limit=page_limit(request.query_params)
    )
    return {"items": items}


@get("/access-requests/export")
async def export_access_requests(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every matching request with its decision, ``format=json`` or ``csv``."""
    persistence = _admin(request)
    items = await persistence.access.list(_access_filter(request))
    return _tabular(request, "access-requests", items, ACCESS_COLUMNS)


def _request_id(request: Request[Any, Any, Any]) -> str:
    return exchange_of(request.scope).request_id


@post("/access-requests/approve", status_code=200)
async def approve_access(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Grant a pending request: at once on this process, within a second on the others."""
    persistence = _admin(request)
    body = await _body(request, agreements.Approval)
    return await persistence.access.approve(body, _request_id(request))


@post("/access-requests/refuse", status_code=200)
async def refuse_access(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Refuse a pending request with a written reason and its legal basis."""
    persistence = _admin(request)
    body = await _body(request, agreements.Refusal)
    return await persistence.access.refuse(body, _request_id(request))


@post("/access-requests/revoke", status_code=200)
async def revoke_access(request: Request[Any, Any, Any]) -> dict[str, Any]:
    persistence = _admin(request)
    body = await _body(request, agreements.Revocation)
    return await persistence.access.revoke(body, _request_id(request))


# --- exchange statistics ---


@get("/statistics")
async def exchange_statistics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Per month, service and client: calls, errors, volume, median and p95 latency.
    ``since``, ``until``, ``client``, ``service``; ``format=json`` or ``csv``."""
    persistence = _admin(request)
    query = request.query_params
    service_of_route = catalogue_of(holder_of(request).current).service_of_route
    wanted = query.get("service")
    if wanted is not None:
        service_of_route = {r: s for r, s in service_of_route.items() if s == wanted}
    where = StatsFilter(
        since=_time("since", query.get("since")),
        until=_time("until", query.get("until")),
        client=query.get("client"),
    )
    items = await statistics(persistence.store, service_of_route, where)
    return _tabular(request, "exchange-statistics", items, STATS_COLUMNS)


admin_router = Router(
    path="/admin",
    guards=[admin_guard],
    route_handlers=[
        reload,
        config_info,
        list_messages,
        export_messages,
        verify_messages,
        purge_messages,
        list_deliveries,
        retry_deliveries,
        discard_delivery,
        list_access_requests,
        export_access_requests,
        approve_access,
        refuse_access,
        revoke_access,
        exchange_statistics,
    ],
)
