"""Access agreements: a client asks for a service, its owner approves or refuses in writing.

Decree 194/2025 (art. 16.2): shared data is shared by default, and a refusal states its
reason and legal basis. So a request is answered with a decision kept for good: approved
(optionally until ``expires_at``, with a ``rate_limit``), refused (reason and legal basis,
shown to the requester), or, later, revoked. Every step is a message-log record
(``AuditRecord.of_access``) whose ``message_id`` is the request's id, so
``/admin/messages?message_id=<id>`` is its whole history.

Approvals live in the database, so every replica applies them. The pipeline asks
``Grants.allows`` only when a route's ``clients`` list refuses the caller; the active
approvals are read at most once per ``GRANTS_TTL_SECONDS`` per process, so another replica
applies an approval or a revocation within that time (the deciding process at once).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa

from adapters.logs import get_logger
from gateway.config.model import Contact
from gateway.messagelog import AuditRecord, LogUnavailable, MessageLog
from gateway.problems import Problem
from gateway.store import Store
from gateway.store.tables import access_requests

GRANTS_TTL_SECONDS = 1.0
"""How stale a process's view of the approvals may be (decisions on another replica)."""
STATES = ("pending", "approved", "refused", "revoked", "expired")
"""``expired``: approved, and its ``expires_at`` has passed (stored as approved)."""

log = get_logger(__name__)

Rate = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[1-9][0-9]*/(s|second|m|minute|h|hour|d|day)$",
        description="calls per window: '10/s', '600/minute', '1000/hour', '50000/day'",
    ),
]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Who = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class AccessRequestBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a client sends to ask for access to a service."""

    purpose: Annotated[str, msgspec.Meta(min_length=10, max_length=4000)]
    """What the data is for (mục đích sử dụng)."""
    legal_basis: Reason
    """The document and article that let the client use this data."""
    expected_volume: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """E.g. ``2000 calls/day``."""
    contact: Contact


class Selector(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request by ``id``, or the one open request of ``client`` for ``service``."""

    id: str | None = None
    client: str | None = None
    service: str | None = None


class Approval(Selector, kw_only=True, forbid_unknown_fields=True):
    decided_by: Who
    """The officer deciding for the owner (recorded)."""
    reason: str = ""
    expires_at: dt.datetime | None = None
    """End of the approval (ISO 8601 with its offset); none: until revoked."""
    rate_limit: Rate | None = None
    """Calls allowed per window under this agreement: stored and shown; not enforced until
    the rate limiter reads agreements."""


class Refusal(Selector, kw_only=True, forbid_unknown_fields=True):
    decided_by: Who
    reason: Reason
    legal_basis: Reason
    """The legal ground of the refusal (Decree 194/2025, art. 16.2)."""


class Revocation(Selector, kw_only=True, forbid_unknown_fields=True):
    decided_by: Who
    reason: Reason


