"""Throughput, latency and CPU per request of the gateway against baselines, measured with wrk.

Run by hand (not in CI): ``.venv/bin/python bench/run.py`` or ``make bench``.
Scenarios, one at a time, each with its own server process(es) on 127.0.0.1,
stopped before the next one starts:

    a   bare litestar app, POST /noop                       (framework baseline)
    b   gateway, mock upstream, message log off             (auth + schema + access log)
    c   loopback upstream (raw ASGI) measured directly      (upstream baseline)
    d   gateway forwarding to that upstream (type: http)    (c + the gateway hop)
    e   (b) with the message log on, SQLite in a temp dir   (the gateway's default)
    f   nginx proxy_pass to the upstream of (c)             (a proxy baseline for d)
    c2  (c) on the gateway's HTTP/1.1 protocol              (the server layer: c2/c)
    b2  (b) and d2 (d) with ``serve --workers 2``            (when the gateway has --workers)

Every scenario runs ``--repeat`` times (3), the order reversed every other round;
every figure is reported as its median and min-max over the rounds. Ratios are
taken within a round (neighbours in time), then their median is reported. Every
request is the same POST (JSON body and X-API-Key); only the path differs.
Results: tables on stdout and ``bench/results/latest.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
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
SCENARIOS = ("a", "b", "c", "d", "e", "f", "c2", "b2", "d2")  # every key, in round-1 order
WORKER_SCENARIOS = ("b2", "d2")
REPEAT = 3
BUSY_MACHINE = 0.15  # cores used by processes we did not start: above this, warn
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
    message_log: Path | None = None
    """The SQLite file of the gateway's message log, when it is on: checked after the run."""


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
    """CPU time of each server (its process and all its children) over the run, in % of one core."""
    wrk_output: str
    others_cores: float | None = None
    """Cores used meanwhile by processes other than the servers, wrk and this script."""
    log_records: int | None = None
    """Message log records after the run (check request and warm-up included), when on."""

    @property
    def cpu_us_per_request(self) -> float | None:
        """Server CPU time (all servers of the scenario) per request served, in microseconds."""
        if not self.server_cpu_percent or not self.requests_per_s:
            return None
        return sum(self.server_cpu_percent.values()) / 100 / self.requests_per_s * 1e6

    def cpu_us_of(self, server: str) -> float | None:
        """One server's CPU time per request served, in microseconds."""
        if server not in self.server_cpu_percent or not self.requests_per_s:
            return None
        return self.server_cpu_percent[server] / 100 / self.requests_per_s * 1e6


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
                f"{spec.name} not ready on {HOST}:{spec.port} after {START_TIMEOUT:.0f}s "
                f"(last answer: {status or 'none'})\n"
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


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def cpu_seconds(process: subprocess.Popen[bytes]) -> float | None:
    """User + system CPU time of a live process (Linux /proc); None elsewhere."""
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds so far) of every process (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone since listdir
            fields = stat.rsplit(")", 1)[1].split()
            table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return table


def descendants(root: int, parents: Mapping[int, int]) -> set[int]:
    """``root`` and every process below it: a server's worker processes count as the server."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree_cpu(root: int, table: Mapping[int, tuple[int, float]]) -> dict[int, float]:
    """CPU seconds so far of ``root`` and each of its descendants, by pid."""
    tree = descendants(root, {pid: parent for pid, (parent, _) in table.items()})
    return {pid: table[pid][1] for pid in tree if pid in table}


def cpu_spent(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds a process tree spent between two ``tree_cpu`` snapshots.

    A process born in between counts whole; one that exited in between is lost
    (its time went to a parent's cutime only once reaped, which we do not read).
    """
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores have been busy since boot (/proc/stat; steal excluded)."""
    try:
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in line.split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this script and its reaped children (wrk, once it has exited)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


# ------------------------------------------------------------- wrk, nginx


def _which(binary: str) -> str | None:
    """A program's path, also in the sbin directories (where Debian puts nginx)."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    return shutil.which(binary, path=path)


def ensure_tool(binary: str, package: str) -> str:
    """A program's path; installs its Debian package if missing (needs root and apt-get)."""
    found = _which(binary)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        sys.exit(f"bench: {binary} is not installed (Debian/Ubuntu: apt-get install {package})")
    print(f"bench: {binary} not found, installing {package} with apt-get ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL)
    found = _which(binary)
    if not found:
        sys.exit(f"bench: could not install {package} with apt-get; install it by hand and rerun")
    return found


def ensure_wrk() -> str:
    """wrk's path; installs the Debian package if missing."""
    return ensure_tool("wrk", "wrk")


def nginx_config(directory: Path, port: int, upstream_port: int, nginx_build: str) -> str:
    """Scenario (f): one nginx process, as the current user, files only under ``directory``.

    ``master_process off`` makes the process we start the one that serves (so its
    CPU is measured like a uvicorn worker's), the same as ``worker_processes 1``
    under a master. Keep-alive to the upstream, as the gateway's HTTP client has.
    ``user``: as root, temp dirs are not handed to nobody (ignored otherwise).
    ``nginx_build`` is ``nginx -V``'s output: temp paths of modules left out of
    the build (nginx-light has no uwsgi or scgi) are unknown directives.
    """
    temp_paths = ["client_body", "proxy"] + [
        module
        for module in ("fastcgi", "uwsgi", "scgi")
        if f"--without-http_{module}_module" not in nginx_build
    ]
    temp_lines = "".join(
        f"    {module}_temp_path {directory}/{module}_temp;\n" for module in temp_paths
    )
    return f"""daemon off;
master_process off;
user {getpass.getuser()};
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
{temp_lines}    upstream bench_upstream {{
        server {HOST}:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen {HOST}:{port};
        location = /bench/nginx {{
            proxy_pass http://bench_upstream/lookup;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


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


@dataclass(frozen=True)
class Tools:
    """Programs the selected scenarios need, found (or installed) once per run."""

    gateway_cli: str
    nginx: str | None
    nginx_build: str
    workers: bool
    """``lgsp-gateway serve`` has ``--workers``."""


def gateway_cli() -> str:
    python = Path(sys.executable)
    found = shutil.which("lgsp-gateway", path=str(python.parent)) or shutil.which("lgsp-gateway")
    if found is None:
        raise BenchError("lgsp-gateway not found; install the project (make install)")
    return found


def serve_has_workers(cli: str) -> bool:
    """Whether this gateway can run several worker processes (``serve --workers N``)."""
    done = subprocess.run([cli, "serve", "--help"], capture_output=True, text=True)
    return "--workers" in done.stdout


def find_tools(keys: Sequence[str]) -> Tools:
    cli = gateway_cli()
    nginx, build = None, ""
    if "f" in keys:
        nginx = ensure_tool("nginx", "nginx-light")
        build = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    return Tools(cli, nginx, build, serve_has_workers(cli))


LABELS = {
    "a": "bare litestar no-op",
    "b": "gateway, mock, log off",
    "c": "loopback upstream direct",
    "d": "gateway -> http upstream",
    "e": "gateway, mock, log on",
    "f": "nginx -> http upstream",
    "c2": "(c) on the gateway's protocol",
    "b2": "(b) with 2 workers",
    "d2": "(d) with 2 workers",
}


def scenarios(keys: Sequence[str], tools: Tools, temp: Path, round_: int) -> list[Scenario]:
    """The scenarios ``keys``, in that order, on fresh ports, with fresh databases."""
    python = sys.executable

    def database(key: str) -> Path:
        return temp / f"messages-{key}-{round_}.db"

    def gateway(key: str, port: int, upstream_port: int, workers: int = 1) -> ServerSpec:
        argv = [tools.gateway_cli, "serve", "--config", str(CONFIG), "--host", HOST]
        argv += ["--port", str(port)] + (["--workers", str(workers)] if workers > 1 else [])
        env = {
            "BENCH_UPSTREAM_PORT": str(upstream_port),
            # The only difference between (b) and (e): each run gets its own new database.
            "BENCH_STORAGE_URL": f"sqlite:///{database(key)}",
            "BENCH_MESSAGE_LOG": "true" if key == "e" else "false",
        }
        return ServerSpec("gateway", argv, port, "GET", "/health/live", env)

    def helper(kind: str, port: int) -> ServerSpec:
        argv = [python, str(SERVERS), kind, "--port", str(port)]
        return ServerSpec(kind, argv, port, "POST", "/noop" if kind == "noop" else "/")

    def nginx(port: int, upstream_port: int) -> ServerSpec:
        if tools.nginx is None:
            raise BenchError("scenario f needs nginx")
        directory = temp / f"nginx-{round_}"
        directory.mkdir(exist_ok=True)
        conf = directory / "nginx.conf"
        conf.write_text(nginx_config(directory, port, upstream_port, tools.nginx_build))
        errors = directory / "error.log"  # -e: also for what nginx logs before reading conf
        argv = [tools.nginx, "-p", str(directory), "-c", str(conf), "-e", str(errors)]
        return ServerSpec("nginx", argv, port, "POST", "/bench/nginx")

    def build(key: str) -> Scenario:
        port, upstream_port = free_ports(2)
        upstream, label = helper("upstream", upstream_port), LABELS[key]
        if key == "a":
            return Scenario(key, label, [helper("noop", port)], port, "/noop", '"ok"')
        if key == "c":
            return Scenario(key, label, [upstream], upstream_port, "/lookup", '"ton_tai"')
        if key == "c2":
            edged = helper("upstream-edge", port)
            return Scenario(key, label, [edged], port, "/lookup", '"ton_tai"')
        if key == "f":
            proxy = nginx(port, upstream_port)
            return Scenario(key, label, [upstream, proxy], port, "/bench/nginx", '"ton_tai"')
        front = gateway(key, port, upstream_port, workers=2 if key.endswith("2") else 1)
        if key.startswith("d"):
            return Scenario(key, label, [upstream, front], port, "/bench/http", '"ton_tai"')
        log = database(key) if key == "e" else None
        return Scenario(key, label, [front], port, "/bench/mock", '"ho_va_ten"', log)

    return [build(key) for key in keys]


def round_order(keys: Sequence[str], round_: int) -> list[str]:
    """Rounds 1, 3, ... forward, 2, 4, ... backward, so drift does not favour one scenario."""
    return list(keys) if round_ % 2 == 0 else list(reversed(keys))


def measure(scenario: Scenario, wrk: str, script: Path, logs: Path, settings: Settings) -> Result:
    url = f"http://{HOST}:{scenario.port}{scenario.path}"
    with contextlib.ExitStack() as stack:
        processes = {s.name: stack.enter_context(running(s, logs)) for s in scenario.servers}
        status, text = _http(scenario.port, "POST", scenario.path)
        if status != 200 or scenario.expect not in text:
            raise BenchError(f"{scenario.key}: POST {url} answered {status}: {text[:500]}")
        if settings.warmup:
            run_wrk(wrk, script, url, settings.warmup, settings)
        table = process_table()
        before = {name: tree_cpu(p.pid, table) for name, p in processes.items()}
        busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
        started = time.monotonic()
        output = run_wrk(wrk, script, url, settings.duration, settings)
        elapsed = time.monotonic() - started
        busy_after, own_after = machine_busy_seconds(), own_cpu_seconds()
        table = process_table()
        spent = {
            name: cpu_spent(before[name], tree_cpu(p.pid, table)) for name, p in processes.items()
        }
        for name, process in processes.items():
            if process.poll() is not None:
                raise BenchError(f"{name} died during the run (status {process.returncode})")
    figures = parse_wrk(output)
    records = None if scenario.message_log is None else count_records(scenario.message_log)
    if records is not None and records < figures["requests"]:
        raise BenchError(
            f"{scenario.key}: {records} log records for {figures['requests']} requests"
        )
    others = None
    if busy_before is not None and busy_after is not None and spent:
        ours = sum(spent.values()) + own_after - own_before
        others = round(max(0.0, busy_after - busy_before - ours) / elapsed, 2)
    return Result(
        key=scenario.key,
        label=scenario.label,
        url=url,
        server_cpu_percent={name: round(cpu / elapsed * 100, 1) for name, cpu in spent.items()},
        wrk_output=output,
        others_cores=others,
        log_records=records,
        **figures,
    )


def count_records(database: Path) -> int:
    """Rows of a SQLite message log (table ``message_log``, gateway/store/tables.py)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM message_log").fetchone()[0])
    except sqlite3.Error as exc:
        raise BenchError(f"cannot read the message log in {database}: {exc}") from None


# ------------------------------------------------------------------- figures

RATIOS = (  # (figure, numerator, denominator): requests/s of two scenarios in one round
    ("b/a", "b", "a"),
    ("e/a", "e", "a"),
    ("e/b", "e", "b"),
    ("d/f", "d", "f"),
    ("d/c", "d", "c"),
    ("c2/c", "c2", "c"),
    ("b2/b", "b2", "b"),
    ("d2/d", "d2", "d"),
)


def round_figures(results: Mapping[str, Result]) -> dict[str, float]:
    """Every figure of one round, by name: per scenario ``KEY.what``, ratios ``ratio.X/Y``."""
    figures: dict[str, float] = {}
    for key, r in results.items():
        figures[f"{key}.requests_per_s"] = r.requests_per_s
        figures[f"{key}.p50_ms"] = r.p50_ms
        figures[f"{key}.p99_ms"] = r.p99_ms
        figures[f"{key}.p99_over_p50"] = r.p99_ms / r.p50_ms
        if r.cpu_us_per_request is not None:
            figures[f"{key}.cpu_us"] = r.cpu_us_per_request
        for server in r.server_cpu_percent:
            figures[f"{key}.cpu_us.{server}"] = r.cpu_us_of(server) or 0.0
        if r.others_cores is not None:
            figures[f"{key}.others_cores"] = r.others_cores
    for name, top, bottom in RATIOS:
        if top in results and bottom in results:
            upper, lower = results[top], results[bottom]
            figures[f"ratio.{name}"] = upper.requests_per_s / lower.requests_per_s
            if upper.cpu_us_per_request is not None and lower.cpu_us_per_request:
                figures[f"ratio.{name}.cpu_us"] = (
                    upper.cpu_us_per_request / lower.cpu_us_per_request
                )
    return figures


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    runs: list[float]


def spread(values: Sequence[float]) -> Spread:
    """Median and min-max of one figure over the rounds."""
    if not values:
        raise ValueError("no values")
    return Spread(statistics.median(values), min(values), max(values), list(values))


def summarize(rounds: Sequence[Mapping[str, float]]) -> dict[str, Spread]:
    """Each figure across rounds (a figure missing from a round is left out of it)."""
    names = dict.fromkeys(name for figures in rounds for name in figures)
    return {name: spread([f[name] for f in rounds if name in f]) for name in names}


@dataclass(frozen=True)
class Floor:
    """One line of the issue's table: a figure's median must be at least (or at most) ``bound``."""

    text: str
    figure: str
    bound: float
    at_most: bool = False

    def verdict(self, measured: Spread | None) -> str:
        if measured is None:
            return "NOT RUN"
        met = measured.median <= self.bound if self.at_most else measured.median >= self.bound
        return "PASS" if met else "BELOW"


FLOORS = (
    Floor("gateway CPU per forwarded request, gateway only (d), us", "d.cpu_us.gateway", 300, True),
    Floor("forwarding throughput / nginx proxy_pass, (d)/(f)", "ratio.d/f", 0.06),
    Floor("mock route, message log on / bare litestar, (e)/(a)", "ratio.e/a", 0.60),
    Floor("mock route, message log off / bare litestar, (b)/(a)", "ratio.b/a", 0.75),
    Floor("p99/p50, mock route, log off (b)", "b.p99_over_p50", 3.0, True),
    Floor("p99/p50, mock route, log on (e)", "e.p99_over_p50", 3.0, True),
    Floor("p99/p50, forwarding route (d)", "d.p99_over_p50", 3.0, True),
)


def floor_rows(summary: Mapping[str, Spread]) -> list[dict[str, Any]]:
    """The floors table: each floor, what was measured (median, min, max) and the verdict."""
    rows = []
    for floor in FLOORS:
        measured = summary.get(floor.figure)
        rows.append(
            {
                "floor": floor.text,
                "figure": floor.figure,
                "bound": f"{'<=' if floor.at_most else '>='} {floor.bound:g}",
                "median": None if measured is None else measured.median,
                "min": None if measured is None else measured.low,
                "max": None if measured is None else measured.high,
                "verdict": floor.verdict(measured),
            }
        )
    return rows


# ------------------------------------------------------------------- report


def _spread_text(measured: Spread | None, digits: int, *, thousands: bool = False) -> str:
    if measured is None:
        return "-"
    form = f"{',' if thousands else ''}.{digits}f"
    text = format(measured.median, form)
    if len(measured.runs) > 1:
        text += f" ({format(measured.low, form)}-{format(measured.high, form)})"
    return text


def _median(measured: Spread | None) -> str:
    return "-" if measured is None else f"{measured.median:.2f}"


def print_report(
    runs: Mapping[str, list[Result]], summary: Mapping[str, Spread], out: IO[str]
) -> None:
    """Per scenario, then the ratios, then the floors; medians with min-max over the rounds."""
    header = (
        f"{'scenario':<28} {'requests/s':>24} {'p50 ms':>7} {'p99 ms':>7} {'p99/p50':>7} "
        f"{'CPU us/req':>15}  {'others':>6}  CPU us/req by server"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for key, results in runs.items():
        servers = dict.fromkeys(s for r in results for s in r.server_cpu_percent)
        by_server = ", ".join(
            f"{s} {_spread_text(summary.get(f'{key}.cpu_us.{s}'), 0)}" for s in servers
        )
        print(
            f"{f'({key}) {LABELS.get(key, results[0].label)}':<28} "
            f"{_spread_text(summary[f'{key}.requests_per_s'], 0, thousands=True):>24} "
            f"{summary[f'{key}.p50_ms'].median:>7.2f} {summary[f'{key}.p99_ms'].median:>7.2f} "
            f"{summary[f'{key}.p99_over_p50'].median:>7.2f} "
            f"{_spread_text(summary.get(f'{key}.cpu_us'), 0):>15}  "
            f"{_median(summary.get(f'{key}.others_cores')):>6}  {by_server}",
            file=out,
        )
    print(file=out)
    for name, _, _ in RATIOS:
        if f"ratio.{name}" in summary:
            line = f"({name}) throughput: {_spread_text(summary[f'ratio.{name}'], 3)}"
            if f"ratio.{name}.cpu_us" in summary:
                line += f"; CPU per request {_spread_text(summary[f'ratio.{name}.cpu_us'], 2)}"
            print(line, file=out)
    print(file=out)
    rows = floor_rows(summary)
    width = max(len(row["floor"]) for row in rows)
    print(f"{'floor':<{width}}  {'bound':>7}  {'median (min-max)':>24}  verdict", file=out)
    for row, floor in zip(rows, FLOORS, strict=True):
        digits = 0 if floor.figure.endswith("cpu_us.gateway") else 3 if floor.bound < 1 else 2
        text = _spread_text(summary.get(floor.figure), digits)
        print(f"{row['floor']:<{width}}  {row['bound']:>7}  {text:>24}  {row['verdict']}", file=out)
    for key, results in runs.items():
        for i, r in enumerate(results, 1):
            if r.non_2xx or any(r.socket_errors.values()):
                print(
                    f"WARNING ({key}, round {i}): {r.non_2xx} non-2xx responses, "
                    f"socket errors {r.socket_errors}",
                    file=out,
                )
    busy = [r.others_cores for rs in runs.values() for r in rs if r.others_cores is not None]
    if busy and max(busy) > BUSY_MACHINE:
        print(
            f"NOISE: other processes used {min(busy):.2f}-{max(busy):.2f} cores during the runs "
            f"(column 'others'); above {BUSY_MACHINE} the figures are disturbed",
            file=out,
        )


def versions(wrk: str, nginx: str | None = None) -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    for package in ("litestar", "uvicorn", "uvloop", "httptools", "httpx", "msgspec", "structlog"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    banner = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    found["wrk"] = (banner.stdout or banner.stderr).split("\n", 1)[0].strip()
    if nginx is not None:
        banner = subprocess.run([nginx, "-v"], capture_output=True, text=True)
        found["nginx"] = (banner.stderr or banner.stdout).strip()
    return found


def write_json(
    path: Path,
    settings: Settings,
    plan: Plan,
    runs: Mapping[str, list[Result]],
    summary: Mapping[str, Spread],
    found: dict[str, str],
    notes: list[str],
) -> None:
    document = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": {**asdict(settings), "repeat": plan.repeat},
        "order": [round_order(list(runs), i) for i in range(plan.repeat)],
        "request": {"method": "POST", "body": BODY, "headers": list(HEADERS)},
        "versions": found,
        "notes": notes,
        "scenarios": {
            key: [
                {**asdict(result), "cpu_us_per_request": result.cpu_us_per_request}
                for result in results
            ]
            for key, results in runs.items()
        },
        "figures": {name: asdict(measured) for name, measured in summary.items()},
        "floors": floor_rows(summary),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------- main


@dataclass(frozen=True)
class Plan:
    keys: list[str]
    """The scenarios to run, in first-round order."""
    repeat: int


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Plan]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per run, 1 s warm-up")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (2; 0: none)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--repeat", type=int, default=REPEAT, help=f"runs per scenario ({REPEAT})")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"scenarios to run ({','.join(SCENARIOS)})"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3, min(args.warmup, 1)
    if args.duration < 1 or args.warmup < 0 or args.threads < 1 or args.repeat < 1:
        parser.error("--duration, --threads and --repeat must be >= 1, --warmup >= 0")
    if args.connections < args.threads:
        parser.error("--connections must be >= --threads")
    keys = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in keys if key not in SCENARIOS]
    if unknown or not keys:
        parser.error(f"--only takes some of {','.join(SCENARIOS)}; got {args.only!r}")
    ordered = [key for key in SCENARIOS if key in keys]
    settings = Settings(args.duration, args.warmup, args.threads, args.connections)
    return settings, Plan(ordered, args.repeat)


def main(argv: Sequence[str] | None = None) -> int:
    settings, plan = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    wrk = ensure_wrk()
    try:
        tools = find_tools(plan.keys)
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    notes = [
        "servers run one process each (uvicorn: one worker; nginx: master_process off, "
        "worker_processes 1), except the gateway of b2/d2: its parent and 2 workers, CPU summed"
    ]
    if not tools.workers and any(key in WORKER_SCENARIOS for key in plan.keys):
        notes.append("lgsp-gateway serve has no --workers option: b2 and d2 skipped")
        plan = Plan([key for key in plan.keys if key not in WORKER_SCENARIOS], plan.repeat)
        print(f"bench: {notes[-1]}", file=sys.stderr)
        if not plan.keys:
            return 1
    print(
        f"bench: wrk {settings.threads} threads, {settings.connections} connections, "
        f"{settings.duration}s per run after {settings.warmup}s warm-up, "
        f"{plan.repeat} rounds of {' '.join(plan.keys)}; "
        f"{os.cpu_count()} CPUs (wrk shares them with the servers)",
        file=sys.stderr,
    )
    runs: dict[str, list[Result]] = {key: [] for key in plan.keys}
    rounds: list[dict[str, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lgsp-bench-") as temp:
            script = Path(temp) / "post.lua"
            script.write_text(lua_script(), encoding="utf-8")
            for round_ in range(plan.repeat):
                done: dict[str, Result] = {}
                for scenario in scenarios(
                    round_order(plan.keys, round_), tools, Path(temp), round_
                ):
                    print(
                        f"bench: round {round_ + 1}/{plan.repeat} ({scenario.key}) "
                        f"{scenario.label} ...",
                        file=sys.stderr,
                    )
                    done[scenario.key] = measure(scenario, wrk, script, Path(temp), settings)
                    runs[scenario.key].append(done[scenario.key])
                    time.sleep(1.0)  # let the previous server's sockets and CPU settle
                rounds.append(round_figures(done))
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all_started()
    summary = summarize(rounds)
    for note in notes:
        print(f"note: {note}")
    print_report(runs, summary, sys.stdout)
    write_json(RESULTS, settings, plan, runs, summary, versions(wrk, tools.nginx), notes)
    print(f"\nresults: {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    if any(r.non_2xx for results in runs.values() for r in results):
        print("bench: some responses were not 2xx; the figures are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
