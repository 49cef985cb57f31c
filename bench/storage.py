"""What the message log costs and how fast the delivery queue drains, measured by hand.

Run it like ``run.py`` (not in CI): ``.venv/bin/python bench/storage.py [--quick]``.
It needs wrk and a PostgreSQL server (``LGSP_BENCH_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/test``; every run gets a database of its
own, dropped afterwards). Three parts:

    0  the writer alone: 50 tasks append 20,000 records (built as the pipeline
       builds them) to a MessageLog, on SQLite and on PostgreSQL; CPU of this
       process and its SQLite writer process per record. No HTTP, so it
       stays readable on a busy machine.
    1  throughput, message log ON vs OFF: the gateway on route /bench/mock (the
       request of run.py's scenario b: auth, schema, mock upstream), wrk with
       50 connections, on SQLite and on PostgreSQL, 3 interleaved off/on pairs each
       (medians reported). Floor: log on >= 90 % of off.
    2  queue drain: 5,000 messages put in the queue (DeliveryQueue.enqueue) of a
       fresh PostgreSQL database, delivered to a loopback upstream by ONE, then
       by TWO gateway processes. The upstream holds the first deliveries until
       every gateway has its share in flight, so the clock starts with all of
       them running; it stops at the last recorded delivery.

Results: tables on stdout and ``bench/results/storage.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import run
import servers
import sqlalchemy as sa
import uvicorn
import uvloop

from adapters.base import GatewayRequest
from gateway.config.model import DeliverySettings
from gateway.delivery import DeliveryQueue
from gateway.exchange import message_id
from gateway.messagelog import AuditRecord, MessageLog, sha256_hex
from gateway.store import Store, open_store
from gateway.store.tables import deliveries, delivery_attempts, message_log

CONFIG = run.BENCH / "storage.yaml"
RESULTS = run.BENCH / "results" / "storage.json"
POSTGRES = os.environ.get("LGSP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
LOG_FLOOR = 0.90  # log on / log off throughput (issue 12)
BUSY_MACHINE = 0.15  # cores used by processes we did not start: above this, warn
QUEUE_ROUTE, QUEUE_UPSTREAM, QUEUE_PATH = "bench-deliver", "bench-receiver", "/bench/deliver"
GATE_PATH = "/_gate"

T = TypeVar("T")


# ------------------------------------------------------------------ databases


def fresh_postgres() -> str:
    """A new empty database on the bench server; returns its URL."""
    name = f"lgsp_bench_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(POSTGRES, timeout=5)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        raise run.BenchError(f"PostgreSQL at {POSTGRES} is needed: {exc}") from None
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        connection = await asyncpg.connect(POSTGRES, timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


@contextlib.contextmanager
def database(backend: str, temp: Path) -> Iterator[str]:
    """A storage URL nobody has used: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{temp}/{uuid.uuid4().hex[:8]}.db"
        return
    url = fresh_postgres()
    try:
        yield url
    finally:
        drop_postgres(url)


def on_store(url: str, work: Callable[[Store], Awaitable[T]], *, migrate: bool = False) -> T:
    async def main() -> T:
        store = await open_store(url, str(run.BENCH), migrate=migrate)
        try:
            return await work(store)
        finally:
            await store.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as the gateway
        return runner.run(main())


async def count_records(store: Store) -> int:
    async with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(message_log)
        return int((await connection.execute(query)).scalar_one())


# ----------------------------------------------------------------- processes


def gateway_cli() -> str:
    python = Path(sys.executable)
    found = shutil.which("lgsp-gateway", path=str(python.parent)) or shutil.which("lgsp-gateway")
    if found is None:
        raise run.BenchError("lgsp-gateway not found; install the project (make install)")
    return found


def gateway_spec(name: str, port: int, env: dict[str, str], workers: int = 1) -> run.ServerSpec:
    argv = [gateway_cli(), "serve", "--config", str(CONFIG), "--host", run.HOST]
    argv += ["--workers", str(workers)] if workers > 1 else []
    return run.ServerSpec(name, [*argv, "--port", str(port)], port, "GET", "/health/live", env)


def upstream_spec(port: int) -> run.ServerSpec:
    argv = [sys.executable, str(Path(__file__).resolve()), "upstream", "--port", str(port)]
    return run.ServerSpec("upstream", argv, port, "GET", GATE_PATH)


