"""``serve --workers N`` and work done once per deployment, across real processes.

Several gateway processes share one port (``--workers``) or one database
(replicas); what must not multiply does not: the mock national systems start
once, a hosted adapter's poller runs in one process at a time and moves to
another when that one is killed, and every worker answers a reload and a stop.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

import schemas.edxml as edxml
from adapters.document_axis.mock import DEMO_CREDENTIALS
from adapters.document_axis.mock import create_app as create_axis
from tests.fixtures.edxml import samples
from tests.support.config import BASE_CONFIG, DEFAULT_CONFIG, write_config
from tests.support.document_axis import UBND, AgencySystem
from tests.support.processes import gateway_process
from tests.support.servers import free_port, serve_in_thread

pytestmark = pytest.mark.processes

MOTCUA_KEY = "lgsp_demo_motcua_2026"  # the demo config's public keys (README)
ADMIN_KEY = "lgsp_demo_admin_2026"


def wait_for(check: Callable[[], bool], timeout: float, what: str, *logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tails = "".join(
                f"\n--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:])
                for log in logs
                if log.exists()
            )
            raise AssertionError(f"not within {timeout:.0f}s: {what}{tails}")
        time.sleep(0.1)


def events(log: Path, name: str) -> list[dict[str, Any]]:
    """The log lines of event ``name`` (every line of the gateway's output is JSON)."""
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("event") == name:
            found.append(record)
    return found


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
        return [int(child) for child in handle.read().split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_two_workers_serve_one_port_with_the_mocks_once_and_all_reload_and_stop(
    tmp_path: Path,
) -> None:
    """The demo config (three mock national systems in-process) with ``--workers 2``."""
    log = tmp_path / "gateway.log"
    port = free_port()
    ports = {
        variable: str(free_port())
        for variable in ("LGSP_MOCK_DVCQG_PORT", "LGSP_MOCK_POPULATION_PORT", "LGSP_MOCK_AXIS_PORT")
    }
    env = {**ports, "LGSP_PORT": str(port), "LGSP_STORAGE_URL": f"sqlite:///{tmp_path}/gw.db"}
    with gateway_process(DEFAULT_CONFIG, port, env=env, log=log, args=["--workers", "2"]) as parent:
        # two workers and the mocks' process; the mocks bound their ports once
        wait_for(lambda: len(events(log, "Application startup complete.")) == 2, 20, "2 up", log)
        assert len(children(parent.pid)) == 3  # two workers, and the mocks' process
        workers = [pid for pid in children(parent.pid) if started_server(log, pid)]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(20):  # through the real adapter to the mock, on either worker
                answer = http.post(
                    "/v1/population/citizens/lookup",
                    json={"so_dinh_danh": "001203012345"},
                    headers={"X-API-Key": MOTCUA_KEY, "Connection": "close"},
                )
                assert answer.status_code == 200, answer.text
        wait_for(lambda: len(events(log, "lease_taken")) >= 1, 20, "the axis poller started", log)

        os.kill(parent.pid, signal.SIGHUP)
        wait_for(lambda: len(events(log, "config_reloaded")) == 2, 20, "both reloaded", log)
        asked = httpx.post(
            f"http://127.0.0.1:{port}/admin/reload", headers={"X-API-Key": ADMIN_KEY}, timeout=20
        )
        assert asked.status_code == 200, asked.text
        # the worker asked reloads, then both do (the supervisor's SIGHUP): 2 + 1 + 2
        wait_for(lambda: len(events(log, "config_reloaded")) == 5, 20, "all reloaded", log)

        os.kill(parent.pid, signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in workers)
    taken = events(log, "lease_taken")
    leases = sorted(record["lease"] for record in taken)  # each taken once, by one worker
    assert leases == [f"document-axis/document-axis-{work}" for work in ("poller", "retention")]
    assert not events(log, "worker_died")
    assert "address already in use" not in log.read_text().lower()
    assert len(workers) == 2, workers


def started_server(log: Path, pid: int) -> bool:
    """Whether process ``pid`` runs a uvicorn server (uvicorn names its pid)."""
    return bool(events(log, f"Started server process [{pid}]"))


POLLER_CONFIG = """
storage:
  url: "@DB@"
  background_lease: 1s
delivery: {poll_interval: 100ms, backoff: 100ms, max_backoff: 500ms, lease: 10s}
upstreams:
  axis:
    type: document_axis
    base_url: "@AXIS@"
    credentials: {system_id: lgsp-demo, secret: "${LGSP_AXIS_SECRET}"}
    agencies: {"000.00.11.H53": ubnd-qlvb}
    poll_interval: 100ms
    poll_timeout: 5s
  ubnd-qlvb: {type: http, base_url: "@UBND@"}
routes: []
"""


def poller_leases(log: Path) -> list[dict[str, Any]]:
    """The poller's leases taken in one process's log (the axis's retention has its own)."""
    return [e for e in events(log, "lease_taken") if e["lease"].endswith("-poller")]


def test_the_poller_runs_in_one_process_and_moves_when_it_is_killed(
    tmp_path: Path, database_url: str
) -> None:
    ubnd = AgencySystem()
    with ExitStack() as stack:
        axis = stack.enter_context(serve_in_thread(create_axis()))
        agency = stack.enter_context(serve_in_thread(ubnd))
        text = POLLER_CONFIG.replace("@DB@", database_url).replace("@AXIS@", axis)
        config = write_config(
            tmp_path,
            BASE_CONFIG + text.replace("{", "{{").replace("}", "}}").replace("@UBND@", agency),
        )
        env = {"LGSP_AXIS_SECRET": DEMO_CREDENTIALS["lgsp-demo"]}
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        replicas = [
            stack.enter_context(gateway_process(config, free_port(), env=env, log=log))
            for log in logs
        ]
        wait_for(lambda: sum(len(poller_leases(log)) for log in logs) == 1, 20, "a poller", *logs)
        time.sleep(1.5)  # more than a lease: the other process tried, and did not take it
        takers = [i for i, log in enumerate(logs) if poller_leases(log)]
        assert len(takers) == 1, "the poller runs in both processes"
        holder = takers[0]
        other = 1 - holder

        def drop(n: int) -> None:
            body = edxml.build_bytes(samples.document(From=samples.VPCP, To=[samples.UBND_TQ]))
            httpx.post(f"{axis}/__mock/inbox/{UBND}", content=body).raise_for_status()
            ubnd.wait(n)

        drop(1)
        replicas[holder].send_signal(signal.SIGKILL)
        replicas[holder].wait(timeout=10)
        wait_for(lambda: bool(poller_leases(logs[other])), 20, "takeover", *logs)
        drop(2)  # polled by the survivor
        assert replicas[other].poll() is None
    delivered = [item["headers"]["x-lgsp-edoc-id"] for item in ubnd.received]
    assert len(delivered) == len(set(delivered)) == 2
    assert len(poller_leases(logs[other])) == 1
