"""What the running gateway offers adapters beyond ``handle``: state and inbound delivery.

An adapter that polls a national system (the document axis) or must remember
something between requests (the portal's last synced dossier status) is a
``HostedAdapter``: the server calls its ``start(host)`` once, after it is
built and before any request reaches it. ``GatewayHost`` is that host; it is
backed by the process's ``Persistence``, so what adapters keep is durable and
shared by replicas on one PostgreSQL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.base import (
    Adapter,
    AdapterMailboxes,
    AdapterState,
    HostedAdapter,
    InboundMessage,
    InboundRefused,
    MailboxItem,
)
from gateway import metrics
from gateway.delivery import INBOUND_ROUTE
from gateway.messagelog import AuditRecord
from gateway.persistence import Persistence
from gateway.runtime import Runtime
from gateway.signatures.policy import SignaturePolicy
from gateway.store import Store
from gateway.store.tables import adapter_state, agency_mailbox


class StoredState:
    """``AdapterState`` in the ``adapter_state`` table."""

    def __init__(self, store: Store, upstream: str) -> None:
        self.store = store
        self.upstream = upstream

    async def get(self, key: str) -> str | None:
        query = sa.select(adapter_state.c.value).where(
            adapter_state.c.upstream == self.upstream, adapter_state.c.key == key
        )
        async with self.store.engine.connect() as connection:
            value = (await connection.execute(query)).scalar()
        return None if value is None else str(value)

    def _insert(self, key: str, value: str) -> Any:
        """An INSERT in the store's dialect, which can say what to do on a conflict."""
        dialect = postgresql if self.store.engine.dialect.name == "postgresql" else sqlite
        row = {"upstream": self.upstream, "key": key, "value": value, "updated_at": time.time()}
        return dialect.insert(adapter_state).values(**row)

    async def put(self, key: str, value: str) -> None:
        insert = self._insert(key, value)
        upsert = insert.on_conflict_do_update(
            index_elements=[adapter_state.c.upstream, adapter_state.c.key],
            set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at},
        )
        async with self.store.engine.begin() as connection:
            await connection.execute(upsert)

    async def swap(self, key: str, expected: str | None, value: str) -> bool:
        c = adapter_state.c
        if expected is None:
            change = self._insert(key, value).on_conflict_do_nothing()
        else:
            change = (
                adapter_state.update()
                .where(c.upstream == self.upstream, c.key == key, c.value == expected)
                .values(value=value, updated_at=time.time())
            )
        async with self.store.engine.begin() as connection:
            return bool((await connection.execute(change)).rowcount == 1)

    async def purge(self, prefix: str, before: float) -> int:
        c = adapter_state.c
        old = adapter_state.delete().where(
            c.upstream == self.upstream,
            c.key.startswith(prefix, autoescape=True),
            c.updated_at < before,
        )
        async with self.store.engine.begin() as connection:
            return (await connection.execute(old)).rowcount


class StoredMailboxes:
    """``AdapterMailboxes`` in the ``agency_mailbox`` table."""

    def __init__(self, store: Store, upstream: str) -> None:
        self.store = store
        self.upstream = upstream

    async def put(self, message_id: str, box: str, item: str, message: InboundMessage) -> None:
        """Store a message; ``IntegrityError`` if it is there already."""
        at = time.time()
        row = {
            "id": message_id,
            "upstream": self.upstream,
            "box": box,
            "item": item,
            "headers": msgspec.json.encode(message.request.headers).decode(),
            "body": message.request.body,
            "state": "initial",
            "created_at": at,
            "updated_at": at,
        }
        async with self.store.engine.begin() as connection:
            await connection.execute(agency_mailbox.insert().values(**row))

    def _where(self, box: str, item: str | None = None) -> list[Any]:
        c = agency_mailbox.c
        found = [c.upstream == self.upstream, c.box == box]
        return found if item is None else [*found, c.item == item]

    async def items(self, box: str, limit: int) -> list[MailboxItem]:
        c = agency_mailbox.c
        query = (
            sa.select(*_ITEM_COLUMNS)
            .where(*self._where(box), c.state.in_(("initial", "processing")))
            .order_by(c.created_at)
            .limit(limit)
        )
        async with self.store.engine.connect() as connection:
            return [_item(row) for row in await connection.execute(query)]

    async def get(self, box: str, item: str) -> MailboxItem | None:
        query = sa.select(*_ITEM_COLUMNS).where(*self._where(box, item))
        async with self.store.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _item(row)

    async def body(self, box: str, item: str) -> bytes | None:
        query = sa.select(agency_mailbox.c.body).where(*self._where(box, item))
        async with self.store.engine.connect() as connection:
            body = (await connection.execute(query)).scalar()
        return None if body is None else bytes(body)

    async def settle(
        self, box: str, item: str, state: Literal["processing", "done", "fail"], reason: str
    ) -> MailboxItem | None:
        change = (
            agency_mailbox.update()
            .where(*self._where(box, item))
            .values(state=state, reason=reason or None, updated_at=time.time())
        )
        async with self.store.engine.begin() as connection:
            if not (await connection.execute(change)).rowcount:
                return None
            row = (
                await connection.execute(sa.select(*_ITEM_COLUMNS).where(*self._where(box, item)))
            ).one()
        return _item(row)

    async def purge(self, before: float) -> int:
        c = agency_mailbox.c
        old = agency_mailbox.delete().where(
            c.upstream == self.upstream, c.state.in_(("done", "fail")), c.updated_at < before
        )
        async with self.store.engine.begin() as connection:
            return (await connection.execute(old)).rowcount