def _processes() -> dict[int, tuple[str, int, int]]:
    """pid -> (command name, parent pid, CPU ticks so far), from /proc (Linux)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry)] = (name, int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


@contextlib.contextmanager
def bystanders(every: float = 1.0) -> Iterator[dict[str, float]]:
    """CPU (cores, averaged over the block) of processes this bench did not start.

    ``postgres``: the database server, part of what is measured. ``other``:
    anything else on the machine; more than a few per cent of a core means the
    figures of that run are disturbed (a shared 2-core machine). /proc is read
    every ``every`` seconds, so processes that come and go in between are seen.
    """
    out = {"postgres_cores": 0.0, "other_cores": 0.0}
    if not Path("/proc/stat").exists():
        yield out
        return
    initial = _processes()
    first = {pid: spent for pid, (_, _, spent) in initial.items()}
    last: dict[int, tuple[str, int, int]] = dict(initial)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            for pid, seen in _processes().items():
                first.setdefault(pid, 0)  # born during the block: all its CPU counts
                last[pid] = seen

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    try:
        yield out
    finally:
        done.set()
        sampler.join()
        for pid, seen in _processes().items():
            first.setdefault(pid, 0)
            last[pid] = seen
        elapsed = time.monotonic() - started
        ours = {os.getpid()}
        for _ in range(4):  # children, grandchildren, ...
            ours |= {pid for pid, (_, parent, _) in last.items() if parent in ours}
        ticks = os.sysconf("SC_CLK_TCK")
        for pid, (name, _, spent) in last.items():
            if pid not in ours:
                key = "postgres_cores" if name.startswith("postgres") else "other_cores"
                out[key] += (spent - first[pid]) / ticks / elapsed


# ---------------------------------------- part 0: the message log writer alone


IDS: dict[str, Callable[[float], str]] = {
    "random": lambda now: uuid.uuid4().hex,  # what message ids were before: the baseline
    "ordered": message_id,  # the gateway's: time first
}
"""How part 0 names its records' ``message_id`` (indexed in the log and the queue)."""


@dataclass
class WriterRun:
    backend: str
    ids: str
    existing: int
    """Records already in the log when the run started (an index grows with its table)."""
    records: int
    tasks: int
    records_per_s: float
    cpu_us_per_record: float
    """CPU of this process and its log writer per record built and committed:
    what the log costs the gateway per request, without HTTP and its noise."""
    loop_cpu_us_per_record: float
    """The event loop's thread alone: what the log takes from the requests' critical path."""


