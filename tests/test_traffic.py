"""Rate limits, quotas, circuit breakers and the bulkhead, through the HTTP path."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.auth import hash_key
from gateway.config.model import UpstreamTraffic
from gateway.problems import Problem
from gateway.traffic import breaker as breaker_module
from gateway.traffic.breaker import Breaker
from tests.support.config import ADMIN_KEY, MOTCUA_KEY, TEST_KEY
from tests.support.processes import gateway_process
from tests.support.servers import free_port, serve_in_thread

OTHER_KEY = "other-key-0123456789"

CONFIG = """
traffic: {storage: "STORAGE"}
clients:
  - {id: agency-a, name: A, api_keys: [KEY_A], rate_limits: [5/minute]}
  - {id: agency-b, name: B, api_keys: [KEY_B]}
upstreams:
  echo:
    type: stub
    operations: {hello: {reply: {body: {ok: true}}}}
  slow:
    type: stub
    max_in_flight: 1
    operations: {wait: {reply: {latency: 1s, body: {ok: true}}}}
routes:
  - {id: shared-TAG, match: {method: GET, path: /shared}, clients: ["*"], upstream: echo,
      operation: hello, rate_limits: [3/minute]}
  - {id: each-TAG, match: {method: GET, path: /each}, clients: ["*"], upstream: echo,
      operation: hello, client_rate_limits: [2/day]}
  - {id: free, match: {method: GET, path: /free}, clients: ["*"], upstream: echo,
      operation: hello}
  - {id: wait, match: {method: GET, path: /wait}, clients: ["*"], upstream: slow,
      operation: wait}
"""


def write(directory: Path, storage: str = "memory", tag: str = "t") -> Path:
    """The config; ``tag`` makes route ids (the counters' names) unique in a shared Redis."""
    text = CONFIG.replace("KEY_A", hash_key(TEST_KEY)).replace("KEY_B", hash_key(OTHER_KEY))
    path = directory / "gateway.yaml"
    path.write_text(text.replace("STORAGE", storage).replace("TAG", tag), encoding="utf-8")
    return path


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(str(write(tmp_path)))) as test_client:
        yield test_client


A = {"x-api-key": TEST_KEY}
B = {"x-api-key": OTHER_KEY}


