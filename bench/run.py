"""Throughput and latency of the gateway against bare uvicorn/litestar, measured with wrk.

Run by hand (not in CI): ``.venv/bin/python bench/run.py`` or ``make bench``.
Four scenarios, one at a time, each with its own server process(es) on
127.0.0.1, stopped before the next one starts:

    a  bare litestar app, POST /noop                      (framework baseline)
    b  gateway, mock upstream with 0ms latency            (auth + schema + log)
    c  loopback upstream (raw ASGI) measured directly     (upstream baseline)
    d  gateway forwarding to that upstream (type: http)   (c + the gateway hop)

Every request is the same POST (JSON body and X-API-Key); only the path differs.
Results: a table on stdout and ``bench/results/latest.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"  # every server listens here and every request goes here, nowhere else
CONFIG = BENCH / "gateway.yaml"
SERVERS = BENCH / "servers.py"
RESULTS = BENCH / "results" / "latest.json"
API_KEY = "lgsp_bench_only_2026"  # bench-only; its hash is in bench/gateway.yaml
BODY = '{"so_dinh_danh":"001203012345"}'
HEADERS = {"Content-Type": "application/json", "X-API-Key": API_KEY}
THROUGHPUT_FLOOR = 0.50  # (b)/(a): the gateway keeps at least half the framework's rate
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")

_started: list[subprocess.Popen[bytes]] = []  # every process we start, killed at exit


class BenchError(RuntimeError):
    """A server did not start or did not answer as expected; the run is void."""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]
    port: int
    probe_method: str
    probe_path: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    servers: list[ServerSpec]
    port: int
    path: str
    expect: str
    """A substring the response body must contain (proof the full path was taken)."""


@dataclass
class Result:
    key: str
    label: str
    url: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    server_cpu_percent: dict[str, float]
    """CPU time of each server process over the run, in % of one core."""
    wrk_output: str

    @property
    def cpu_us_per_request(self) -> float | None:
        """Server CPU time (all its processes) per request served, in microseconds."""
        if not self.server_cpu_percent or not self.requests_per_s:
            return None
        return sum(self.server_cpu_percent.values()) / 100 / self.requests_per_s * 1e6


@dataclass(frozen=True)
class Settings:
    duration: int
    warmup: int
    threads: int
    connections: int


# ---------------------------------------------------------------- processes


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open while picking, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Our environment without proxies, so the gateway's httpx client stays on loopback."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = f"{HOST},localhost"
    env.update(extra)
    return env


def _http(
    port: int, method: str, path: str, *, timeout: float = 5.0, send_body: bool = True
) -> tuple[int, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        body = BODY.encode() if send_body else None
        connection.request(method, path, body=body, headers=HEADERS if send_body else {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


@contextlib.contextmanager
def running(spec: ServerSpec, logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start one server (stdout to /dev/null: that is the gateway's log), wait, stop it."""
    stderr_path = logs / f"{spec.name}.stderr"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            spec.argv,
            cwd=ROOT,
            env=child_env(spec.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # a Ctrl-C reaches us; we stop the server ourselves
        )
    _started.append(process)
    try:
        _wait_ready(spec, process, stderr_path)
        yield process
    finally:
        stop(process)


def _wait_ready(spec: ServerSpec, process: subprocess.Popen[bytes], stderr_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise BenchError(
                f"{spec.name} exited with status {process.returncode} before it was ready\n"
                f"command: {' '.join(spec.argv)}\n{_tail(stderr_path)}"
            )
        try:
            status, _ = _http(
                spec.port, spec.probe_method, spec.probe_path, timeout=2.0, send_body=False
            )
        except OSError:
            status = 0
        if 200 <= status < 500:
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"{spec.name} not ready on {HOST}:{spec.port} after {START_TIMEOUT:.0f}s\n"
                f"{_tail(stderr_path)}"
            )
        time.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text("utf-8", "replace").splitlines()[-lines:]
    return "stderr:\n  " + "\n  ".join(text) if text else "(no stderr output)"


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_all_started() -> None:
    for process in _started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def cpu_seconds(process: subprocess.Popen[bytes]) -> float | None:
    """User + system CPU time of a live process (Linux /proc); None elsewhere."""
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- wrk