async def append_records(
    store: Store, records: int, tasks: int, ids: Callable[[float], str]
) -> tuple[float, float, float]:
    """``tasks`` concurrent appenders, each building and awaiting records like the pipeline's
    ``record`` step; returns (process CPU seconds, loop thread CPU seconds, wall seconds)."""
    log = MessageLog(store)
    await log.start()
    body, answer = run.BODY.encode(), servers.UPSTREAM_BODY

    async def appender(task: int) -> None:
        for n in range(records // tasks):
            now = time.time()
            await log.append(
                AuditRecord(
                    message_id=ids(now),
                    request_id=f"bench-{task}-{n}",
                    client="bench",
                    route="bench-mock",
                    upstream="bench-mock",
                    operation="lookup",
                    method="POST",
                    path="/bench/mock",
                    t_request_in=now,
                    t_response_out=now,
                    bytes_in=len(body),
                    bytes_out=len(answer),
                    status=200,
                    request_sha256=sha256_hex(body),
                    response_sha256=sha256_hex(answer),
                )
            )

    cpu, loop, wall = own_and_children_cpu(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(appender(task) for task in range(tasks)))
    loop, wall = time.thread_time() - loop, time.perf_counter() - wall
    await log.close()  # a writer process's CPU is counted once it has exited
    return own_and_children_cpu() - cpu, loop, wall


def own_and_children_cpu() -> float:
    """CPU seconds of this process and of its children that have exited (the log writer's)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


async def prefill(store: Store, count: int, ids: Callable[[float], str]) -> None:
    """``count`` records of another chain, a day old, as if the log had been running."""
    start = time.time() - 86_400
    columns = {"kind": "exchange", "method": "POST", "path": "/bench/mock", "bytes_in": 31}
    columns |= {"bytes_out": 74, "status": 200, "request_sha256": "0" * 64}
    columns |= {"response_sha256": "0" * 64, "prev_hash": "0" * 64, "hash": "0" * 64}
    async with store.engine.begin() as connection:
        for first in range(0, count, 5000):
            rows = []
            for seq in range(first + 1, min(count, first + 5000) + 1):
                now = start + seq * 0.01
                rows.append(
                    {
                        **columns,
                        "log_id": "prefill",
                        "seq": seq,
                        "message_id": ids(now),
                        "request_id": f"prefill-{seq}",
                        "t_request_in": now,
                        "t_response_out": now,
                    }
                )
            await connection.execute(message_log.insert(), rows)


def measure_writer(
    backend: str, kind: str, existing: int, records: int, tasks: int, temp: Path
) -> WriterRun:
    async def work(store: Store) -> tuple[float, float, float]:
        if existing:
            await prefill(store, existing, IDS[kind])
        return await append_records(store, records, tasks, IDS[kind])

    with database(backend, temp) as url:
        cpu, loop, wall = on_store(url, work, migrate=True)
    done = records // tasks * tasks
    per = 1e6 / done
    return WriterRun(backend, kind, existing, done, tasks, done / wall, cpu * per, loop * per)


def print_writer_report(runs: list[WriterRun]) -> None:
    header = (
        f"{'backend':<11} {'ids':<8} {'existing':>9} {'records':>8} {'tasks':>5} {'records/s':>10} "
        f"{'CPU us/record':>13} {'loop CPU us/record':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r.backend:<11} {r.ids:<8} {r.existing:>9,} {r.records:>8,} {r.tasks:>5} "
            f"{r.records_per_s:>10,.0f} "
            f"{r.cpu_us_per_record:>13.1f} {r.loop_cpu_us_per_record:>18.1f}"
        )
    medians: dict[tuple[str, str], float] = {}
    for backend, kind in dict.fromkeys((r.backend, r.ids) for r in runs):
        mine = [r for r in runs if (r.backend, r.ids) == (backend, kind)]
        cpu = medians[backend, kind] = statistics.median(r.cpu_us_per_record for r in mine)
        loop = statistics.median(r.loop_cpu_us_per_record for r in mine)
        print(
            f"{backend:<11} {kind:<8} medians per record: CPU {cpu:.1f} us, "
            f"of which the loop {loop:.1f} us"
        )
    for backend in dict.fromkeys(r.backend for r in runs):
        if (backend, "random") in medians and (backend, "ordered") in medians:
            ratio = medians[backend, "ordered"] / medians[backend, "random"]
            print(f"{backend:<11} CPU per record, time-ordered ids / random ids: {ratio:.2f}")


# ------------------------------------------------ part 1: message log on / off


@dataclass
class LogRun:
    backend: str
    message_log: bool
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float | None
    requests: int
    non_2xx: int
    records: int
    """Message log rows written during the run (warm-up and check request included)."""
    postgres_cores: float
    other_cores: float


def measure_log(
    backend: str, enabled: bool, wrk: str, script: Path, temp: Path, settings: run.Settings
) -> LogRun:
    (port,) = run.free_ports(1)
    with database(backend, temp) as url:
        env = {"BENCH_STORAGE_URL": url, "BENCH_MESSAGE_LOG": "true" if enabled else "false"}
        name = f"gateway-{backend}-log-{'on' if enabled else 'off'}"
        scenario = run.Scenario(
            key=name,
            label=name,
            servers=[gateway_spec(name, port, env)],
            port=port,
            path="/bench/mock",
            expect='"ho_va_ten"',
        )
        with bystanders() as load:
            result = run.measure(scenario, wrk, script, temp, settings)
        records = on_store(url, count_records)
    return LogRun(
        backend=backend,
        message_log=enabled,
        requests_per_s=result.requests_per_s,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_us_per_request=result.cpu_us_per_request,
        requests=result.requests,
        non_2xx=result.non_2xx,
        records=records,
        **load,
    )


def log_part(
    wrk: str, temp: Path, settings: run.Settings, repeat: int, backends: Sequence[str]
) -> list[LogRun]:
    script = temp / "post.lua"
    script.write_text(run.lua_script(), encoding="utf-8")
    runs = []
    for backend in backends:
        for round_ in range(repeat):
            for enabled in (False, True):  # interleaved, so drift hits both alike
                print(
                    f"bench: {backend}, message log {'on' if enabled else 'off'} "
                    f"(round {round_ + 1}/{repeat}) ...",
                    file=sys.stderr,
                )
                runs.append(measure_log(backend, enabled, wrk, script, temp, settings))
                time.sleep(1.0)
    return runs


def log_ratios(runs: list[LogRun]) -> dict[str, dict[str, Any]]:
    """Per backend: median requests/s and CPU µs/request with the log off and on, on/off of
    the medians, and on/off of each interleaved pair (how stable the ratio is)."""
    out: dict[str, dict[str, Any]] = {}
    for backend in dict.fromkeys(r.backend for r in runs):
        off = [r for r in runs if r.backend == backend and not r.message_log]
        on = [r for r in runs if r.backend == backend and r.message_log]
        off_rate = statistics.median(r.requests_per_s for r in off)
        on_rate = statistics.median(r.requests_per_s for r in on)
        out[backend] = {
            "off_requests_per_s": off_rate,
            "on_requests_per_s": on_rate,
            "on_over_off": on_rate / off_rate,
            "pairs": [b.requests_per_s / a.requests_per_s for a, b in zip(off, on, strict=True)],
            "off_cpu_us": _median_cpu(off),
            "on_cpu_us": _median_cpu(on),
        }
    return out


def _median_cpu(runs: list[LogRun]) -> float | None:
    spent = [r.cpu_us_per_request for r in runs if r.cpu_us_per_request is not None]
    return statistics.median(spent) if spent else None


def print_log_report(runs: list[LogRun], ratio: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'backend':<11} {'log':<4} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU us/req':>10} {'requests':>9} {'log rows':>9} {'PG cores':>8} {'others':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        cpu = "-" if r.cpu_us_per_request is None else f"{r.cpu_us_per_request:.0f}"
        print(
            f"{r.backend:<11} {'on' if r.message_log else 'off':<4} {r.requests_per_s:>10,.0f} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {cpu:>10} {r.requests:>9,} {r.records:>9,} "
            f"{r.postgres_cores:>8.2f} {r.other_cores:>6.2f}"
        )
    print()
    for backend, values in ratio.items():
        verdict = "OK" if values["on_over_off"] >= LOG_FLOOR else "BELOW THE FLOOR"
        pairs = " ".join(f"{p:.0%}" for p in values["pairs"])
        cpu = ""
        if values["off_cpu_us"] is not None and values["on_cpu_us"] is not None:
            cpu = f"; CPU {values['on_cpu_us']:.0f} / {values['off_cpu_us']:.0f} us/request"
        print(
            f"{backend:<11} log on / off: {values['on_over_off']:6.1%}  "
            f"({values['on_requests_per_s']:,.0f} / {values['off_requests_per_s']:,.0f} req/s, "
            f"medians; pairs {pairs}{cpu}; floor {LOG_FLOOR:.0%}: {verdict})"
        )
    for r in runs:
        if r.non_2xx:
            print(f"WARNING {r.backend} log {r.message_log}: {r.non_2xx} non-2xx responses")
        if r.other_cores > BUSY_MACHINE:
            print(
                f"WARNING {r.backend} log {'on' if r.message_log else 'off'}: other processes "
                f"used {r.other_cores:.2f} cores during the run; its figures are disturbed"
            )


# --------------------------------------------------------- part 2: queue drain


async def fill_queue(store: Store, count: int) -> list[str]:
    """``count`` messages for /bench/deliver, queued as the pipeline queues them."""
    queue = DeliveryQueue(store, DeliverySettings())
    ids = [uuid.uuid4().hex for _ in range(count)]
    body = run.BODY.encode()

    async def one(index: int) -> None:
        request = GatewayRequest(
            operation="/deliver",
            method="POST",
            path=QUEUE_PATH,
            body=body,
            content_type="application/json",
            headers={"content-type": "application/json", "x-request-id": f"bench-{index}"},
            request_id=f"bench-{index}",
            client_id="bench",
            route_id=QUEUE_ROUTE,
        )
        await queue.enqueue(
            ids[index], client="bench", route=QUEUE_ROUTE, upstream=QUEUE_UPSTREAM, request=request
        )

    for start in range(0, count, 50):
        await asyncio.gather(*(one(i) for i in range(start, min(start + 50, count))))
    return ids


async def drain_report(store: Store) -> dict[str, Any]:
    async with store.engine.connect() as connection:
        states = dict(
            (
                await connection.execute(
                    sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
                )
            ).all()
        )
        workers = dict(
            (
                await connection.execute(
                    sa.select(delivery_attempts.c.worker, sa.func.count()).group_by(
                        delivery_attempts.c.worker
                    )
                )
            ).all()
        )
        last = (
            await connection.execute(sa.select(sa.func.max(delivery_attempts.c.finished_at)))
        ).scalar()
        most = (await connection.execute(sa.select(sa.func.max(deliveries.c.attempts)))).scalar()
        records = int(
            (
                await connection.execute(
                    sa.select(sa.func.count())
                    .select_from(message_log)
                    .where(message_log.c.kind == "delivery")
                )
            ).scalar_one()
        )
    return {
        "states": {str(k): int(v) for k, v in states.items()},
        "per_worker": sorted(int(v) for v in workers.values()),
        "last_finished_at": float(last or 0.0),
        "most_attempts": int(most or 0),
        "delivery_records": records,
    }


def gate(port: int, action: str = "") -> dict[str, Any]:
    connection = http.client.HTTPConnection(run.HOST, port, timeout=5)
    try:
        connection.request(
            "POST" if action else "GET", GATE_PATH + (f"/{action}" if action else "")
        )
        answer: dict[str, Any] = json.loads(connection.getresponse().read())
        return answer
    finally:
        connection.close()


@dataclass
class DrainRun:
    gateways: int
    mode: str
    """``workers``: one ``serve --workers N``; ``processes``: N ``serve`` (replicas)."""
    concurrency: int
    messages: int
    seconds: float
    messages_per_s: float
    gateway_cpu_ms_per_message: float | None
    upstream_cpu_ms_per_message: float | None
    """The loopback upstream's CPU: on two cores, taken from what the gateways could use."""
    per_worker: list[int]
    upstream_requests: int
    upstream_distinct: int
    most_attempts: int
    delivery_records: int
    postgres_cores: float
    other_cores: float


def measure_drain(
    gateways: int, messages: int, concurrency: int, temp: Path, *, workers: bool
) -> DrainRun:
    """``gateways`` processes drain the queue: ``serve --workers N`` if ``workers``, else N
    separate ``serve`` processes (replicas)."""
    servers = 1 if workers else gateways
    ports = run.free_ports(servers + 1)
    upstream_port, gateway_ports = ports[0], ports[1:]
    with database("postgresql", temp) as url, contextlib.ExitStack() as stack:
        print(f"bench: queueing {messages:,} messages ...", file=sys.stderr)
        ids = on_store(url, lambda store: fill_queue(store, messages), migrate=True)
        upstream = stack.enter_context(run.running(upstream_spec(upstream_port), temp))
        env = {
            "BENCH_STORAGE_URL": url,
            "BENCH_UPSTREAM_PORT": str(upstream_port),
            "BENCH_DELIVERY_CONCURRENCY": str(concurrency),
        }
        each = gateways if workers else 1
        processes = [
            stack.enter_context(run.running(gateway_spec(f"gateway-{i}", port, env, each), temp))
            for i, port in enumerate(gateway_ports, 1)
        ]
        deadline = time.monotonic() + 30
        while gate(upstream_port)["held"] < gateways * concurrency:  # every gateway at work
            if time.monotonic() > deadline:
                raise run.BenchError(f"gateways did not claim: {gate(upstream_port)}")
            time.sleep(0.05)
        table = run.process_table()
        cpu_before = [run.tree_cpu(p.pid, table) for p in [upstream, *processes]]
        watch = stack.enter_context(bystanders())
        opened = time.time()
        gate(upstream_port, "open")
        deadline = time.monotonic() + 600
        while gate(upstream_port)["distinct"] < messages:
            if time.monotonic() > deadline:
                raise run.BenchError(f"queue not drained in 600 s: {gate(upstream_port)}")
            time.sleep(0.1)
        while True:  # the upstream has them all; wait for the last states to be written
            report = on_store(url, drain_report)
            if report["states"].get("delivered", 0) == messages:
                break
            if time.monotonic() > deadline:
                raise run.BenchError(f"deliveries not recorded: {report['states']}")
            time.sleep(0.1)
        table = run.process_table()
        cpu_after = [run.tree_cpu(p.pid, table) for p in [upstream, *processes]]
        stats = gate(upstream_port)
    seconds = report["last_finished_at"] - opened
    cpu: list[float | None] = [
        run.cpu_spent(before, after) / messages * 1000 if p.pid in after else None  # alive
        for p, before, after in zip([upstream, *processes], cpu_before, cpu_after, strict=True)
    ]
    alive = [spent for spent in cpu[1:] if spent is not None]
    if stats["requests"] != messages or stats["distinct"] != messages or stats["missing"]:
        raise run.BenchError(f"not exactly once: upstream saw {stats}, expected {messages}")
    if set(stats["sample"]) - set(ids):
        raise run.BenchError("the upstream received keys that were never queued")
    return DrainRun(
        gateways=gateways,
        mode="workers" if workers and gateways > 1 else "processes",
        concurrency=concurrency,
        messages=messages,
        seconds=seconds,
        messages_per_s=messages / seconds,
        gateway_cpu_ms_per_message=sum(alive) if len(alive) == len(processes) else None,
        upstream_cpu_ms_per_message=cpu[0],
        per_worker=report["per_worker"],
        upstream_requests=stats["requests"],
        upstream_distinct=stats["distinct"],
        most_attempts=report["most_attempts"],
        delivery_records=report["delivery_records"],
        **watch,
    )


def drain_medians(runs: list[DrainRun]) -> dict[int, dict[str, float]]:
    """Per number of processes: the median msg/s and CPU per message of its runs."""
    medians = {}
    for gateways in sorted({r.gateways for r in runs}):
        mine = [r for r in runs if r.gateways == gateways]
        cpu = [r.gateway_cpu_ms_per_message for r in mine if r.gateway_cpu_ms_per_message]
        medians[gateways] = {
            "runs": float(len(mine)),
            "messages_per_s": statistics.median(r.messages_per_s for r in mine),
            "gateway_cpu_ms_per_message": statistics.median(cpu) if cpu else float("nan"),
        }
    return medians


def print_drain_report(runs: list[DrainRun]) -> None:
    header = (
        f"{'gateways':>8} {'as':>9} {'concurrency':>11} {'messages':>8} {'seconds':>7} "
        f"{'msg/s':>7} {'gw CPU ms/msg':>13} {'up CPU ms/msg':>13} {'PG cores':>8} {'others':>6}  "
        "delivered per process"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        cpu, up = (
            "-" if ms is None else f"{ms:.2f}"
            for ms in (r.gateway_cpu_ms_per_message, r.upstream_cpu_ms_per_message)
        )
        print(
            f"{r.gateways:>8} {r.mode:>9} {r.concurrency:>11} {r.messages:>8,} {r.seconds:>7.2f} "
            f"{r.messages_per_s:>7,.0f} {cpu:>13} {up:>13} {r.postgres_cores:>8.2f} "
            f"{r.other_cores:>6.2f}  "
            f"{', '.join(map(str, r.per_worker))}"
        )
    medians = drain_medians(runs)
    print()
    for gateways, median in sorted(medians.items()):
        print(
            f"median of {median['runs']:.0f} with {gateways} process(es): "
            f"{median['messages_per_s']:,.0f} msg/s, "
            f"{median['gateway_cpu_ms_per_message']:.2f} ms gateway CPU per message"
        )
    if 1 in medians and 2 in medians:
        scale = medians[2]["messages_per_s"] / medians[1]["messages_per_s"]
        print(f"two processes / one (medians): {scale:.2f}x")
    print("every run: upstream requests == distinct keys == messages (exactly once)")


# ------------------------------------------------------- the loopback upstream


class GatedUpstream:
    """Counts requests and distinct Idempotency-Keys; holds requests until ``/_gate/open``."""

    def __init__(self) -> None:
        self.open = False
        self.requests = 0
        self.missing = 0
        self.held = 0
        self.keys: Counter[str] = Counter()
        self.opened = asyncio.Event()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await servers.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        path: str = scope["path"]
        if path.startswith(GATE_PATH):
            if path == f"{GATE_PATH}/open":
                self.open = True
                self.opened.set()
            body = json.dumps(
                {
                    "open": self.open,
                    "requests": self.requests,
                    "distinct": len(self.keys),
                    "repeated": sum(1 for n in self.keys.values() if n > 1),
                    "missing": self.missing,
                    "held": self.held,
                    "sample": list(self.keys)[:100],
                }
            ).encode()
            await self._answer(send, body)
            return
        self.requests += 1
        key = dict(scope["headers"]).get(b"idempotency-key")
        if key is None:
            self.missing += 1
        else:
            self.keys[key.decode()] += 1
        if not self.open:
            self.held += 1
            await self.opened.wait()
            self.held -= 1
        await self._answer(send, servers.UPSTREAM_BODY)

    @staticmethod
    async def _answer(send: Any, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def serve_upstream(port: int) -> None:
    """On the gateway's own HTTP/1.1 protocol, the cheapest server we have: on two cores, what
    the upstream spends is taken from the gateways being measured."""
    uvicorn.run(GatedUpstream(), host=run.HOST, port=port, **servers.edge_settings())


# ---------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command")
    upstream = sub.add_parser("upstream", help="(internal) run the gated loopback upstream")
    upstream.add_argument("--port", type=int, required=True)
    parser.add_argument("--only", choices=["writer", "log", "drain"], help="run one part only")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds (2)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="log off/on pairs per backend; drain runs (3)"
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="for parts 0 and 1")
    parser.add_argument("--messages", type=int, default=5000, help="queued for part 2 (5000)")
    parser.add_argument("--records", type=int, default=20000, help="for part 0 (20000)")
    parser.add_argument(
        "--existing", type=int, default=0, help="records in the log before part 0 starts (0)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="delivery.concurrency per process (32)"
    )
    parser.add_argument(
        "--two",
        choices=["workers", "processes"],
        default="workers",
        help="drain with two processes as `serve --workers 2` (default) or two `serve`s",
    )
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 pair, 1,000 messages")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeat, args.messages = 3, 1, 1, 1000
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "upstream":
        serve_upstream(args.port)
        return 0
    signal.signal(signal.SIGTERM, run.exit_on_sigterm)
    settings = run.Settings(args.duration, args.warmup, 2, args.connections)
    document: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {**asdict(settings), "repeat": args.repeat, "messages": args.messages},
    }
    writer_runs: list[WriterRun] = []
    log_runs: list[LogRun] = []
    drain_runs: list[DrainRun] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lgsp-bench-storage-") as name:
            temp = Path(name)
            backends = [b.strip() for b in args.backends.split(",") if b.strip()]
            if args.only in (None, "writer"):
                for backend in backends:
                    for round_ in range(args.repeat):
                        print(
                            f"bench: {backend} writer ({round_ + 1}/{args.repeat}) ...",
                            file=sys.stderr,
                        )
                        for kind in IDS:  # baseline and gateway, interleaved
                            writer_runs.append(
                                measure_writer(backend, kind, args.existing, args.records, 50, temp)
                            )
            if args.only in (None, "log"):
                wrk = run.ensure_wrk()
                document["versions"] = run.versions(wrk)
                log_runs = log_part(wrk, temp, settings, args.repeat, backends)
            if args.only in (None, "drain"):
                for turn in range(args.repeat):  # 1 then 2 processes, interleaved
                    for gateways in (1, 2):
                        print(
                            f"bench: queue drain with {gateways} gateway(s), "
                            f"run {turn + 1} of {args.repeat} ...",
                            file=sys.stderr,
                        )
                        drain_runs.append(
                            measure_drain(
                                gateways,
                                args.messages,
                                args.concurrency,
                                temp,
                                workers=args.two == "workers",
                            )
                        )
                        time.sleep(1.0)
    except run.BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        run.kill_all_started()
    if writer_runs:
        print_writer_report(writer_runs)
        document["writer"] = [asdict(r) for r in writer_runs]
        print()
    if log_runs:
        ratio = log_ratios(log_runs)
        print_log_report(log_runs, ratio)
        document["message_log"] = {
            "runs": [asdict(r) for r in log_runs],
            "ratios": ratio,
            "floor": LOG_FLOOR,
        }
        print()
    if drain_runs:
        print_drain_report(drain_runs)
        document["drain"] = {
            "runs": [asdict(r) for r in drain_runs],
            "medians": drain_medians(drain_runs),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {RESULTS.relative_to(run.ROOT)}", file=sys.stderr)
    return 1 if any(r.non_2xx for r in log_runs) else 0


if __name__ == "__main__":
    sys.exit(main())
