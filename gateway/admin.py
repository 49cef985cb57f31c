"""The administrator's API under ``/admin``: reload, the message log, dead letters.

Every endpoint needs an admin key (``admin.api_keys``) in ``X-API-Key``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.response import Stream

from adapters.bodies import BodyInvalid
from adapters.units import Duration, seconds
from gateway import metrics
from gateway.delivery import STATES, DeliveryQueue
from gateway.messagelog import Cursor, SearchFilter, export, purge, search, verify_chains
from gateway.persistence import Persistence
from gateway.problems import Problem
from gateway.reloading import RuntimeHolder
from gateway.validation import JsonBody, body_problem

MAX_PAGE = 1000


def holder_of(request: Request[Any, Any, Any]) -> RuntimeHolder:
    holder: RuntimeHolder = request.app.state.holder
    return holder


def _admin(request: Request[Any, Any, Any], *, bearer: bool = False) -> Persistence:
    """The persistence, once the caller has shown an admin key (``bearer``: also accepted as
    ``Authorization: Bearer``, which is how Prometheus sends a credential)."""
    holder = holder_of(request)
    key = request.headers.get("x-api-key")
    if key is None and bearer:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    if holder.current.admin.lookup(key) is None:
        raise Problem("unauthenticated", "admin credential required in X-API-Key")
    assert holder.persistence is not None
    return holder.persistence


@get("/metrics", media_type=metrics.CONTENT_TYPE)
async def metrics_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus exposition, for an admin key; absent when ``server.metrics_listen`` serves it."""
    if holder_of(request).current.loaded.config.server.metrics_listen is not None:
        raise Problem("route_not_found", "metrics are served on server.metrics_listen")
    persistence = _admin(request, bearer=True)
    await persistence.read_gauges()
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


@post("/reload", status_code=200)
async def reload(request: Request[Any, Any, Any]) -> dict[str, Any]:
    _admin(request)
    result = await holder_of(request).reload()
    if not result.ok:
        raise Problem(
            "config_invalid",
            "the new configuration was rejected; the running one is kept",
            errors=[
                {"path": f"{i.file}:{i.line}: {i.path}", "message": i.message}
                for i in result.issues
            ],
            extra={"digest": result.digest},
        )
    return {"status": "reloaded", "digest": result.digest}


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


def _filter(request: Request[Any, Any, Any]) -> SearchFilter:
    query = request.query_params
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


def _limit(request: Request[Any, Any, Any]) -> int:
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Problem("malformed_body", f"limit: expected 1 to {MAX_PAGE}")
    return int(raw)


@get("/messages")
async def list_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Records matching ``since``, ``until``, ``client``, ``route``, ``status``, ``message_id``."""
    persistence = _admin(request)
    cursor = request.query_params.get("cursor")
    after: Cursor | None = None
    if cursor:
        try:
            after = msgspec.json.decode(bytes.fromhex(cursor), type=Cursor)
        except (ValueError, msgspec.DecodeError):
            raise Problem("malformed_body", "cursor: not one this API gave out") from None
    items, following = await search(
        persistence.store, _filter(request), limit=_limit(request), after=after
    )
    next_cursor = msgspec.json.encode(following).hex() if following else None
    return {"items": items, "next_cursor": next_cursor}


@get("/messages/export")
async def export_messages(request: Request[Any, Any, Any]) -> Stream:
    """The same filters, every match as JSON Lines (bodies base64), streamed."""
    persistence = _admin(request)
    return Stream(
        export(persistence.store, _filter(request)),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="message-log.jsonl"'},
    )


@get("/messages/verify")
async def verify_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:
    persistence = _admin(request)
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
    return {"purged": purged, "before": cutoff}


async def _body(request: Request[Any, Any, Any], kind: type[Any], empty_ok: bool = False) -> Any:
    raw = await request.body()
    if empty_ok and not raw.strip():
        raw = b"{}"
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
    queue = _queue(request)
    message_id = request.query_params.get("message_id")
    if message_id is not None:
        view = await queue.get(message_id)
        if view is None:
            raise Problem("not_found", f"no delivery {message_id}")
        return {"items": [view]}
    state = request.query_params.get("state")
    if state is not None and state not in STATES:
        raise Problem("malformed_body", f"state: expected one of {', '.join(STATES)}")
    after = request.query_params.get("after")
    return {"items": await queue.list(state, limit=_limit(request), after=after)}


class RetryRequest(msgspec.Struct, forbid_unknown_fields=True):
    message_id: str | None = None
    """One dead letter; none: every dead letter."""


@post("/deliveries/retry", status_code=200)
async def retry_deliveries(request: Request[Any, Any, Any]) -> dict[str, Any]:
    queue = _queue(request)
    body = await _body(request, RetryRequest, empty_ok=True)
    requeued = await queue.retry(body.message_id)
    if body.message_id is not None and requeued != 1:
        raise Problem("not_found", f"no dead delivery {body.message_id}")
    return {"requeued": requeued}


class DiscardRequest(msgspec.Struct, forbid_unknown_fields=True):
    message_id: str
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


@post("/deliveries/discard", status_code=200)
async def discard_delivery(request: Request[Any, Any, Any]) -> dict[str, Any]:
    queue = _queue(request)
    body = await _body(request, DiscardRequest)
    if not await queue.discard(body.message_id, body.reason, by="admin"):
        raise Problem("not_found", f"no undelivered message {body.message_id}")
    return {"message_id": body.message_id, "state": "discarded", "reason": body.reason}


admin_router = Router(
    path="/admin",
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
    ],
)
