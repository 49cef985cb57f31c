"""The http adapter against a real upstream on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.config import BASE_CONFIG, TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import free_port, serve_in_thread
from tests.support.upstreams import echo_upstream

ROUTES = """
upstreams:
  civil:
    type: http
    base_url: {url}
    headers: {{x-upstream-token: "${{CIVIL_TOKEN:-t0ken}}"}}
    health_path: /healthz
  closed:
    type: http
    base_url: http://127.0.0.1:{closed_port}
routes:
  - {{id: pass, match: {{method: POST, path: /echo/pass}}, clients: ["*"], upstream: civil}}
  - id: templated
    match: {{method: GET, path: "/v1/ho-tich/{{so}}"}}
    clients: ["*"]
    upstream: civil
    operation: "/echo/records/{{so}}"
  - {{id: status, match: {{method: GET, path: "/status/{{code}}"}}, clients: ["*"], upstream: civil,
      operation: "/status/{{code}}"}}
  - {{id: slow, match: {{method: GET, path: /slow}}, clients: ["*"], upstream: civil, timeout: 300ms}}
  - {{id: garbage, match: {{method: GET, path: /garbage}}, clients: ["*"], upstream: civil}}
  - {{id: closed, match: {{method: GET, path: /closed}}, clients: ["*"], upstream: closed}}
"""
KEY = {"x-api-key": TEST_KEY}
ADMIN = {"x-api-key": TEST_ADMIN_KEY}


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(echo_upstream()) as url:
        yield url


@pytest.fixture
def client(tmp_path: Path, upstream_url: str) -> Iterator[TestClient]:  # type: ignore[type-arg]
    text = BASE_CONFIG + ROUTES.replace("{url}", upstream_url).replace(
        "{closed_port}", str(free_port())
    )
    with TestClient(create_app(str(write_config(tmp_path, text)))) as test_client:
        yield test_client


def test_forwards_method_path_query_body_and_safe_headers(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post(
        "/echo/pass?ma=1&x=y",
        content=b'{"hello": "xin chao"}',
        headers={
            **KEY,
            "content-type": "application/json",
            "x-request-id": "req-42",
            "authorization": "Bearer agency-secret",
        },
    )
    assert response.status_code == 200
    seen = response.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/echo/pass", "ma=1&x=y")
    assert seen["body"] == '{"hello": "xin chao"}'
    headers = seen["headers"]
    assert headers["x-request-id"] == "req-42"
    assert headers["x-lgsp-client"] == "agency-a"
    assert headers["x-upstream-token"] == "t0ken"
    # The agency's own credentials never travel upstream.
    assert "x-api-key" not in headers
    assert "authorization" not in headers


def test_operation_templates_the_upstream_path(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/v1/ho-tich/HT 2026/01", headers=KEY)
    assert response.status_code == 404  # '/' inside a parameter does not match one segment
    response = client.get("/v1/ho-tich/HT-2026-001", headers=KEY)
    assert response.json()["path"] == "/echo/records/HT-2026-001"
    assert response.json()["method"] == "GET"


def test_upstream_4xx_passes_through_marked_as_upstream(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/status/409", headers=KEY)
    assert response.status_code == 409
    assert response.json() == {"status": 409}
    assert response.headers["x-lgsp-error-source"] == "upstream"


def test_upstream_5xx_becomes_upstream_error(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/status/500", headers=KEY)
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_error"
    assert response.json()["upstream_status"] == 500


def test_slow_upstream_times_out(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/slow", headers=KEY)
    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"


def test_malformed_json_from_upstream(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/garbage", headers=KEY)
    assert response.status_code == 502
    assert response.json()["detail"] == "upstream returned malformed JSON"


def test_closed_port_is_unavailable_and_shows_in_readiness(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/closed", headers=KEY)
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_unavailable"
    ready = client.get("/health/ready", headers=ADMIN).json()
    assert ready["status"] == "degraded"
    assert ready["upstreams"]["closed"]["state"] == "down"
    assert ready["upstreams"]["civil"] == {
        "type": "http",
        "state": "up",
        "detail": "/healthz: 200",
        "circuit": {"state": "closed", "in_flight": 0},
    }
