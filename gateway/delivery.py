"""Store-and-forward: requests accepted now, delivered in the background.

A route with ``delivery: async`` stores the request (``DeliveryQueue.enqueue``,
committed before the caller gets its 202) and a ``DeliveryWorker`` delivers
it. States::

    queued -> delivering -> delivered
                 |  \\-> failed (waits for its next attempt) -> delivering ...
                 \\-> dead (attempts or age exhausted, or the upstream refused it)
    dead -> queued (an administrator retries) | discarded (with a reason)

A worker *leases* what it claims; if it dies (``kill -9``), the lease expires
and any worker, after a restart or on another replica, claims the delivery
again. Every attempt carries ``Idempotency-Key: <message id>``, so an upstream
that honours it sees a message once however often it is sent. Claiming uses
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas sharing a database share
the work without taking the same message twice; SQLite has one writer at a
time and needs no lock hint (SQLAlchemy renders none).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import Adapter, GatewayRequest, GatewayResponse
from adapters.errors import RequestRejected, UpstreamError, UpstreamTimeout
from adapters.logs import get_logger
from adapters.units import seconds
from gateway import metrics, tracing
from gateway.config.model import DeliverySettings
from gateway.store import Store
from gateway.store.tables import (
    LEASED_STATE,
    WAITING,
    WAITING_SQL,
    WAITING_STATES,
    deliveries,
    delivery_attempts,
    message_log,
)

log = get_logger(__name__)

_PENDING = """
    WITH RECURSIVE due(upstream) AS (
        SELECT MIN(upstream) FROM deliveries{indexed}
        WHERE state IN ({waiting}) AND next_attempt_at <= :now
      UNION ALL
        SELECT (
            SELECT MIN(later.upstream) FROM deliveries AS later{indexed}
            WHERE later.state IN ({waiting}) AND later.next_attempt_at <= :now
            AND later.upstream > due.upstream
        )
        FROM due WHERE due.upstream IS NOT NULL
    )
    SELECT upstream FROM due WHERE upstream IS NOT NULL
    UNION
    SELECT upstream FROM deliveries WHERE state = 'delivering' AND lease_until < :now
"""
PENDING = {
    "postgresql": sa.text(_PENDING.format(waiting=WAITING_SQL, indexed="")),
    # SQLite's planner would take the state index, row by row: 25 ms at a backlog of 100,000
    # against 0.2 along the partial index.
    "sqlite": sa.text(
        _PENDING.format(waiting=WAITING_SQL, indexed=" INDEXED BY deliveries_waiting")
    ),
}
"""Upstreams with due or lapsed deliveries, one index probe per upstream (a recursive skip
from one to the next) instead of a scan of every waiting row. The states are the partial
indexes' (tables.py)."""
LEASE_LOST = "lease_lost"
"""``finish_many`` found the delivery taken over by another worker: this attempt is not recorded."""
STATES = ("queued", "delivering", "delivered", "failed", "dead", "discarded")
UNFINISHED = ("queued", "delivering", "failed", "dead")
INBOUND_ROUTE = "inbound"
"""Route of messages a hosted adapter fetched (``inbound:<upstream>``), not sent by a client."""


class Claimed(msgspec.Struct):
    id: str
    route: str
    upstream: str
    attempt: int
    """This attempt's number; numbers keep growing across manual retries."""
    budget_used: int
    """Attempts made since the message was (re)queued, this one included."""
    created_at: float
    queued_at: float
    request: GatewayRequest

    @classmethod
    def of_row(cls, row: Any) -> Claimed:
        """A ``deliveries`` row as the worker sees it (after its attempt count was taken)."""
        budget_used = row.attempts - row.retry_base
        return cls(
            row.id,
            row.route,
            row.upstream,
            row.attempts,
            budget_used,
            row.created_at,
            row.queued_at,
            decode_request(row.request),
        )


class Outcome(msgspec.Struct, kw_only=True):
    """What one attempt came to; decides the next state."""

    delivered: bool
    retry: bool
    code: str
    status: int | None = None
    detail: str = ""
    response: GatewayResponse | None = None


