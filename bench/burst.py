"""A burst against a slow route: how long do clients wait, next to the route's timeout?

Run by hand (not in CI)::

    .venv/bin/python bench/burst.py                      # 2,000 requests, 200 at a time
    .venv/bin/python bench/burst.py --requests 500 --concurrency 100 --latency 2s

It starts ``lgsp-gateway serve --config bench/burst.yaml`` on a free port:
one route (timeout 10 s) in front of the in-process mock upstream, which
answers after ``--latency`` with unlimited concurrency, and the message log on
SQLite in a temporary directory. The client is plain asyncio sockets, one
keep-alive connection per worker (reopened when the gateway closes it), so
its own cost stays small on a shared machine. It prints, per status, how many
answers came and the client-side p50/p99/max, and how many clients waited
longer than the route's timeout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

from run import API_KEY, BODY, ROOT, BenchError, ServerSpec, free_ports, running

CONFIG = Path(__file__).resolve().parent / "burst.yaml"
PATH = "/bench/burst"
ROUTE_TIMEOUT = 10.0  # the route's `timeout` in burst.yaml
REQUEST = (
    f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    f"X-API-Key: {API_KEY}\r\nContent-Length: {len(BODY)}\r\n\r\n{BODY}"
).encode()


async def _one(
    port: int, conn: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]
) -> int:
    """One request on the worker's connection; returns the status (0: no answer)."""
    if conn[0] is None:
        conn[0] = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = conn[0]
    try:
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection" and b"close" in value.lower():
                close = True
        await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        status, close = 0, True
    if close:
        writer.close()
        conn[0] = None
    return status


async def burst(port: int, requests: int, concurrency: int) -> list[tuple[int, float]]:
    remaining = iter(range(requests))
    results: list[tuple[int, float]] = []

    async def worker() -> None:
        conn: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [None]
        for _ in remaining:
            started = time.perf_counter()
            status = await _one(port, conn)
            results.append((status, time.perf_counter() - started))
        if conn[0] is not None:
            conn[0][1].close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: list[tuple[int, float]], elapsed: float) -> None:
    by_status: dict[int, list[float]] = collections.defaultdict(list)
    for status, waited in results:
        by_status[status].append(waited)
    waits = [waited for _, waited in results]
    print(f"{len(results)} requests in {elapsed:.1f} s; route timeout {ROUTE_TIMEOUT:.0f} s")
    print(f"{'status':>8} {'count':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7}")
    for status in sorted(by_status):
        values = by_status[status]
        print(
            f"{status or 'none':>8} {len(values):>6} {percentile(values, 0.5):>7.2f} "
            f"{percentile(values, 0.99):>7.2f} {max(values):>7.2f}"
        )
    print(
        f"{'all':>8} {len(waits):>6} {percentile(waits, 0.5):>7.2f} "
        f"{percentile(waits, 0.99):>7.2f} {max(waits):>7.2f}"
    )
    late = sum(1 for waited in waits if waited > ROUTE_TIMEOUT + 1)
    print(f"clients that waited over the route timeout + 1 s: {late}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency", default="1s", help="the mock upstream's answer time")
    args = parser.parse_args()
    (port,) = free_ports(1)
    serve = [sys.executable, "-m", "gateway", "serve", "--config", str(CONFIG)]
    with tempfile.TemporaryDirectory(prefix="lgsp-burst-") as tmp:
        spec = ServerSpec(
            name="gateway",
            argv=[*serve, "--port", str(port)],
            port=port,
            probe_method="GET",
            probe_path="/health/live",
            env={"BENCH_LATENCY": args.latency, "BENCH_DATA_DIR": tmp},
        )
        try:
            with running(spec, Path(tmp)):
                started = time.perf_counter()
                results = asyncio.run(burst(port, args.requests, args.concurrency))
                report(results, time.perf_counter() - started)
        except BenchError as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
