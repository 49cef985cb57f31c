"""Operating a real ``lgsp-gateway serve`` process: its output, SIGTERM, metrics of several processes."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.config import BASE_CONFIG, DEFAULT_CONFIG, TEST_KEY, write_config
from tests.support.processes import gateway_process
from tests.support.servers import free_port, serve_in_thread
from tests.support.upstreams import RecordingUpstream
from tests.test_delivery_processes import wait_for

pytestmark = pytest.mark.processes
STOPPED = (0, -signal.SIGTERM)
"""uvicorn, once shut down gracefully, raises the signal it caught again (exit status 143)."""


def own_database(tmp_path: Path) -> dict[str, str]:
    """The default config on a database of the test's own: the session's, which every test of
    the default config writes to, grows large, and its first write could wait on another's
    lock (one such first request timed out once in CI)."""
    return {"LGSP_STORAGE_URL": f"sqlite:///{tmp_path}/gateway.db"}


def test_start_up_output_says_each_thing_once(tmp_path: Path) -> None:
    """The mock national systems run their own servers beside the gateway: none of their
    start/stop lines, and no handler of theirs, may repeat the gateway's lines."""
    log = tmp_path / "out.log"
    port = free_port()
    with gateway_process(DEFAULT_CONFIG, port, log=log, env=own_database(tmp_path)):
        httpx.get(f"http://127.0.0.1:{port}/health/live")
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # not a terminal: JSON, every line
    repeated = [line for line, count in Counter(lines).items() if count > 1]
    assert repeated == []
    assert sum(1 for e in events if str(e["event"]).startswith("Started server process")) == 1
    assert sum(1 for e in events if e["event"] == "Application startup complete.") == 1
    (started,) = [e for e in events if e["event"] == "gateway_started"]
    assert started["gateway"] == f"http://127.0.0.1:{port}"
    assert started["admin_console"].endswith("/admin/ui")
    assert set(started["mocks"]) == {"dvcqg", "population", "document-axis"}
    assert started["demo_keys"]["admin"] == "lgsp_demo_admin_2026"
    request_ids = [e["request_id"] for e in events if e["event"] == "request"]
    assert request_ids and len(set(request_ids)) == len(request_ids)


def test_console_format_is_one_readable_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    port = free_port()
    env = {"LGSP_LOG_FORMAT": "console", **own_database(tmp_path)}
    with gateway_process(DEFAULT_CONFIG, port, log=log, env=env):
        httpx.get(f"http://127.0.0.1:{port}/v1/dvcqg/fields", headers={"x-api-key": "nope"})
    text = log.read_text()
    assert "  LGSP gateway      http://127.0.0.1:" in text
    assert "Demo API keys" in text
    (line,) = [x for x in text.splitlines() if " GET /v1/dvcqg/fields " in x]
    assert " 401 " in line and "error_code=unauthenticated" in line and "request_id=" in line


def slow_config(tmp_path: Path, upstream: str, extra: str = "") -> Path:
    text = (
        BASE_CONFIG
        + """
server: {{shutdown_grace: GRACE}}
storage: {{url: "sqlite:///DIR/gw.db"}}
delivery: {{backoff: 100ms, poll_interval: 100ms}}
upstreams:
  slow: {{type: http, base_url: "UPSTREAM"}}
routes:
  - {{id: now, match: {{method: POST, path: /now}}, clients: [agency-a], upstream: slow,
      operation: "POST /in"}}
  - {{id: queued, match: {{method: POST, path: /queued}}, clients: [agency-a], upstream: slow,
      operation: "POST /in", delivery: async}}
"""
    )
    text = text.replace("DIR", str(tmp_path)).replace("UPSTREAM", upstream)
    return write_config(tmp_path, text.replace("GRACE", extra or "20s"))


def test_sigterm_stops_accepting_and_lets_requests_in_flight_finish(tmp_path: Path) -> None:
    recorder = RecordingUpstream()
    recorder.mode = "hold"  # the call stays in flight until the test lets it go
    port = free_port()
    answers: list[httpx.Response] = []

    def call() -> None:
        headers = {"x-api-key": TEST_KEY, "idempotency-key": "k-1"}
        url = f"http://127.0.0.1:{port}/now"
        answers.append(httpx.post(url, json={"a": 1}, headers=headers, timeout=30))

    with (
        serve_in_thread(recorder) as upstream,
        gateway_process(slow_config(tmp_path, upstream), port) as process,
    ):
        caller = threading.Thread(target=call)
        caller.start()
        wait_for(lambda: recorder.held() == 1, 10, "the call in flight")
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: not _accepting(port), 10, "the listener closed")
        recorder.mode = "fast"
        caller.join(timeout=30)
        assert process.wait(timeout=30) in STOPPED
    (answer,) = answers
    assert answer.status_code == 201 and answer.json()["received"] == "k-1"


def _accepting(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2)
    except httpx.TransportError:
        return False
    return True


def test_sigterm_releases_the_deliveries_it_cannot_finish(tmp_path: Path) -> None:
    recorder = RecordingUpstream()
    recorder.mode = "hold"  # the delivery stays in flight
    port = free_port()
    with serve_in_thread(recorder) as upstream:
        config = slow_config(tmp_path, upstream, "1s")
        with gateway_process(config, port) as process:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/queued", json={"a": 1}, headers={"x-api-key": TEST_KEY}
            )
            assert answer.status_code == 202
            wait_for(lambda: recorder.held() == 1, 10, "the delivery in flight")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) in STOPPED
        with sqlite3.connect(tmp_path / "gw.db") as db:
            state, leased_by, attempts = db.execute(
                "SELECT state, leased_by, attempts FROM deliveries"
            ).fetchone()
        assert (state, leased_by, attempts) == ("queued", None, 0)  # due now, for anyone
        recorder.mode = "fast"
        with gateway_process(config, port):  # no lease to wait out: delivered at once
            wait_for(lambda: len(recorder.snapshot()[2]) == 1, 10, "delivered after restart")


def test_several_processes_share_one_metrics_view(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    config = write_config(
        tmp_path,
        BASE_CONFIG
        + f"""
server: {{{{metrics_listen: "127.0.0.1:${{{{METRICS_PORT}}}}"}}}}
storage: {{{{url: "sqlite:///{tmp_path}/gw.db"}}}}
upstreams:
  canned: {{{{type: stub, operations: {{{{hi: {{{{reply: {{{{body: {{{{ok: true}}}}}}}}}}}}}}}}}}}}
routes:
  - {{{{id: shared-hi, match: {{{{method: GET, path: /hi}}}}, clients: [agency-a],
      upstream: canned, operation: hi}}}}
""",
    )
    ports = [free_port() for _ in range(4)]
    env = [
        {"PROMETHEUS_MULTIPROC_DIR": str(shared), "METRICS_PORT": str(ports[2 + i])}
        for i in range(2)
    ]
    with (
        gateway_process(config, ports[0], env=env[0]),
        gateway_process(config, ports[1], env=env[1]),
    ):
        for port, count in ((ports[0], 2), (ports[1], 3)):
            for _ in range(count):
                answer = httpx.get(f"http://127.0.0.1:{port}/hi", headers={"x-api-key": TEST_KEY})
                assert answer.status_code == 200
        on_main_port = httpx.get(f"http://127.0.0.1:{ports[0]}/metrics")
        text = httpx.get(f"http://127.0.0.1:{ports[2]}/metrics").text  # no key on this one
    assert on_main_port.status_code == 404
    total = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lgsp_gateway_requests_total" and sample.labels["route"] == "shared-hi"
    )
    assert total == 5
