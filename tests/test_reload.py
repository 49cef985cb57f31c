"""Hot reload: all-or-nothing, admin-only, and no request dropped while it happens."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.config import BASE_CONFIG, TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import serve_in_thread

UPSTREAMS = """
upstreams:
  steady:
    type: stub
    latency: {latency}
    operations: {{op: {{reply: {{body: {{version: {version}}}}}}}}}
  other:
    type: stub
    operations: {{op: {{reply: {{body: {{ok: true}}}}}}}}
routes:
  - {{id: a, match: {{method: GET, path: /a}}, clients: ["*"], upstream: steady, operation: op}}
"""
ROUTE_B = """  - {{id: b, match: {{method: GET, path: /b}}, clients: ["*"], upstream: other, operation: op}}
"""
KEY = {"x-api-key": TEST_KEY}
ADMIN = {"x-api-key": TEST_ADMIN_KEY}


def config(tmp_path: Path, *, version: int = 1, latency: str = "0ms", extra: str = "") -> Path:
    text = BASE_CONFIG + UPSTREAMS.replace("{version}", str(version)).replace("{latency}", latency)
    return write_config(tmp_path, text + extra)


def test_reload_needs_the_admin_key(tmp_path: Path) -> None:
    with TestClient(create_app(str(config(tmp_path)))) as client:
        assert client.post("/admin/reload").status_code == 401
        assert client.post("/admin/reload", headers=KEY).status_code == 401
        assert client.post("/admin/reload", headers=ADMIN).status_code == 200


def test_valid_config_is_applied(tmp_path: Path) -> None:
    path = config(tmp_path)
    app = create_app(str(path))
    with TestClient(app) as client:
        assert client.get("/b", headers=KEY).status_code == 404
        kept = app.state.holder.current.adapters["other"]
        config(tmp_path, version=2, extra=ROUTE_B)
        response = client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 200
        assert response.json()["status"] == "reloaded"
        assert client.get("/b", headers=KEY).status_code == 200
        assert client.get("/a", headers=KEY).json() == {"version": 2}
        # Unchanged upstreams keep their adapter (and its connection pool).
        assert app.state.holder.current.adapters["other"] is kept


def test_invalid_config_keeps_the_running_one(tmp_path: Path) -> None:
    path = config(tmp_path)
    with TestClient(create_app(str(path))) as client:
        before = client.get("/health/ready", headers=ADMIN).json()["config"]["digest"]
        path.write_text(path.read_text() + "routes_typo: []\nserver: {port: -1}\n")
        response = client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "config_invalid"
        paths = {e["path"].split(": ", 1)[1] for e in body["errors"]}
        assert paths == {"routes_typo", "server.port"}
        assert all(e["path"].startswith(f"{path}:") for e in body["errors"])
        assert client.get("/a", headers=KEY).json() == {"version": 1}
        assert client.get("/health/ready", headers=ADMIN).json()["config"]["digest"] == before


def test_no_request_is_dropped_during_reloads(tmp_path: Path) -> None:
    path = config(tmp_path, latency="30ms")
    app = create_app(str(path))
    failures: list[str] = []
    statuses: list[int] = []

    with serve_in_thread(app) as url:

        def caller() -> None:
            with httpx.Client(base_url=url, headers=KEY) as http:
                for _ in range(25):
                    response = http.get("/a")
                    statuses.append(response.status_code)
                    if response.status_code != 200:
                        failures.append(response.text)

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=url, headers=ADMIN) as admin:
            for version in range(2, 8):
                config(tmp_path, version=version, latency="30ms")
                assert admin.post("/admin/reload").status_code == 200
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(statuses) == 100