_ITEM_COLUMNS = [
    agency_mailbox.c[name]
    for name in ("id", "box", "item", "headers", "state", "reason", "created_at", "updated_at")
]


def _item(row: Any) -> MailboxItem:
    return MailboxItem(
        box=row.box,
        item=row.item,
        message_id=row.id,
        headers=msgspec.json.decode(row.headers),
        state=row.state,
        reason=row.reason or "",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class GatewayHost:
    """The ``AdapterHost`` of one configured upstream."""

    def __init__(self, name: str, persistence: Persistence, runtime: Callable[[], Runtime]) -> None:
        self.name = name
        self.persistence = persistence
        self.state: AdapterState = StoredState(persistence.store, name)
        self._mailboxes = StoredMailboxes(persistence.store, name)
        self.mailboxes: AdapterMailboxes = self._mailboxes
        self._runtime = runtime

    def has_upstream(self, name: str) -> bool:
        return name in self._runtime().adapters

    async def delivery(self, message_id: str) -> dict[str, Any] | None:
        return await self.persistence.queue.get(message_id)

    async def _signatures(self, message: InboundMessage) -> str | None:
        """The verification result to keep (JSON), or ``InboundRefused``."""
        if message.verify_signatures == "off":
            return None
        from gateway import signatures

        trust = self._runtime().trust
        if trust is None:
            raise InboundRefused("signatures cannot be verified: the gateway has no trust section")
        request = message.request
        policy = SignaturePolicy(mode=message.verify_signatures)
        try:
            result = await trust.verify(request.body, request.content_type, policy)
        except signatures.UnusableInput as exc:
            raise InboundRefused(f"signatures cannot be verified: {exc}") from None
        metrics.signature_verdict("inbound", result.verdict)
        if not result.accepted:
            reasons = "; ".join(r.message_en for r in result.reasons if r.severity == "error")
            raise InboundRefused(f"signature {result.verdict}: {reasons or 'no signature'}")
        return result.record()

    async def accept(self, message: InboundMessage) -> tuple[str, bool]:
        """Queue for delivery (durable before this returns), then put it on record.

        The message id is derived from the adapter and the key, so a message
        fetched twice (a poll repeated after a crash, two replicas polling)
        is queued once: the second insert hits the primary key.
        """
        message_id = self._message_id(message)
        signature = _with_warnings(await self._signatures(message), message.warnings)
        try:
            await self.persistence.queue.enqueue(
                message_id,
                client=message.source,
                route=f"{INBOUND_ROUTE}:{self.name}",
                upstream=message.upstream,
                request=message.request,
            )
        except sa.exc.IntegrityError:
            return message_id, False
        await self._record(message_id, message, message.upstream, signature)
        return message_id, True

    async def hold(self, box: str, item: str, message: InboundMessage) -> tuple[str, bool]:
        """Keep in a mailbox here, then put it on record (its upstream: this adapter's)."""
        message_id = self._message_id(message)
        signature = _with_warnings(await self._signatures(message), message.warnings)
        try:
            await self._mailboxes.put(message_id, box, item, message)
        except sa.exc.IntegrityError:
            return message_id, False
        await self._record(message_id, message, self.name, signature)
        return message_id, True

    def _message_id(self, message: InboundMessage) -> str:
        return hashlib.sha256(f"{self.name}\0{message.key}".encode()).hexdigest()[:32]

    async def _record(
        self, message_id: str, message: InboundMessage, upstream: str, signature: str | None
    ) -> None:
        route = f"{INBOUND_ROUTE}:{self.name}"
        request = message.request
        if self.persistence.message_log is not None:
            await self.persistence.message_log.append(
                AuditRecord.of_message(
                    message_id,
                    request,
                    kind="accepted",
                    client=message.source,
                    route=route,
                    upstream=upstream,
                    t_request_in=time.time(),
                    status=202,
                    signature=signature,
                )
            )


def _with_warnings(evidence: str | None, warnings: list[dict[str, str]]) -> str | None:
    """The record's evidence (the verification result, JSON) with the message's warnings."""
    if not warnings:
        return evidence
    result = msgspec.json.decode(evidence) if evidence else {}
    return msgspec.json.encode({**result, "warnings": warnings}).decode()


async def start_hosted(
    adapters: dict[str, Adapter],
    persistence: Persistence,
    runtime: Callable[[], Runtime],
    already: dict[str, Adapter] | None = None,
) -> None:
    """Start the hosted adapters of ``adapters`` that are not in ``already`` (kept on reload)."""
    kept = {id(adapter) for adapter in (already or {}).values()}
    for name, adapter in adapters.items():
        if isinstance(adapter, HostedAdapter) and id(adapter) not in kept:
            await adapter.start(GatewayHost(name, persistence, runtime))
