"""The message log: one tamper-evident record per exchange.

Each record carries the SHA-256 of the previous record of its chain, so an
edited, inserted or deleted record breaks the chain at that point
(``verify_chains`` names the first broken one). Every gateway process writes
its own chain (``log_id``), so replicas never contend for "the last hash".

Durability: ``MessageLog.append`` returns only once the record is committed
(SQLite with ``synchronous=FULL``, or PostgreSQL's commit). The pipeline
awaits it before answering, so an answered exchange is always on record.
Records are written in batches (group commit): while one transaction
commits, the records that arrive meanwhile wait and go together in the next,
so one fsync serves many requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import sqlalchemy as sa

from adapters.base import GatewayRequest
from adapters.logs import get_logger
from gateway import metrics
from gateway.exchange import Exchange
from gateway.store import Store
from gateway.store.appender import open_appender
from gateway.store.tables import log_anchor, message_log

GENESIS = "0" * 64
MAX_BATCH = 500
"""Records committed in one transaction at most (the rest wait for the next)."""

log = get_logger(__name__)


class AuditRecord(msgspec.Struct, kw_only=True):
    """What the gateway knows about one exchange, as stored."""

    message_id: str
    kind: str = "exchange"
    """``exchange`` (answered at once), ``accepted`` (queued for async delivery), ``delivery``,
    ``admin`` (an administrator's action; ``client`` says who)."""
    request_id: str
    client: str | None = None
    route: str | None = None
    upstream: str | None = None
    operation: str | None = None
    method: str
    path: str
    t_request_in: float
    t_upstream_out: float | None = None
    t_upstream_in: float | None = None
    t_response_out: float
    bytes_in: int = 0
    bytes_out: int = 0
    status: int
    error_code: str | None = None
    request_sha256: str
    response_sha256: str
    signature: str | None = None
    request_body: bytes | None = None
    response_body: bytes | None = None
    log_id: str = ""
    """The chain the record is in, and ``seq`` its place there: set by ``MessageLog`` as it
    links the record."""
    seq: int = 0

    @classmethod
    def of_exchange(
        cls,
        exchange: Exchange,
        *,
        kind: str,
        request: bytes,
        response: bytes,
        status: int,
        path: str,
        signature: str | None = None,
        request_body: bytes | None = None,
        response_body: bytes | None = None,
    ) -> AuditRecord:
        """The record of an HTTP exchange on the data plane (answered, or accepted async)."""
        return cls(
            message_id=exchange.message_id,
            kind=kind,
            request_id=exchange.request_id,
            client=exchange.client,
            route=exchange.route,
            upstream=exchange.upstream,
            operation=exchange.operation,
            method=exchange.method,
            path=path,
            t_request_in=exchange.started_at,
            t_upstream_out=exchange.upstream_out_at,
            t_upstream_in=exchange.upstream_in_at,
            t_response_out=time.time(),
            bytes_in=len(request),
            bytes_out=len(response),
            status=status,
            error_code=exchange.error_code,
            request_sha256=sha256_hex(request),
            response_sha256=sha256_hex(response),
            signature=signature,
            request_body=request_body,
            response_body=response_body,
        )

    @classmethod
    def of_message(
        cls,
        message_id: str,
        request: GatewayRequest,
        *,
        kind: str,
        client: str,
        route: str,
        upstream: str,
        t_request_in: float,
        status: int,
        response: bytes = b"",
        t_upstream_out: float | None = None,
        error_code: str | None = None,
        signature: str | None = None,
    ) -> AuditRecord:
        """The record of a message the gateway holds outside a request: an inbound message it
        accepted for delivery (``accepted``), or a queued one it delivered (``delivery``)."""
        now = time.time()
        return cls(
            message_id=message_id,
            kind=kind,
            request_id=request.request_id or message_id,
            client=client,
            route=route,
            upstream=upstream,
            operation=request.operation or None,
            method=request.method,
            path=request.path,
            t_request_in=t_request_in,
            t_upstream_out=t_upstream_out,
            t_upstream_in=None if t_upstream_out is None else now,
            t_response_out=now,
            bytes_in=len(request.body),
            bytes_out=len(response),
            status=status,
            error_code=error_code,
            request_sha256=sha256_hex(request.body),
            response_sha256=sha256_hex(response),
            signature=signature,
        )

    @classmethod
    def of_access(
        cls,
        event: str,
        *,
        access_id: str,
        request_id: str,
        client: str,
        service: str,
        detail: bytes,
        status: int = 200,
    ) -> AuditRecord:
        """A step of an access agreement (``requested``, ``approved``, ``refused``, ``revoked``):
        ``message_id`` is the request's id, ``client`` the requester, ``operation``
        ``access.<event>``, and the body what was asked or decided, by whom and why."""
        now = time.time()
        return cls(
            message_id=access_id,
            kind="access",
            request_id=request_id,
            client=client,
            operation=f"access.{event}",
            method="POST",
            path=f"/v1/catalogue/{service}/access-requests",
            t_request_in=now,
            t_response_out=now,
            bytes_in=len(detail),
            status=status,
            request_sha256=sha256_hex(detail),
            response_sha256=sha256_hex(b""),
            request_body=detail,
        )


class LogUnavailable(Exception):
    """The record could not be committed: the exchange must not be acknowledged."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_CANONICAL = msgspec.json.Encoder(order="sorted")


def record_hash(prev_hash: str, log_id: str, seq: int, record: AuditRecord) -> str:
    """The chain link of ``record`` as the ``seq``-th of chain ``log_id``."""
    return link_hash(prev_hash, msgspec.structs.replace(record, log_id=log_id, seq=seq))


def link_hash(prev_hash: str, record: AuditRecord) -> str:
    """SHA-256 over the previous hash and every stored field, in a fixed order (canonical
    JSON: keys sorted, ``log_id`` and ``seq`` among them)."""
    return hashlib.sha256(prev_hash.encode() + _CANONICAL.encode(record)).hexdigest()


LOG_COLUMNS = (*AuditRecord.__struct_fields__, "prev_hash", "hash")
"""A row as ``MessageLog`` hands it to the appender: the record's fields, then its links."""


def default_log_id() -> str:
    """Unique per process run: replicas sharing a database each keep their own chain."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class MessageLog:
    """Group-commit writer of one chain, on a connection of its own (``store.appender``).

    ``append`` only queues the record and waits: the writer task takes what is queued
    (up to ``MAX_BATCH``), links each record to the chain once, and hands the rows to the
    appender as one batch; what arrives meanwhile goes in the next.
    """

    def __init__(self, store: Store, log_id: str | None = None) -> None:
        self.store = store
        self.log_id = log_id or default_log_id()
        self._pending: list[tuple[AuditRecord, asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._seq = 0
        self._last_hash = GENESIS
        self._tail_known = False
        """False after a failed batch: whether it was committed before the failure (a lost
        answer) is read back from the database before the next batch."""
        self._task: asyncio.Task[None] | None = None
        self._appender = open_appender(store, message_log, LOG_COLUMNS)

    async def start(self) -> None:
        await self._read_tail()
        self._task = asyncio.create_task(self._run(), name=f"message-log {self.log_id}")

    async def _read_tail(self) -> None:
        """Continue the chain from its last stored record."""
        async with self.store.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(message_log.c.seq, message_log.c.hash)
                    .where(message_log.c.log_id == self.log_id)
                    .order_by(message_log.c.seq.desc())
                    .limit(1)
                )
            ).first()
        if row is not None:
            self._seq, self._last_hash = int(row.seq), str(row.hash)
        self._tail_known = True

    async def append(self, record: AuditRecord) -> int:
        """Commit ``record``; returns its sequence number. ``LogUnavailable`` if it cannot."""
        if self._task is None or self._task.done() or self._closing:
            raise LogUnavailable("message log writer is not running")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((record, done))
        self._wake.set()
        return await done

    async def _run(self) -> None:
        while not self._closing or self._pending:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # the requests already running get to add theirs
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[AuditRecord, asyncio.Future[int]]]) -> None:
        started = time.perf_counter()
        try:
            if not self._tail_known:
                await self._read_tail()
            seq, last = self._seq, self._last_hash
            rows = []
            for record, _ in batch:
                seq += 1
                record.log_id, record.seq = self.log_id, seq
                digest = link_hash(last, record)
                rows.append((*msgspec.structs.astuple(record), last, digest))
                last = digest
            await self._appender.append(rows)
        except Exception as exc:
            self._tail_known = False
            log.error("message_log_write_failed", error=type(exc).__name__, records=len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_exception(LogUnavailable(f"message log write failed: {exc}"))
            return
        metrics.log_committed(len(rows), time.perf_counter() - started)
        first = self._seq + 1
        self._seq, self._last_hash = seq, last
        for number, (_, done) in enumerate(batch, start=first):
            if not done.done():
                done.set_result(number)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._appender.close()


# --- verification -----------------------------------------------------------


class ChainReport(msgspec.Struct):
    log_id: str
    records: int
    ok: bool
    first_seq: int = 0
    broken_at: int | None = None
    """Sequence number of the first record that does not verify."""
    reason: str = ""


_STORED = tuple(f for f in AuditRecord.__struct_fields__)


async def verify_chains(store: Store, log_id: str | None = None) -> list[ChainReport]:
    """Check every chain (or one) from its anchor to its last record."""
    async with store.engine.connect() as connection:
        ids_query = sa.select(message_log.c.log_id).distinct()
        if log_id is not None:
            ids_query = ids_query.where(message_log.c.log_id == log_id)
        ids = [row[0] for row in (await connection.execute(ids_query)).all()]
        reports = []
        for chain in sorted(ids):
            anchor = (
                await connection.execute(sa.select(log_anchor).where(log_anchor.c.log_id == chain))
            ).first()
            start_seq, prev = (int(anchor.seq), str(anchor.hash)) if anchor else (0, GENESIS)
            result = await connection.stream(
                sa.select(message_log)
                .where(message_log.c.log_id == chain)
                .order_by(message_log.c.seq)
                .execution_options(yield_per=1000)
            )
            reports.append(await _verify_rows(chain, start_seq, prev, result))
    return reports


async def _verify_rows(chain: str, start_seq: int, prev: str, rows: Any) -> ChainReport:
    expected_seq = start_seq + 1
    count = 0
    async for row in rows:
        count += 1
        record = AuditRecord(**{name: getattr(row, name) for name in _STORED})
        if row.seq != expected_seq:
            reason = (
                f"record {expected_seq} is missing" if row.seq > expected_seq else "out of order"
            )
            return ChainReport(chain, count, False, start_seq + 1, expected_seq, reason)
        if row.prev_hash != prev:
            return ChainReport(
                chain, count, False, start_seq + 1, row.seq, "does not follow the previous record"
            )
        if record_hash(prev, chain, row.seq, record) != row.hash:
            return ChainReport(chain, count, False, start_seq + 1, row.seq, "content was changed")
        prev = row.hash
        expected_seq += 1
    return ChainReport(chain, count, True, start_seq + 1)


# --- search, export, retention ------------------------------------------------


class SearchFilter(msgspec.Struct, kw_only=True):
    since: float | None = None
    until: float | None = None
    client: str | None = None
    route: str | None = None
    status: int | None = None
    message_id: str | None = None


def _where(query: sa.Select[Any], search: SearchFilter) -> sa.Select[Any]:
    c = message_log.c
    if search.since is not None:
        query = query.where(c.t_request_in >= search.since)
    if search.until is not None:
        query = query.where(c.t_request_in < search.until)
    for column, value in (
        (c.client, search.client),
        (c.route, search.route),
        (c.status, search.status),
        (c.message_id, search.message_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


_LISTED = [c for c in message_log.c if c.name not in ("request_body", "response_body")]


def _public(row: Any) -> dict[str, Any]:
    item = {column.name: getattr(row, column.name) for column in _LISTED}
    if item.get("signature"):
        item["signature"] = msgspec.json.decode(item["signature"])
    return item


Cursor = tuple[float, str, int]
"""(time, log id, seq) of the last record of a page."""


async def search(
    store: Store, search: SearchFilter, *, limit: int = 100, after: Cursor | None = None
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """A page of records, oldest first, and the cursor of the next page (None at the end)."""
    c = message_log.c
    query = _where(sa.select(*_LISTED), search)
    if after is not None:
        query = query.where(sa.tuple_(c.t_request_in, c.log_id, c.seq) > sa.tuple_(*after))
    query = query.order_by(c.t_request_in, c.log_id, c.seq).limit(limit + 1)
    async with store.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    items = [_public(row) for row in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        cursor = (float(last.t_request_in), str(last.log_id), int(last.seq))
    return items, cursor


async def export(store: Store, search: SearchFilter) -> AsyncIterator[bytes]:
    """Matching records as JSON Lines, bodies base64, streamed from the database."""
    c = message_log.c
    query = _where(sa.select(message_log), search).order_by(c.t_request_in, c.log_id, c.seq)
    async with store.engine.connect() as connection:
        result = await connection.stream(query.execution_options(yield_per=500))
        async for row in result:
            item = _public(row)
            item["request_body"] = row.request_body
            item["response_body"] = row.response_body
            yield msgspec.json.encode(item) + b"\n"


async def purge(store: Store, older_than: float, archive_dir: str | None = None) -> int:
    """Delete records before ``older_than`` (Unix time), anchoring each chain where it now starts.

    With ``archive_dir``, the purged records are first written there as JSON
    Lines. Whole-prefix deletion per chain keeps each chain verifiable.
    """
    c = message_log.c
    purged = 0
    async with store.engine.begin() as connection:
        chains = (
            await connection.execute(
                sa.select(c.log_id, sa.func.max(c.seq))
                .where(c.t_request_in < older_than)
                .group_by(c.log_id)
            )
        ).all()
        for chain, last_seq in chains:
            last = (
                await connection.execute(
                    sa.select(c.hash).where(c.log_id == chain, c.seq == last_seq)
                )
            ).scalar_one()
            if archive_dir is not None:
                await _archive(connection, chain, int(last_seq), archive_dir)
            deleted = await connection.execute(
                message_log.delete().where(c.log_id == chain, c.seq <= last_seq)
            )
            purged += deleted.rowcount
            await connection.execute(log_anchor.delete().where(log_anchor.c.log_id == chain))
            await connection.execute(
                log_anchor.insert().values(
                    log_id=chain, seq=last_seq, hash=last, purged_at=time.time()
                )
            )
    return purged


async def _archive(connection: Any, chain: str, last_seq: int, archive_dir: str) -> None:
    os.makedirs(archive_dir, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in chain)
    path = os.path.join(archive_dir, f"{safe}-upto-{last_seq}.jsonl")
    c = message_log.c
    result = await connection.stream(
        sa.select(message_log).where(c.log_id == chain, c.seq <= last_seq).order_by(c.seq)
    )
    with open(path, "ab") as handle:
        async for row in result:
            item = _public(row)
            item["request_body"] = row.request_body
            item["response_body"] = row.response_body
            handle.write(msgspec.json.encode(item) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
