"""``lgsp-gateway mock``: the mock national systems as standalone servers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.config import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.processes  # `lgsp-gateway mock` subprocesses


def run_mock(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "mock", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"{url}/__mock/stats").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "mock did not start"
        time.sleep(0.1)


def test_readme_command_serves_the_portal_with_its_control_api() -> None:
    port = free_port()
    callback = "http://127.0.0.1:8080/v1/dvcqg/payments/callback"
    process = run_mock("dvcqg", "--port", str(port), "--option", f"callback_url={callback}")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        fault = {"operation": "login", "status": 503, "times": 1}
        assert httpx.post(f"{url}/__mock/faults", json=fault).status_code == 201
        login = httpx.post(f"{url}/api/auth", json={"username": "x", "password": "y"})
        assert login.status_code == 503  # the fault, counted as a login
        assert httpx.get(f"{url}/__mock/stats").json() == {"requests": {"login": 1}, "total": 1}
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert f"dvcqg: {url}" in out


def test_population_mock_answers_soap_on_its_own_port() -> None:
    port = free_port()
    process = run_mock("population", "--port", str(port))
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_bad_invocations_say_what_is_wrong() -> None:
    unknown = run_mock("dvcqg", "--port", str(free_port()), "--option", "colour=blue")
    _, err = unknown.communicate(timeout=20)
    assert unknown.returncode == 2 and "colour" in err
    shapeless = run_mock("dvcqg", "--option", "no-equals-sign")
    _, err = shapeless.communicate(timeout=20)
    assert shapeless.returncode == 2 and "expected KEY=VALUE" in err
    every = run_mock("all", "--port", "9999")
    _, err = every.communicate(timeout=20)
    assert every.returncode == 2 and "one system" in err