class Finished(msgspec.Struct):
    """An attempt over, waiting to be written with others of its batch."""

    claimed: Claimed
    outcome: Outcome
    started: float
    ended: float


def encode_request(request: GatewayRequest) -> bytes:
    return msgspec.msgpack.encode(request)


def decode_request(data: bytes) -> GatewayRequest:
    return msgspec.msgpack.decode(data, type=GatewayRequest)


class DeliveryQueue:
    """The ``deliveries`` table and the rules for moving between states."""

    def __init__(self, store: Store, settings: DeliverySettings) -> None:
        self.store = store
        self.settings = settings
        self.arrived = asyncio.Event()
        """Set on enqueue: a worker in this process starts at once, not at its next poll."""

    async def enqueue(
        self, message_id: str, *, client: str, route: str, upstream: str, request: GatewayRequest
    ) -> None:
        now = time.time()
        async with self.store.engine.begin() as connection:
            await connection.execute(
                deliveries.insert().values(
                    id=message_id,
                    client=client,
                    route=route,
                    upstream=upstream,
                    state="queued",
                    request=encode_request(request),
                    attempts=0,
                    retry_base=0,
                    created_at=now,
                    queued_at=now,
                    updated_at=now,
                    next_attempt_at=now,
                )
            )
        self.arrived.set()

    def transaction(
        self, within: AsyncConnection | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction of its own, or ``within`` one the caller holds (the worker's turn)."""
        return self.store.engine.begin() if within is None else contextlib.nullcontext(within)

    async def claim(
        self,
        worker: str,
        upstream: str,
        limit: int,
        within: AsyncConnection | None = None,
        *,
        lapsed: bool = True,
    ) -> list[Claimed]:
        """Lease up to ``limit`` deliveries of ``upstream`` for ``worker``: first those whose
        lease lapsed (their worker died; unless ``lapsed`` is false), then the due ones,
        oldest first.

        Each is an ordered walk of a partial index of the unfinished rows that stops at
        the limit: what it costs does not grow with the backlog or the history.
        """
        now = time.time()
        c = deliveries.c
        walks = [
            sa.select(c.id)
            .where(c.upstream == upstream, WAITING_STATES, c.next_attempt_at <= now)
            .order_by(c.next_attempt_at)
        ]
        if lapsed:
            walks.insert(
                0,
                sa.select(c.id)
                .where(c.upstream == upstream, LEASED_STATE, c.lease_until < now)
                .order_by(c.lease_until),
            )
        claimed: list[Claimed] = []
        async with self.transaction(within) as connection:
            for candidates in walks:
                left = limit - len(claimed)
                if left <= 0:
                    break
                taken = candidates.limit(left).with_for_update(skip_locked=True)
                rows = (await connection.execute(self._lease(worker, taken, now))).all()
                claimed += [Claimed.of_row(row) for row in rows]
        return claimed

    def _lease(self, worker: str, taken: sa.Select[Any], now: float) -> sa.Update:
        c = deliveries.c
        return (
            deliveries.update()
            .where(c.id.in_(taken.scalar_subquery()))
            .values(
                state="delivering",
                attempts=c.attempts + 1,
                lease_until=now + seconds(self.settings.lease),
                leased_by=worker,
                updated_at=now,
            )
            .returning(
                c.id,
                c.route,
                c.upstream,
                c.attempts,
                c.retry_base,
                c.created_at,
                c.queued_at,
                c.request,
            )
        )

    async def pending_upstreams(self, within: AsyncConnection | None = None) -> list[str]:
        async with self.transaction(within) as connection:
            query = PENDING[connection.dialect.name]
            rows = (await connection.execute(query, {"now": time.time()})).all()
        return sorted(row[0] for row in rows)

    async def release(self, worker: str, ids: Sequence[str]) -> int:
        """Give back deliveries this worker leased but will not finish (it is shutting down):
        due again at once, for any worker, and the unfinished attempt not counted."""
        if not ids:
            return 0
        c = deliveries.c
        now = time.time()
        async with self.store.engine.begin() as connection:
            result = await connection.execute(
                deliveries.update()
                .where(c.id.in_(ids), c.leased_by == worker, c.state == "delivering")
                .values(
                    state="queued",
                    attempts=c.attempts - 1,
                    lease_until=None,
                    leased_by=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
        return result.rowcount

    async def depth(self) -> tuple[dict[str, int], float | None]:
        """Messages per unfinished state (dead letters included), and when the oldest inbound
        one not yet delivered was queued. Finished ones, the bulk of the table, are not counted."""
        c = deliveries.c
        by_state = (
            sa.select(c.state, sa.func.count()).where(c.state.in_(UNFINISHED)).group_by(c.state)
        )
        oldest = sa.select(sa.func.min(c.created_at)).where(
            c.route.startswith(f"{INBOUND_ROUTE}:"), c.state.in_((*WAITING, "delivering"))
        )
        async with self.store.engine.connect() as connection:
            counts = dict.fromkeys(UNFINISHED, 0)
            counts.update({row[0]: row[1] for row in (await connection.execute(by_state)).all()})
            return counts, (await connection.execute(oldest)).scalar()

    def _next_state(self, claimed: Claimed, outcome: Outcome, now: float) -> tuple[str, float]:
        """The state an attempt leads to, and when the delivery is due again (backoff, jittered)."""
        settings = self.settings
        if outcome.delivered:
            return "delivered", now
        if not outcome.retry:
            return "dead", now
        wait = min(
            seconds(settings.max_backoff),
            seconds(settings.backoff) * 2 ** (claimed.budget_used - 1),
        )
        next_at = now + wait * random.uniform(0.5, 1.0)
        too_old = next_at - claimed.queued_at > seconds(settings.max_age)
        exhausted = claimed.budget_used >= settings.max_attempts
        return ("dead" if too_old or exhausted else "failed"), next_at

    async def finish_many(
        self, worker: str, finished: Sequence[Finished], within: AsyncConnection | None = None
    ) -> list[str]:
        """Record attempts and move their deliveries on, in one transaction; the new state of
        each (``LEASE_LOST`` where another worker took the delivery over meanwhile).

        The lease check comes first and writes (PostgreSQL locks the rows, SQLite takes its
        write lock), so nothing can take a delivery between the check and the move.
        """
        if not finished:
            return []
        now = time.time()
        c = deliveries.c
        ids = [done.claimed.id for done in finished]
        mine = (
            deliveries.update()
            .where(c.id.in_(ids), c.leased_by == worker, c.state == "delivering")
            .values(lease_until=None, leased_by=None, updated_at=now)
            .returning(c.id)
        )
        move = (
            deliveries.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(
                state=sa.bindparam("b_state"),
                next_attempt_at=sa.bindparam("b_next"),
                last_error=sa.bindparam("b_error"),
                response_status=sa.bindparam("b_status"),
                response_body=sa.bindparam("b_body"),
                response_type=sa.bindparam("b_type"),
            )
        )
        states: list[str] = []
        moves: list[dict[str, Any]] = []
        async with self.transaction(within) as connection:
            held = set((await connection.execute(mine)).scalars())
            for done in finished:
                if done.claimed.id not in held:  # our lease expired; another worker owns it
                    states.append(LEASE_LOST)
                    continue
                state, next_at = self._next_state(done.claimed, done.outcome, now)
                states.append(state)
                outcome, response = done.outcome, done.outcome.response
                moves.append(
                    {
                        "b_id": done.claimed.id,
                        "b_state": state,
                        "b_next": next_at,
                        "b_error": None
                        if outcome.delivered
                        else f"{outcome.code}: {outcome.detail}",
                        "b_status": response.status if response else None,
                        "b_body": response.body if response else None,
                        "b_type": response.content_type if response else None,
                    }
                )
            if moves:
                await connection.execute(move, moves)
            await connection.execute(
                delivery_attempts.insert(),
                [
                    {
                        "delivery_id": done.claimed.id,
                        "attempt": done.claimed.attempt,
                        "started_at": done.started,
                        "finished_at": done.ended,
                        "worker": worker,
                        "outcome": done.outcome.code,
                        "status": done.outcome.status,
                        "detail": done.outcome.detail,
                    }
                    for done in finished
                ],
            )
        return states

    # --- reading and administration ---

    async def get(self, message_id: str) -> dict[str, Any] | None:
        async with self.store.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(deliveries).where(deliveries.c.id == message_id))
            ).first()
            if row is None:
                return None
            attempts = (
                await connection.execute(
                    sa.select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id == message_id)
                    .order_by(delivery_attempts.c.attempt)
                )
            ).all()
        view = _view(row)
        view["attempt_history"] = [
            {
                "attempt": a.attempt,
                "worker": a.worker,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "outcome": a.outcome,
                "status": a.status,
                "detail": a.detail,
            }
            for a in attempts
        ]
        return view

    async def list(
        self, state: str | None, *, limit: int = 100, after: str | None = None
    ) -> list[dict[str, Any]]:
        c = deliveries.c
        query = sa.select(deliveries).order_by(c.id).limit(limit)
        if state is not None:
            query = query.where(c.state == state)
        if after is not None:
            query = query.where(c.id > after)
        async with self.store.engine.connect() as connection:
            return [_view(row) for row in (await connection.execute(query)).all()]

    async def retry(self, message_id: str | None = None) -> int:
        """Put dead deliveries (one, or all) back in the queue with a fresh attempt budget."""
        c = deliveries.c
        now = time.time()
        query = deliveries.update().where(c.state == "dead")
        if message_id is not None:
            query = query.where(c.id == message_id)
        async with self.store.engine.begin() as connection:
            result = await connection.execute(
                query.values(
                    state="queued",
                    retry_base=c.attempts,
                    next_attempt_at=now,
                    queued_at=now,
                    updated_at=now,
                )
            )
        self.arrived.set()
        return result.rowcount

    async def discard(self, message_id: str, reason: str, by: str) -> bool:
        c = deliveries.c
        now = time.time()
        async with self.store.engine.begin() as connection:
            result = await connection.execute(
                deliveries.update()
                .where(c.id == message_id, c.state.in_(("dead", "failed", "queued")))
                .values(state="discarded", discard_reason=f"{by}: {reason}", updated_at=now)
            )
        return result.rowcount == 1

    async def unrecorded(
        self, before: float, limit: int = 1000
    ) -> Sequence[tuple[Claimed, Outcome, float]]:
        """Deliveries that ended before ``before`` but whose end is not in the message log.

        Marking a delivery done and recording it are two commits (the log has a
        writer of its own); a process killed in between leaves such a delivery.
        Returned as the worker saw them: claim, outcome, and when the last attempt began.
        """
        c, a = deliveries.c, delivery_attempts.c
        recorded = sa.exists().where(
            message_log.c.message_id == c.id, message_log.c.kind == "delivery"
        )
        query = (
            sa.select(deliveries)
            .where(c.state.in_(("delivered", "dead")), c.updated_at < before, ~recorded)
            .limit(limit)
        )
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            attempts = (
                await connection.execute(
                    sa.select(delivery_attempts)
                    .where(a.delivery_id.in_([row.id for row in rows]))
                    .order_by(a.attempt)
                )
            ).all()
        last = {attempt.delivery_id: attempt for attempt in attempts}  # ordered: the last wins
        found = []
        for row in rows:
            attempt = last.get(row.id)
            if attempt is None:
                continue
            response = None
            if row.response_status is not None:
                response = GatewayResponse(
                    status=row.response_status,
                    body=row.response_body or b"",
                    content_type=row.response_type or "",
                )
            claimed = Claimed.of_row(row)
            outcome = Outcome(
                delivered=row.state == "delivered",
                retry=False,
                code=attempt.outcome,
                status=attempt.status,
                detail=attempt.detail or "",
                response=response,
            )
            found.append((claimed, outcome, attempt.started_at))
        return found

    async def purge_finished(self, before: float) -> int:
        """Delete delivered and discarded messages that ended before ``before``."""
        c = deliveries.c
        finished = sa.select(c.id).where(
            c.state.in_(("delivered", "discarded")), c.updated_at < before
        )
        async with self.store.engine.begin() as connection:
            await connection.execute(
                delivery_attempts.delete().where(delivery_attempts.c.delivery_id.in_(finished))
            )
            result = await connection.execute(deliveries.delete().where(c.id.in_(finished)))
        return result.rowcount


def _view(row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "message_id": row.id,
        "client": row.client,
        "route": row.route,
        "upstream": row.upstream,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "next_attempt_at": row.next_attempt_at if row.state in WAITING else None,
        "last_error": row.last_error,
    }
    if row.discard_reason:
        view["discard_reason"] = row.discard_reason
    if row.response_status is not None:
        body = row.response_body or b""
        try:
            text: str | None = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        view["response"] = {
            "status": row.response_status,
            "content_type": row.response_type,
            "body": text if text is not None else None,
            "size": len(body),
        }
    return view


class DeliveryWorker:
    """Claims due deliveries and calls their upstreams, at most ``concurrency`` per upstream.

    One loop does all the database work, in batches: it writes every attempt that ended
    since its last turn (``finish_many``, one transaction), then claims as many due
    deliveries as there are free slots (one statement per upstream). The attempts
    themselves run as tasks and only hand their outcome to the loop, so a delivery costs
    no round trip of its own and the batches grow with the load.
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        worker_id: str,
        resolve: Callable[[str, str], tuple[Adapter, float] | None],
        on_delivered: Callable[[Claimed, Outcome, float], Awaitable[None]],
        serves: Callable[[str], bool],
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.resolve = resolve
        """(route id, upstream name) -> (adapter, timeout seconds), None if no longer configured."""
        self.on_finished = on_delivered
        self.serves = serves
        """Whether this process has the upstream now: it claims nothing it cannot deliver."""
        self._inflight: dict[str, int] = {}
        self._active: set[str] = set()
        """Ids of the deliveries being attempted now (released if shutdown cuts them short)."""
        self._ended: list[Finished] = []
        """Attempts over and not yet written: the loop's next batch."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._records: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._interval = seconds(queue.settings.poll_interval)
        self._lapsed_next: dict[str, float] = {}
        """Per upstream: when (monotonic) to look for lapsed leases again."""

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"delivery {self.worker_id}")

    async def _run(self) -> None:
        while not self._stopping:
            self.queue.arrived.clear()
            try:
                await self._turn()
            except Exception:
                log.exception("delivery_poll_failed", worker=self.worker_id)
            else:
                if self._ended:  # more ended while this turn wrote: write them now
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.arrived.wait(), timeout=self._interval)

    async def _turn(self) -> None:
        """Write what ended and claim for the free slots: one transaction, one connection."""
        batch, self._ended = self._ended, []
        try:
            async with self.queue.transaction() as connection:
                states = await self.queue.finish_many(self.worker_id, batch, connection)
                claimed = await self._claim(connection)
        except BaseException:
            self._ended[:0] = batch  # written on the next turn (or their leases bring them back)
            raise
        self._written(batch, states)
        for one in claimed:  # started once their leases are committed
            self._inflight[one.upstream] = self._inflight.get(one.upstream, 0) + 1
            self._active.add(one.id)
            task = asyncio.create_task(self._deliver(one))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _claim(self, connection: AsyncConnection) -> list[Claimed]:
        limit = self.queue.settings.concurrency
        claimed: list[Claimed] = []
        now = time.monotonic()
        for upstream in await self.queue.pending_upstreams(connection):
            if not self.serves(upstream):  # another replica's config may have it
                continue
            free = limit - self._inflight.get(upstream, 0)
            if free > 0:
                # A lapsed lease means a worker died a lease ago: looking once per poll
                # interval is soon enough, and saves a statement on most turns under load.
                lapsed = now >= self._lapsed_next.get(upstream, 0.0)
                if lapsed:
                    self._lapsed_next[upstream] = now + self._interval
                claimed += await self.queue.claim(
                    self.worker_id, upstream, free, connection, lapsed=lapsed
                )
        return claimed

    async def _deliver(self, claimed: Claimed) -> None:
        started = time.time()
        try:
            with tracing.delivery_span(claimed.request.headers, claimed.id, claimed.upstream):
                outcome = await self._attempt(claimed)
            ended = time.time()
            answered = f"{outcome.status // 100}xx" if outcome.status else outcome.code
            metrics.upstream_call(
                claimed.upstream, claimed.request.operation, answered, ended - started
            )
            self._ended.append(Finished(claimed, outcome, started, ended))
            self._active.discard(claimed.id)
        except Exception:
            log.exception("delivery_failed", message_id=claimed.id)  # the lease will bring it back
            self._active.discard(claimed.id)
        finally:
            self._inflight[claimed.upstream] -= 1
            self.queue.arrived.set()  # a slot is free, an outcome to write

    def _written(self, batch: list[Finished], states: list[str]) -> None:
        """Count and log the attempts just written; put the final ones on record."""
        final = []
        for done, state in zip(batch, states, strict=True):
            claimed = done.claimed
            metrics.delivery_attempt(claimed.upstream, done.outcome.code, state)
            log.info(
                "delivery_attempt",
                message_id=claimed.id,
                route=claimed.route,
                upstream=claimed.upstream,
                attempt=claimed.attempt,
                outcome=done.outcome.code,
                state=state,
            )
            if state in ("delivered", "dead"):
                final.append(done)
        if final:  # the loop goes on while the log commits them
            task = asyncio.create_task(self._record(final))
            self._records.add(task)
            task.add_done_callback(self._records.discard)

    async def _record(self, final: list[Finished]) -> None:
        results = await asyncio.gather(
            *(self.on_finished(d.claimed, d.outcome, d.started) for d in final),
            return_exceptions=True,
        )
        for done, result in zip(final, results, strict=True):
            if isinstance(result, BaseException):  # housekeeping records it later
                log.error("delivery_record_failed", message_id=done.claimed.id, exc_info=result)

    async def _attempt(self, claimed: Claimed) -> Outcome:
        target = self.resolve(claimed.route, claimed.upstream)
        if target is None:
            return Outcome(
                delivered=False, retry=True, code="not_configured",
                detail=f"upstream {claimed.upstream!r} is not configured now",
            )  # fmt: skip
        adapter, timeout = target
        request = msgspec.structs.replace(
            claimed.request,
            deadline=time.monotonic() + timeout,
            headers={**claimed.request.headers, "idempotency-key": claimed.id},
        )
        try:
            async with asyncio.timeout(timeout):
                response = await adapter.handle(request)
        except TimeoutError:
            error: UpstreamError = UpstreamTimeout(f"no answer within {timeout:.3g}s")
            return Outcome(delivered=False, retry=True, code=error.code, detail=error.detail)
        except UpstreamError as error:
            return Outcome(delivered=False, retry=True, code=error.code, detail=error.detail)
        except RequestRejected as rejected:
            return Outcome(delivered=False, retry=False, code=rejected.code, detail=rejected.detail)
        if response.status >= 500:
            return Outcome(
                delivered=False, retry=True, code="upstream_error", status=response.status,
                detail=f"upstream answered HTTP {response.status}", response=response,
            )  # fmt: skip
        if response.status >= 400:
            return Outcome(
                delivered=False, retry=False, code="upstream_refused", status=response.status,
                detail=f"upstream refused the message with HTTP {response.status}",
                response=response,
            )  # fmt: skip
        return Outcome(
            delivered=True, retry=False, code="delivered", status=response.status, response=response
        )

    async def close(self, grace: float = 5.0) -> None:
        """Claim nothing more, let attempts under way finish for ``grace`` seconds, then
        cut the rest short and release their leases: another worker takes them at once.
        What did finish is written and put on record before this returns."""
        if self._loop_task is not None:  # stopped between turns, not inside one's transaction
            self._stopping = True
            self.queue.arrived.set()
            await asyncio.wait([self._loop_task], timeout=grace)
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        batch, self._ended = self._ended, []
        try:
            self._written(batch, await self.queue.finish_many(self.worker_id, batch))
        except Exception:  # their leases expire; the upstream sees the same key again
            log.exception("delivery_flush_failed", messages=len(batch))
        await asyncio.gather(*self._records, return_exceptions=True)
        if self._active:
            try:
                released = await self.queue.release(self.worker_id, sorted(self._active))
                log.info("deliveries_released", messages=released)
            except Exception:  # the leases expire by themselves
                log.exception("delivery_release_failed")
