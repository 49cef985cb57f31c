"""Store-and-forward across real processes: kill -9 mid-delivery, two replicas on one database.

Every gateway here is a real ``lgsp-gateway serve`` process on loopback; the
upstream is a real HTTP server (``tests.support.upstreams``) that honours
``Idempotency-Key`` and counts what it receives. What is checked is what an
agency relies on: a message answered 202 reaches the national system, and
takes effect there once, whatever happens to the gateway in between.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from adapters.base import GatewayRequest
from gateway.config.model import DeliverySettings
from gateway.delivery import DeliveryQueue
from gateway.messagelog import verify_chains
from gateway.store import Store, open_store
from gateway.store.tables import deliveries, delivery_attempts, message_log
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.databases import create_database, drop_database
from tests.support.processes import gateway_process
from tests.support.servers import free_port, serve_in_thread
from tests.support.upstreams import RecordingUpstream

pytestmark = pytest.mark.processes  # gateway subprocesses, kill -9

T = TypeVar("T")
KEY = {"x-api-key": TEST_KEY}
ROUTE_PATH = "/v1/deliver"

CONFIG = """
storage:
  url: "{storage_url}"
delivery:
  lease: {lease}
  poll_interval: 100ms
  concurrency: {concurrency}
  backoff: 200ms
  max_backoff: 1s
upstreams:
  recorder:
    type: http
    base_url: "{upstream_url}"
routes:
  - id: deliver
    match:
      method: POST
      path: /v1/deliver
    clients: ["agency-a"]
    upstream: recorder
    operation: /receive
    delivery: async
    timeout: {timeout}
"""


def gateway_config(
    directory: Path,
    storage_url: str,
    upstream_url: str,
    *,
    lease: str,
    concurrency: int,
    timeout: str = "20s",
) -> Path:
    text = CONFIG.replace("{storage_url}", storage_url).replace("{upstream_url}", upstream_url)
    text = text.replace("{lease}", lease).replace("{concurrency}", str(concurrency))
    text = text.replace("{timeout}", timeout)
    return write_config(directory, BASE_CONFIG + text)


def on_store(url: str, base_dir: Path, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on the gateway's database, from the test's side."""

    async def main() -> T:
        store = await open_store(url, str(base_dir))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\ngateway log tail:\n" + "\n".join(log.read_text().splitlines()[-20:])
            raise AssertionError(f"not within {timeout:.0f}s: {what}{tail}")
        time.sleep(0.1)


@pytest.fixture
def upstream() -> Iterator[tuple[RecordingUpstream, str]]:
    app = RecordingUpstream()
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture
def postgres_database() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def post_messages(port: int, count: int) -> list[str]:
    """Send ``count`` messages to the async route; every one must be accepted (202)."""
    ids = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY, timeout=10) as http:
        for index in range(count):
            response = http.post(
                ROUTE_PATH, json={"ma_ho_so": f"000.00.11.H53-261122-{index:04d}", "so": index}
            )
            assert response.status_code == 202, response.text
            accepted = response.json()
            assert accepted["state"] == "queued"
            assert response.headers["location"] == accepted["status_url"]
            assert accepted["status_url"] == f"/v1/messages/{accepted['message_id']}"
            ids.append(accepted["message_id"])
    assert len(set(ids)) == count
    return ids


