"""What a gateway process keeps across reloads: its database and the work on it.

Routes and adapters are per configuration (``gateway.runtime``) and change on
reload; the store, the message log writer, the delivery worker and the
idempotency keys belong to the process. Their settings (``storage``,
``message_log``, ``delivery``, ``idempotency``) are read once, at start.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from adapters.base import Adapter
from adapters.logs import get_logger
from adapters.units import seconds, size_bytes
from gateway import metrics
from gateway.catalogue.access import AccessAgreements
from gateway.config.loader import LoadedConfig
from gateway.delivery import Claimed, DeliveryQueue, DeliveryWorker, Outcome
from gateway.idempotency import IdempotencyStore
from gateway.messagelog import AuditRecord, MessageLog, default_log_id, purge
from gateway.store import Store, open_store

HOUSEKEEPING_SECONDS = 3600.0
GAUGES_SECONDS = 15.0
DELIVERY_DRAIN_SECONDS = 5.0
"""At shutdown, after the HTTP requests drained: the longest wait for delivery attempts under
way (at most ``server.shutdown_grace``) before the rest are cut short and released."""
"""How often the queue's depth and the inbound lag are read for ``/metrics``."""
UNRECORDED_GRACE_SECONDS = 60.0
"""A delivery ended this long ago without its record was not about to get it from a worker."""
log = get_logger(__name__)

Resolve = Callable[[str, str], tuple[Adapter, float] | None]


class Persistence:
    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        message_log: MessageLog | None,
        queue: DeliveryQueue,
        idempotency: IdempotencyStore,
        process_id: str,
    ) -> None:
        config = loaded.config
        self.process_id = process_id
        """This process among those sharing the database: its log chain, leases, claims."""
        self.config_dir = os.path.dirname(loaded.path)
        self.store = store
        self.message_log = message_log
        self.queue = queue
        self.idempotency = idempotency
        self.access = AccessAgreements(store, message_log)
        """Access requests and the approvals in force (cached briefly)."""
        self.personal_fields = frozenset(config.message_log.personal_fields)
        self.max_logged_body = size_bytes(config.message_log.max_body_size)
        self.retention = (
            seconds(config.message_log.retention) if config.message_log.retention else None
        )
        self.archive_dir = (
            os.path.join(self.config_dir, config.message_log.archive_dir)
            if config.message_log.archive_dir
            else None
        )
        self.keep_finished = seconds(config.delivery.keep_finished)
        self.background_lease = seconds(config.storage.background_lease)
        self.delivery_drain = min(seconds(config.server.shutdown_grace), DELIVERY_DRAIN_SECONDS)
        self.worker: DeliveryWorker | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, loaded: LoadedConfig, resolve: Resolve, serves: Callable[[str], bool]
    ) -> Persistence:
        config = loaded.config
        # The delivery worker writes in batches from one loop: the requests need the rest.
        store = await open_store(config.storage.url, os.path.dirname(loaded.path), pool_size=20)
        log_id = default_log_id()
        message_log = MessageLog(store, log_id) if config.message_log.enabled else None
        if message_log is not None:
            await message_log.start()
        persistence = cls(
            loaded,
            store,
            message_log,
            DeliveryQueue(store, config.delivery),
            IdempotencyStore(store, seconds(config.idempotency.ttl)),
            log_id,
        )
        persistence.worker = DeliveryWorker(
            persistence.queue, log_id, resolve, persistence._delivered, serves
        )
        persistence.worker.start()
        persistence._housekeeping = asyncio.create_task(persistence._housekeep())
        persistence._gauges = asyncio.create_task(persistence._watch_queue())
        return persistence

    async def _delivered(self, claimed: Claimed, outcome: Outcome, started: float) -> None:
        """The end of an async exchange (delivered, or given up) goes on record too."""
        if self.message_log is None:
            return
        request = claimed.request
        response = outcome.response
        body = response.body if response is not None else b""
        await self.message_log.append(
            AuditRecord.of_message(
                claimed.id,
                request,
                kind="delivery",
                client=request.client_id,
                route=claimed.route,
                upstream=claimed.upstream,
                t_request_in=claimed.created_at,
                t_upstream_out=started,
                status=outcome.status or 0,
                response=body,
                error_code=None if outcome.delivered else outcome.code,
            )
        )

    async def _record_unrecorded(self) -> None:
        """Put on record the deliveries a killed process finished but did not record."""
        if self.message_log is None:
            return
        ended = await self.queue.unrecorded(time.time() - UNRECORDED_GRACE_SECONDS)
        for claimed, outcome, started in ended:
            await self._delivered(claimed, outcome, started)
        if ended:
            log.warning("deliveries_recorded_late", messages=len(ended))

    async def _housekeep(self) -> None:
        while True:
            try:
                await self._record_unrecorded()
                if self.retention is not None:
                    purged = await purge(self.store, time.time() - self.retention, self.archive_dir)
                    if purged:
                        log.info("message_log_purged", records=purged)
                await self.idempotency.purge()
                finished = await self.queue.purge_finished(time.time() - self.keep_finished)
                if finished:
                    log.info("deliveries_purged", messages=finished)
            except Exception:
                log.exception("housekeeping_failed")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def read_gauges(self) -> None:
        """Put the queue's depth and the inbound lag, as the database has them now, in metrics."""
        metrics.queue_seen(*await self.queue.depth())

    async def _watch_queue(self) -> None:
        while True:
            try:
                await self.read_gauges()
            except Exception as exc:  # the database is down: other alarms say so
                log.warning("queue_gauges_failed", error=type(exc).__name__)
            await asyncio.sleep(GAUGES_SECONDS)

    async def close(self) -> None:
        for task in (self._housekeeping, self._gauges):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.worker is not None:
            await self.worker.close(self.delivery_drain)
        if self.message_log is not None:
            await self.message_log.close()
        await self.store.close()