class Grant(msgspec.Struct, frozen=True):
    id: str
    expires_at: float | None
    rate_limit: str | None

    def active(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


class Grants:
    """The approvals in force, as this process last read them (at most a TTL ago)."""

    def __init__(self, store: Store, ttl: float = GRANTS_TTL_SECONDS) -> None:
        self.store = store
        self.ttl = ttl
        self._snapshot: dict[tuple[str, str], Grant] = {}
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    async def grant(self, client: str, service: str) -> Grant | None:
        """The approval in force for ``client`` on ``service``, if any."""
        grant = (await self._current()).get((client, service))
        return grant if grant is not None and grant.active(time.time()) else None

    def invalidate(self) -> None:
        """A decision of this process: read again on next use."""
        self._read_at = -math.inf

    async def _current(self) -> Mapping[tuple[str, str], Grant]:
        if time.monotonic() - self._read_at < self.ttl:
            return self._snapshot
        async with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                try:
                    self._snapshot = await self._read()
                except Exception as exc:  # keep the last view; try again after the TTL
                    log.error("access_grants_unreadable", error=type(exc).__name__)
                self._read_at = time.monotonic()
        return self._snapshot

    async def _read(self) -> dict[tuple[str, str], Grant]:
        c = access_requests.c
        query = sa.select(c.id, c.client, c.service, c.expires_at, c.rate_limit).where(
            c.state == "approved", sa.or_(c.expires_at.is_(None), c.expires_at > time.time())
        )
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {
            (row.client, row.service): Grant(row.id, row.expires_at, row.rate_limit) for row in rows
        }


class Filter(msgspec.Struct, kw_only=True):
    client: str | None = None
    service: str | None = None
    state: str | None = None


_OPEN = ("pending", "approved")


class AccessAgreements:
    """Requests and decisions, in the store; each step also on record in the message log."""

    def __init__(self, store: Store, message_log: MessageLog | None) -> None:
        self.store = store
        self.message_log = message_log
        self.grants = Grants(store)

    async def request(
        self, client: str, service: str, body: AccessRequestBody, request_id: str
    ) -> dict[str, Any]:
        """A new pending request; ``access_request_conflict`` while one is open."""
        now = time.time()
        c = access_requests.c
        access_id = uuid.uuid4().hex
        row: dict[str, Any] = {
            "id": access_id,
            "service": service,
            "client": client,
            "state": "pending",
            "purpose": body.purpose,
            "legal_basis": body.legal_basis,
            "expected_volume": body.expected_volume,
            "contact": msgspec.json.encode(body.contact).decode(),
            "requested_at": now,
            "request_id": request_id,
        }
        async with self.store.engine.begin() as connection:
            if self.store.is_postgres:  # one request per pair at a time, across replicas
                await connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(7431002, hashtext(:pair))"),
                    {"pair": f"{client}\n{service}"},
                )
            open_ = (
                await connection.execute(
                    sa.select(c.id, c.state, c.expires_at).where(
                        c.client == client, c.service == service, c.state.in_(_OPEN)
                    )
                )
            ).all()
            for other in open_:
                if other.state == "pending" or other.expires_at is None or other.expires_at > now:
                    raise Problem(
                        "access_request_conflict",
                        f"request {other.id} of {client} for {service} is already {other.state}",
                        extra={"access_request": other.id},
                    )
            await connection.execute(access_requests.insert().values(**row))
        detail = {k: row[k] for k in ("purpose", "legal_basis", "expected_volume")}
        await self._record("requested", access_id, client, service, request_id, detail, 201)
        return view(row)

    async def approve(self, approval: Approval, request_id: str) -> dict[str, Any]:
        expires = approval.expires_at
        if expires is not None:
            if expires.tzinfo is None:
                raise Problem("malformed_body", "expires_at: give the offset, e.g. +07:00")
            if expires.timestamp() <= time.time():
                raise Problem("malformed_body", "expires_at: must be in the future")
        changes = {
            "state": "approved",
            "decided_by": approval.decided_by,
            "reason": approval.reason,
            "expires_at": None if expires is None else expires.timestamp(),
            "rate_limit": approval.rate_limit,
        }
        return await self._decide(approval, "pending", "approved", changes, request_id)

    async def refuse(self, refusal: Refusal, request_id: str) -> dict[str, Any]:
        changes = {
            "state": "refused",
            "decided_by": refusal.decided_by,
            "reason": refusal.reason,
            "decision_legal_basis": refusal.legal_basis,
        }
        return await self._decide(refusal, "pending", "refused", changes, request_id)

    async def revoke(self, revocation: Revocation, request_id: str) -> dict[str, Any]:
        changes = {
            "state": "revoked",
            "revoked_by": revocation.decided_by,
            "revoke_reason": revocation.reason,
        }
        return await self._decide(revocation, "approved", "revoked", changes, request_id)

    async def _decide(
        self,
        selector: Selector,
        from_state: str,
        event: str,
        changes: dict[str, Any],
        request_id: str,
    ) -> dict[str, Any]:
        c = access_requests.c
        now = time.time()
        stamp = "revoked_at" if event == "revoked" else "decided_at"
        async with self.store.engine.begin() as connection:
            found = await self._select(connection, selector, from_state)
            updated = await connection.execute(
                access_requests.update()
                .where(c.id == found["id"], c.state == from_state)
                .values(**changes, **{stamp: now})
            )
            if updated.rowcount != 1:  # decided meanwhile, elsewhere
                raise Problem("access_request_conflict", f"request {found['id']} was decided")
            found.update(changes, **{stamp: now})
        self.grants.invalidate()
        detail = {k: v for k, v in changes.items() if k != "state" and v not in (None, "")}
        await self._record(
            event, found["id"], found["client"], found["service"], request_id, detail
        )
        return view(found)

    async def _select(self, connection: Any, selector: Selector, state: str) -> dict[str, Any]:
        c = access_requests.c
        query = sa.select(access_requests)
        if selector.id is not None:
            query = query.where(c.id == selector.id)
        elif selector.client is not None and selector.service is not None:
            query = query.where(
                c.client == selector.client, c.service == selector.service, c.state == state
            )
        else:
            raise Problem("malformed_body", "name the request: id, or client and service")
        rows = (await connection.execute(query.order_by(c.requested_at.desc()))).all()
        if not rows:
            raise Problem("not_found", f"no {state} access request matches")
        found = dict(rows[0]._mapping)
        if found["state"] != state:
            current = view(found)["state"]
            raise Problem(
                "access_request_conflict",
                f"request {found['id']} is {current}, not {state}",
                extra={"access_request": found["id"], "state": current},
            )
        return found

    async def list(self, where: Filter, limit: int | None = None) -> list[dict[str, Any]]:
        """Requests and their decisions, newest first."""
        c = access_requests.c
        now = time.time()
        query = sa.select(access_requests).order_by(c.requested_at.desc())
        if where.client is not None:
            query = query.where(c.client == where.client)
        if where.service is not None:
            query = query.where(c.service == where.service)
        if where.state == "expired":
            query = query.where(c.state == "approved", c.expires_at <= now)
        elif where.state == "approved":
            query = query.where(
                c.state == "approved", sa.or_(c.expires_at.is_(None), c.expires_at > now)
            )
        elif where.state is not None:
            query = query.where(c.state == where.state)
        if limit is not None:
            query = query.limit(limit)
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [view(dict(row._mapping)) for row in rows]

    async def _record(
        self,
        event: str,
        access_id: str,
        client: str,
        service: str,
        request_id: str,
        detail: dict[str, Any],
        status: int = 200,
    ) -> None:
        if self.message_log is None:
            return
        record = AuditRecord.of_access(
            event,
            access_id=access_id,
            request_id=request_id,
            client=client,
            service=service,
            detail=msgspec.json.encode(detail),
            status=status,
        )
        try:
            await self.message_log.append(record)
        except LogUnavailable:
            raise Problem(
                "log_unavailable", f"the {event} step of {access_id} is stored but not on record"
            ) from None


_TIMES = ("requested_at", "decided_at", "expires_at", "revoked_at")


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A request as the API shows it: times ISO 8601, contact as an object, state current."""
    item: dict[str, Any] = {column.name: row.get(column.name) for column in access_requests.c}
    if item["state"] == "approved" and item.get("expires_at") and item["expires_at"] <= time.time():
        item["state"] = "expired"
    item["contact"] = msgspec.json.decode(item["contact"])
    for name in _TIMES:
        value = item.get(name)
        item[name] = None if value is None else iso(value)
    return {key: value for key, value in item.items() if key != "request_id"}


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")