def refused_429(response: httpx.Response, limit: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "rate_limited"
    assert body["limit"] == limit
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit"].startswith(f'"{limit}";r=0;t=')
    assert f'"{limit}";q=' in response.headers["ratelimit-policy"]
    return body


def test_route_limit_is_shared_by_all_clients(client: TestClient) -> None:  # type: ignore[type-arg]
    statuses = [client.get("/shared", headers=h).status_code for h in (B, B, B)]
    assert statuses == [200, 200, 200]
    refused_429(client.get("/shared", headers=B), "route/3/minute")


def test_client_route_limit_is_per_client(client: TestClient) -> None:  # type: ignore[type-arg]
    first = client.get("/each", headers=B)
    assert first.headers["ratelimit-policy"] == '"client-route/2/day";q=2;w=86400'
    assert first.headers["ratelimit"] == '"client-route/2/day";r=1'
    assert client.get("/each", headers=B).headers["ratelimit"] == '"client-route/2/day";r=0'
    refused_429(client.get("/each", headers=B), "client-route/2/day")
    assert client.get("/each", headers=A).status_code == 200  # agency-a has its own quota


def test_client_limit_covers_every_route(client: TestClient) -> None:  # type: ignore[type-arg]
    for path in ("/free", "/free", "/each", "/each", "/free"):
        assert client.get(path, headers=A).status_code == 200
    refused_429(client.get("/free", headers=A), "client/5/minute")


def test_no_limits_no_headers(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/free", headers=B)
    assert response.status_code == 200
    assert "ratelimit" not in response.headers and "ratelimit-policy" not in response.headers


def test_bulkhead_answers_overloaded(tmp_path: Path) -> None:
    with serve_in_thread(create_app(str(write(tmp_path)))) as url:
        results: list[httpx.Response] = []

        def call() -> None:
            results.append(httpx.get(f"{url}/wait", headers=B, timeout=10))

        callers = [threading.Thread(target=call) for _ in range(2)]
        for caller in callers:  # both arrive while one holds the only slot (for a second)
            caller.start()
        for caller in callers:
            caller.join()
    served, refused = sorted(results, key=lambda r: r.status_code)
    assert (served.status_code, refused.status_code) == (200, 503)
    assert refused.json()["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-lgsp-error-source"] == "gateway"


# --- circuit breaker on a mock national system ---


def test_mock_faults_open_the_circuit_then_calls_are_refused_at_once(
    default_client: TestClient,  # type: ignore[type-arg]
) -> None:
    import os

    mock = f"http://127.0.0.1:{os.environ['LGSP_MOCK_DVCQG_PORT']}"
    headers = {"x-api-key": MOTCUA_KEY}
    fault = {"operation": "LayDanhMucCoQuan", "status": 503, "times": 2}
    assert httpx.post(f"{mock}/__mock/faults", json=fault).status_code == 201
    assert [default_client.get("/v1/demo/agencies", headers=headers).status_code for _ in "ab"] == [
        502,
        502,
    ]
    reached = httpx.get(f"{mock}/__mock/stats").json()["requests"].get("LayDanhMucCoQuan", 0)
    refused = default_client.get("/v1/demo/agencies", headers=headers)
    assert refused.status_code == 503
    assert refused.json()["code"] == "upstream_circuit_open"
    assert refused.headers["x-lgsp-error-source"] == "gateway"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    after = httpx.get(f"{mock}/__mock/stats").json()["requests"].get("LayDanhMucCoQuan", 0)
    assert after == reached  # the portal was not called
    ready = default_client.get("/health/ready", headers={"X-API-Key": ADMIN_KEY}).json()
    assert ready["status"] == "degraded"
    assert ready["upstreams"]["dvcqg-catalogue"]["circuit"]["state"] == "open"
    assert ready["upstreams"]["dvcqg"]["circuit"]["state"] == "closed"  # its own upstream
    other = default_client.get("/v1/dvcqg/agencies", headers=headers)
    assert other.status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(breaker_module.time, "monotonic", fake)
    return fake


def settings(**breaker: Any) -> UpstreamTraffic:
    import msgspec

    return msgspec.convert({"circuit_breaker": breaker}, UpstreamTraffic)


def outcome(breaker: Breaker, failed: bool) -> None:
    breaker.enter()
    breaker.leave(failed)


def test_half_open_probe_closes_or_reopens(clock: Clock) -> None:
    breaker = Breaker("x", settings(failures=2, cool_down="10s"))
    outcome(breaker, True)
    outcome(breaker, True)
    with pytest.raises(Problem) as refused:
        breaker.enter()
    assert refused.value.code == "upstream_circuit_open"
    assert refused.value.headers["retry-after"] == "10"
    clock.now += 10
    breaker.enter()  # the probe
    with pytest.raises(Problem):
        breaker.enter()  # one probe at a time
    breaker.leave(True)  # probe failed: open again, a new cool-down
    with pytest.raises(Problem):
        breaker.enter()
    clock.now += 10
    outcome(breaker, False)  # probe succeeded
    assert breaker.state == "closed"
    outcome(breaker, False)


def test_failure_rate_over_the_window_opens(clock: Clock) -> None:
    breaker = Breaker("x", settings(failures=100, failure_rate=0.5, min_calls=4, window="60s"))
    for failed in (True, False, True):
        outcome(breaker, failed)
    assert breaker.state == "closed"  # 3 calls: fewer than min_calls
    outcome(breaker, True)  # 3 of 4 failed
    assert breaker.state == "open"


def test_failures_outside_the_window_are_forgotten(clock: Clock) -> None:
    breaker = Breaker("x", settings(failures=100, failure_rate=0.5, min_calls=2, window="10s"))
    outcome(breaker, True)
    clock.now += 11
    outcome(breaker, False)
    outcome(breaker, False)
    assert breaker.state == "closed"


def test_a_disabled_breaker_never_opens(clock: Clock) -> None:
    breaker = Breaker("x", settings(enabled=False, failures=1))
    for _ in range(5):
        outcome(breaker, True)
    breaker.enter()


# --- counters shared by processes ---


@pytest.mark.processes
def test_two_processes_share_one_budget_in_redis(tmp_path: Path) -> None:
    from tests.support.redis import ensure_redis

    url = ensure_redis()
    config = write(tmp_path, storage=url, tag=uuid.uuid4().hex[:8])  # fresh counters
    ports = [free_port(), free_port()]
    env = [{"LGSP_STORAGE_URL": f"sqlite:///{tmp_path}/db{i}.sqlite"} for i in range(2)]
    with (
        gateway_process(config, ports[0], env=env[0]),
        gateway_process(config, ports[1], env=env[1]),
    ):
        statuses = [
            httpx.get(f"http://127.0.0.1:{ports[i % 2]}/shared", headers=B).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 200, 429]