def ensure_wrk() -> str:
    """wrk's path; installs the Debian package if missing (needs root and apt-get)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        sys.exit("bench: wrk is not installed; install it (Debian/Ubuntu: apt-get install wrk)")
    print("bench: wrk not found, installing it with apt-get ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: could not install wrk with apt-get; install it by hand and rerun")
    return found


def lua_script() -> str:
    """wrk's request: the same POST, body and headers for every scenario."""

    def quoted(text: str) -> str:
        return "[==[" + text + "]==]"

    lines = ['wrk.method = "POST"', f"wrk.body = {quoted(BODY)}"]
    lines += [f"wrk.headers[ {quoted(k)} ] = {quoted(v)}" for k, v in HEADERS.items()]
    return "\n".join(lines) + "\n"


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def _percentile(output: str, percent: int) -> float:
    found = re.search(rf"^\s*{percent}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    if found is None:
        raise BenchError(f"no {percent}% latency in wrk output:\n{output}")
    return _ms(found[1], found[2])


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms), totals and errors from ``wrk --latency`` output."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if rate is None or total is None:
        raise BenchError(f"cannot read wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    kinds = ("connect", "read", "write", "timeout")
    return {
        "requests_per_s": float(rate[1]),
        "p50_ms": _percentile(output, 50),
        "p99_ms": _percentile(output, 99),
        "requests": int(total[1]),
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": {k: int(errors[i + 1]) if errors else 0 for i, k in enumerate(kinds)},
    }


def run_wrk(wrk: str, script: Path, url: str, seconds: int, settings: Settings) -> str:
    if not url.startswith(f"http://{HOST}:"):
        raise BenchError(f"refusing to load anything but {HOST}: {url}")
    argv = [
        wrk,
        f"--threads={settings.threads}",
        f"--connections={settings.connections}",
        f"--duration={seconds}s",
        "--timeout=5s",
        "--latency",
        f"--script={script}",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0 or done.stderr.strip():  # a Lua error is only a line on stderr
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


# ---------------------------------------------------------------- scenarios


def scenarios() -> list[Scenario]:
    python = sys.executable
    gateway_cli = shutil.which("lgsp-gateway", path=str(Path(python).parent)) or shutil.which(
        "lgsp-gateway"
    )
    if gateway_cli is None:
        raise BenchError("lgsp-gateway not found; install the project (make install)")

    def gateway(name: str, port: int, upstream_port: int) -> ServerSpec:
        argv = [gateway_cli, "serve", "--config", str(CONFIG), "--host", HOST, "--port", str(port)]
        env = {"BENCH_UPSTREAM_PORT": str(upstream_port)}
        return ServerSpec(name, argv, port, "GET", "/health/live", env)

    def helper(kind: str, port: int) -> ServerSpec:
        argv = [python, str(SERVERS), kind, "--port", str(port)]
        return ServerSpec(kind, argv, port, "POST", "/noop" if kind == "noop" else "/")

    noop, gw_mock, upstream, gw_http = free_ports(4)
    return [
        Scenario("a", "bare litestar no-op", [helper("noop", noop)], noop, "/noop", '"ok"'),
        Scenario(
            "b",
            "gateway, mock upstream",
            [gateway("gateway-mock", gw_mock, upstream)],
            gw_mock,
            "/bench/mock",
            '"ho_va_ten"',
        ),
        Scenario(
            "c",
            "loopback upstream direct",
            [helper("upstream", upstream)],
            upstream,
            "/lookup",
            '"ton_tai"',
        ),
        Scenario(
            "d",
            "gateway -> http upstream",
            [helper("upstream", upstream), gateway("gateway-http", gw_http, upstream)],
            gw_http,
            "/bench/http",
            '"ton_tai"',
        ),
    ]


def measure(scenario: Scenario, wrk: str, script: Path, logs: Path, settings: Settings) -> Result:
    url = f"http://{HOST}:{scenario.port}{scenario.path}"
    with contextlib.ExitStack() as stack:
        processes = {s.name: stack.enter_context(running(s, logs)) for s in scenario.servers}
        status, text = _http(scenario.port, "POST", scenario.path)
        if status != 200 or scenario.expect not in text:
            raise BenchError(f"{scenario.key}: POST {url} answered {status}: {text[:500]}")
        if settings.warmup:
            run_wrk(wrk, script, url, settings.warmup, settings)
        before = {name: cpu_seconds(p) for name, p in processes.items()}
        started = time.monotonic()
        output = run_wrk(wrk, script, url, settings.duration, settings)
        elapsed = time.monotonic() - started
        cpu: dict[str, float] = {}
        for name, process in processes.items():
            start, end = before[name], cpu_seconds(process)
            if start is not None and end is not None:
                cpu[name] = round((end - start) / elapsed * 100, 1)
        for name, process in processes.items():
            if process.poll() is not None:
                raise BenchError(f"{name} died during the run (status {process.returncode})")
    return Result(
        key=scenario.key,
        label=scenario.label,
        url=url,
        server_cpu_percent=cpu,
        wrk_output=output,
        **parse_wrk(output),
    )


# ------------------------------------------------------------------- report


def ratios(results: dict[str, Result]) -> dict[str, float]:
    a, b, c, d = (results[k] for k in "abcd")
    return {
        "b_over_a_throughput": b.requests_per_s / a.requests_per_s,
        "d_over_c_throughput": d.requests_per_s / c.requests_per_s,
        "d_minus_c_p50_ms": d.p50_ms - c.p50_ms,
        "d_minus_c_p99_ms": d.p99_ms - c.p99_ms,
        "b_minus_a_p50_ms": b.p50_ms - a.p50_ms,
    }


def print_report(results: dict[str, Result], ratio: dict[str, float], out: IO[str]) -> None:
    header = (
        f"{'scenario':<30} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU us/req':>10}  server CPU % of one core"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in results.values():
        name = f"({r.key}) {r.label}"
        per_request = "-" if r.cpu_us_per_request is None else f"{r.cpu_us_per_request:.0f}"
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in r.server_cpu_percent.items()) or "-"
        print(
            f"{name:<30} {r.requests_per_s:>10,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{per_request:>10}  {cpu}",
            file=out,
        )
    verdict = "OK" if ratio["b_over_a_throughput"] >= THROUGHPUT_FLOOR else "BELOW THE FLOOR"
    print(file=out)
    print(
        f"(b)/(a) throughput: {ratio['b_over_a_throughput']:6.1%}   "
        f"(floor {THROUGHPUT_FLOOR:.0%}: {verdict})",
        file=out,
    )
    print(f"(d)/(c) throughput: {ratio['d_over_c_throughput']:6.1%}", file=out)
    print(
        f"latency the gateway adds, (d) - (c): p50 {ratio['d_minus_c_p50_ms']:+.2f} ms, "
        f"p99 {ratio['d_minus_c_p99_ms']:+.2f} ms",
        file=out,
    )
    problems = [r for r in results.values() if r.non_2xx or any(r.socket_errors.values())]
    for r in problems:
        print(
            f"WARNING ({r.key}): {r.non_2xx} non-2xx responses, socket errors {r.socket_errors}",
            file=out,
        )


def versions(wrk: str) -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    for package in ("litestar", "uvicorn", "uvloop", "httptools", "httpx", "msgspec", "structlog"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    banner = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    found["wrk"] = (banner.stdout or banner.stderr).split("\n", 1)[0].strip()
    return found


def write_json(
    path: Path,
    settings: Settings,
    results: dict[str, Result],
    ratio: dict[str, float],
    wrk: str,
) -> None:
    document = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": asdict(settings),
        "request": {"method": "POST", "body": BODY, "headers": list(HEADERS)},
        "versions": versions(wrk),
        "scenarios": {
            key: {**asdict(result), "cpu_us_per_request": result.cpu_us_per_request}
            for key, result in results.items()
        },
        "ratios": ratio,
        "floor": {
            "b_over_a_throughput": THROUGHPUT_FLOOR,
            "met": ratio["b_over_a_throughput"] >= THROUGHPUT_FLOOR,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario, 1 s warm-up")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (2; 0: none)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3, min(args.warmup, 1)
    if args.duration < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--duration and --threads must be >= 1, --warmup >= 0")
    if args.connections < args.threads:
        parser.error("--connections must be >= --threads")
    return Settings(args.duration, args.warmup, args.threads, args.connections)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    wrk = ensure_wrk()
    print(
        f"bench: wrk {settings.threads} threads, {settings.connections} connections, "
        f"{settings.duration}s per scenario after {settings.warmup}s warm-up; "
        f"{os.cpu_count()} CPUs (wrk shares them with the servers)",
        file=sys.stderr,
    )
    results: dict[str, Result] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="lgsp-bench-") as temp:
            script = Path(temp) / "post.lua"
            script.write_text(lua_script(), encoding="utf-8")
            for scenario in scenarios():
                print(f"bench: ({scenario.key}) {scenario.label} ...", file=sys.stderr)
                results[scenario.key] = measure(scenario, wrk, script, Path(temp), settings)
                time.sleep(1.0)  # let the previous server's sockets and CPU settle
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all_started()
    ratio = ratios(results)
    print_report(results, ratio, sys.stdout)
    write_json(RESULTS, settings, results, ratio, wrk)
    print(f"\nresults: {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    if any(r.non_2xx for r in results.values()):
        print("bench: some responses were not 2xx; the figures are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