def statuses(port: int, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the sending client sees of each message (GET /v1/messages/{id})."""
    views = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY, timeout=10) as http:
        for message_id in ids:
            response = http.get(f"/v1/messages/{message_id}")
            assert response.status_code == 200, response.text
            views[message_id] = response.json()
    return views


async def log_evidence(store: Store) -> tuple[bool, int, dict[str, set[str]]]:
    """(every chain verifies, how many chains, message ids on record by kind)."""
    reports = await verify_chains(store)
    async with store.engine.connect() as connection:
        rows = (
            await connection.execute(sa.select(message_log.c.kind, message_log.c.message_id))
        ).all()
    by_kind: dict[str, set[str]] = {}
    for kind, message_id in rows:
        by_kind.setdefault(kind, set()).add(message_id)
    return all(r.ok for r in reports), len(reports), by_kind


# --- a. kill -9 mid-delivery ------------------------------------------------------------


def test_kill_9_mid_delivery_loses_nothing_and_upstream_sees_each_message_once(
    tmp_path: Path, database_url: str, upstream: tuple[RecordingUpstream, str]
) -> None:
    recorder, upstream_url = upstream
    concurrency, count = 4, 20
    config = gateway_config(
        # The lease is short so that the restart need not wait long; the route's
        # timeout must be shorter still (config rule), and the held deliveries must
        # not time out before the kill: 4 s is ample for that part.
        tmp_path,
        database_url,
        upstream_url,
        lease="5s",
        timeout="4s",
        concurrency=concurrency,
    )
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    recorder.mode = "hold"  # the upstream keeps what it gets: deliveries stay in flight
    port = free_port()
    with gateway_process(config, port, log=first_log) as first:
        ids = post_messages(port, count)
        wait_for(
            lambda: recorder.held() == concurrency,
            15,
            f"{concurrency} deliveries in flight",
            first_log,
        )
        before = statuses(port, ids)
        in_flight = {i for i, view in before.items() if view["state"] == "delivering"}
        _, received, _ = recorder.snapshot()
        assert set(received) == in_flight and len(in_flight) == concurrency
        assert Counter(view["state"] for view in before.values()) == {
            "delivering": concurrency,
            "queued": count - concurrency,
        }
        first.kill()  # SIGKILL: no shutdown, no lease released, connections cut
        assert first.wait(timeout=10) == -9

    port = free_port()
    with gateway_process(config, port, log=second_log):
        recorder.mode = "fast"
        wait_for(
            lambda: all(v["state"] == "delivered" for v in statuses(port, ids).values()),
            30,
            "every accepted message delivered after the restart",
            second_log,
        )
        after = statuses(port, ids)

    requests, received, effects = recorder.snapshot()
    assert set(received) == set(ids), "an accepted message never reached the upstream"
    assert effects == set(ids) and len(effects) == count, "the upstream's dedup by key"
    assert recorder.without_key == 0
    # Sent twice: exactly the deliveries the killed process had in flight (its lease
    # expired, the new process sent them again with the same Idempotency-Key).
    assert {key for key, times in received.items() if times > 1} == in_flight
    assert max(received.values()) == 2 and requests == count + concurrency
    assert recorder.replays == concurrency
    for message_id, view in after.items():
        assert view["attempts"] == (2 if message_id in in_flight else 1), view
        # 201 took effect, 200 was the replay: for a message sent twice, either copy
        # may reach the upstream first (both wait there while it holds).
        assert view["response"]["status"] in ((200, 201) if message_id in in_flight else (201,))

    ok, chains, by_kind = on_store(database_url, tmp_path, log_evidence)
    assert ok, "the message log does not verify after kill -9"
    assert chains == 2  # the killed process's chain and the new one's
    assert by_kind["accepted"] == set(ids)
    assert by_kind["delivery"] == set(ids)


# --- b. two replicas share one queue ----------------------------------------------------

REPLICA_CONCURRENCY = 16
QUEUED = 1000


async def fill_queue(store: Store, count: int) -> list[str]:
    """Queue ``count`` messages for the ``deliver`` route as the pipeline would."""
    queue = DeliveryQueue(store, DeliverySettings())
    ids = [uuid.uuid4().hex for _ in range(count)]

    async def one(index: int, message_id: str) -> None:
        body = msgspec.json.encode({"ma_ho_so": f"000.00.11.H53-261122-{index:04d}"})
        request = GatewayRequest(
            operation="/receive",
            method="POST",
            path=ROUTE_PATH,
            body=body,
            content_type="application/json",
            headers={"content-type": "application/json", "x-request-id": f"fill-{index}"},
            request_id=f"fill-{index}",
            client_id="agency-a",
            route_id="deliver",
        )
        await queue.enqueue(
            message_id, client="agency-a", route="deliver", upstream="recorder", request=request
        )

    for start in range(0, count, 20):
        await asyncio.gather(*(one(i, ids[i]) for i in range(start, min(start + 20, count))))
    return ids


async def delivery_report(store: Store) -> tuple[Counter[str], Counter[str], int, int]:
    """(deliveries by state, attempts by worker, attempts recorded, most attempts of one)."""
    c, a = deliveries.c, delivery_attempts.c
    async with store.engine.connect() as connection:
        by_state = await connection.execute(sa.select(c.state, sa.func.count()).group_by(c.state))
        states: Counter[str] = Counter({str(k): int(n) for k, n in by_state.all()})
        by_worker = await connection.execute(
            sa.select(a.worker, sa.func.count()).group_by(a.worker)
        )
        workers: Counter[str] = Counter({str(k): int(n) for k, n in by_worker.all()})
        total = await connection.execute(sa.select(sa.func.count()).select_from(delivery_attempts))
        most = await connection.execute(sa.select(sa.func.max(c.attempts)))
        return states, workers, int(total.scalar_one()), int(most.scalar() or 0)


def test_two_replicas_share_one_queue_without_duplicates(
    tmp_path: Path, postgres_database: str, upstream: tuple[RecordingUpstream, str]
) -> None:
    recorder, upstream_url = upstream
    config = gateway_config(
        tmp_path, postgres_database, upstream_url, lease="120s", concurrency=REPLICA_CONCURRENCY
    )
    ids = on_store(postgres_database, tmp_path, lambda store: fill_queue(store, QUEUED))
    logs = [tmp_path / "replica-a.log", tmp_path / "replica-b.log"]

    def delivered() -> bool:  # the upstream has them all (cheap to ask), and so says the database
        if len(recorder.snapshot()[2]) < QUEUED:
            return False
        states, *_ = on_store(postgres_database, tmp_path, delivery_report)
        return states["delivered"] == QUEUED

    recorder.mode = "hold"  # each replica takes its first share and waits: both are working
    with ExitStack() as stack:
        replicas: list[subprocess.Popen[bytes]] = [
            stack.enter_context(gateway_process(config, free_port(), log=log)) for log in logs
        ]
        wait_for(
            lambda: recorder.held() == 2 * REPLICA_CONCURRENCY,
            30,
            f"both replicas with {REPLICA_CONCURRENCY} deliveries in flight",
            logs[1],
        )
        started = time.monotonic()
        recorder.mode = "fast"
        wait_for(delivered, 60, f"all {QUEUED} messages delivered", logs[0])
        elapsed = time.monotonic() - started
        assert all(replica.poll() is None for replica in replicas)

    requests, received, effects = recorder.snapshot()
    assert set(received) == set(ids), "lost: queued but never sent"
    assert requests == QUEUED, f"{requests - QUEUED} duplicate sends"
    assert max(received.values()) == 1 and recorder.replays == 0
    assert effects == set(ids)

    states, workers, attempts, most = on_store(postgres_database, tmp_path, delivery_report)
    assert states == {"delivered": QUEUED}
    assert attempts == QUEUED and most == 1
    assert len(workers) == 2, f"not both replicas delivered: {dict(workers)}"
    assert all(n >= REPLICA_CONCURRENCY for n in workers.values()), dict(workers)
    ok, chains, by_kind = on_store(postgres_database, tmp_path, log_evidence)
    assert ok and chains == 2 and by_kind["delivery"] == set(ids)
    print(f"{QUEUED} deliveries by two replicas in {elapsed:.1f}s; per worker {dict(workers)}")
