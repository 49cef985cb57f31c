"""The real server process: sockets both ways, a real upstream, SIGHUP reload."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.processes import gateway_process
from tests.support.servers import free_port, serve_in_thread
from tests.support.upstreams import echo_upstream

pytestmark = pytest.mark.processes  # `lgsp-gateway serve` subprocesses

CONFIG = """
upstreams:
  registry: {{type: http, base_url: "{url}"}}
routes:
  - {{id: echo, match: {{method: POST, path: /v1/echo}}, clients: ["*"], upstream: registry,
      operation: /echo/dang-ky-kinh-doanh}}
"""
NEW_ROUTE = """  - {{id: status, match: {{method: GET, path: "/v1/status/{{code}}"}}, clients: ["*"],
      upstream: registry, operation: "/status/{{code}}"}}
"""
KEY = {"x-api-key": TEST_KEY}


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(echo_upstream()) as url:
        yield url


def wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_forwarding_and_sighup_reload(tmp_path: Path, upstream_url: str) -> None:
    config_text = BASE_CONFIG + CONFIG.replace("{url}", upstream_url)
    path = write_config(tmp_path, config_text)
    port = free_port()
    log = tmp_path / "gateway.log"
    with (
        gateway_process(path, port, log=log) as process,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY) as http,
    ):
        response = http.post("/v1/echo", json={"ma_so_thue": "0101234567"})
        assert response.status_code == 200
        assert response.json()["path"] == "/echo/dang-ky-kinh-doanh"
        assert response.json()["body"] == '{"ma_so_thue":"0101234567"}'
        assert http.get("/v1/status/201").status_code == 404

        write_config(tmp_path, config_text + NEW_ROUTE)
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: http.get("/v1/status/201").status_code == 201)

        path.write_text(path.read_text() + "clients: oops\n")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: "config_reload_rejected" in log.read_text())
        assert http.get("/v1/status/201").status_code == 201  # the running config stays

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    rejected = next(line for line in lines if line["event"] == "config_reload_rejected")
    assert any("duplicate key" in error and f"{path}:" in error for error in rejected["errors"])
    access = [line for line in lines if line["event"] == "request" and line["path"] == "/v1/echo"]
    assert access[0]["upstream"] == "registry" and access[0]["status"] == 200
