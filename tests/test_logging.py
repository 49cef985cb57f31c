"""Access log: one JSON line per request, what an operator needs, no personal data."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from gateway import logs
from gateway.app import create_app
from gateway.config.model import LoggingSettings
from gateway.personaldata import mask_id_numbers
from tests.support.config import BASE_CONFIG, DEFAULT_CONFIG, MOTCUA_KEY, TEST_KEY, write_config
from tests.support.processes import gateway_process
from tests.support.servers import free_port


def requests(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "request"]


def test_one_line_per_request_without_personal_data() -> None:
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        with TestClient(create_app(str(DEFAULT_CONFIG))) as client:
            client.post(
                "/v1/population/citizens/lookup",
                json={"so_dinh_danh": "001203012345", "ho_va_ten": "Nguyễn Văn An"},
                headers={"x-api-key": MOTCUA_KEY, "x-request-id": "req-1"},
            )
            client.get("/v1/population/citizens/079195001234", headers={"x-api-key": MOTCUA_KEY})
    finally:
        logs.configure(LoggingSettings(level="warning"))
    text = stream.getvalue().decode()
    assert "001203012345" not in text
    assert "079195001234" not in text
    assert "Nguyễn" not in text and "Nguy\\u1ec5n" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    (lookup, missing) = requests(lines)
    assert lookup["request_id"] == "req-1"
    assert lookup["client"] == "motcua-demo"
    assert lookup["route"] == "population-citizen-lookup"
    assert lookup["upstream"] == "population"
    assert lookup["status"] == 200
    assert lookup["attempts"] == 1
    assert lookup["upstream_ms"] > 0 and lookup["duration_ms"] >= lookup["upstream_ms"]
    assert "request_body" not in lookup
    assert missing["path"] == "/v1/population/citizens/079******234"
    assert missing["error_code"] == "route_not_found"
    assert missing["error_source"] == "gateway"


def test_route_may_allow_bodies_in_logs(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        BASE_CONFIG
        + """
upstreams:
  m: {{type: stub, operations: {{op: {{reply: {{body: {{so: "{{{{ body.so }}}}"}}}}}}}}}}
routes:
  - {{id: r, match: {{method: POST, path: /r}}, clients: ["*"], upstream: m, operation: op,
      log_bodies: true}}
""",
    )
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        with TestClient(create_app(str(config))) as client:
            response = client.post(
                "/r", json={"so": "038088004567"}, headers={"x-api-key": TEST_KEY}
            )
            assert response.json() == {"so": "038088004567"}
    finally:
        logs.configure(LoggingSettings(level="warning"))
    (line,) = requests([json.loads(x) for x in stream.getvalue().splitlines()])
    assert line["request_body"] == '{"so":"038******567"}'
    assert line["response_body"] == '{"so":"038******567"}'


def test_masking_keeps_first_and_last_three_digits() -> None:
    assert mask_id_numbers("CCCD 001203012345, CMND 123456789") == (
        "CCCD 001******345, CMND 123***789"
    )
    assert mask_id_numbers("phone 0912345678 ok") == "phone 0912345678 ok"
    assert mask_id_numbers("code 20261122083000") == "code 20261122083000"


def test_library_logs_are_json_masked_and_quiet() -> None:
    import logging

    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        logging.getLogger("uvicorn.error").info("client 001203012345 connected")
        logging.getLogger("httpx").info("HTTP Request: GET http://x/citizens/001203012345")
    finally:
        logs.configure(LoggingSettings(level="warning"))
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["event"] == "client 001******345 connected"
    assert line["logger"] == "uvicorn.error"
    assert line["level"] == "info"


@pytest.mark.processes
def test_a_served_gateway_keeps_its_logging_after_the_mocks_start(tmp_path: Path) -> None:
    """`lgsp-gateway serve` on the default config: mock national systems (litestar apps,
    one with litestar's default logging) start inside it, and still every line of the
    process is JSON, masked, and said once."""
    output = tmp_path / "gateway.log"
    port = free_port()
    mocks = {
        variable: str(free_port())
        for variable in (
            "LGSP_MOCK_DVCQG_PORT",
            "LGSP_MOCK_POPULATION_PORT",
            "LGSP_MOCK_AXIS_PORT",
        )
    }
    env = {**mocks, "LGSP_PORT": str(port), "LGSP_STORAGE_URL": f"sqlite:///{tmp_path}/gw.db"}
    with gateway_process(DEFAULT_CONFIG, port, env=env, log=output):
        base = f"http://127.0.0.1:{port}"
        headers = {"X-API-Key": MOTCUA_KEY, "X-Request-ID": "agency-001203012345"}
        httpx.post(
            f"{base}/v1/population/citizens/lookup",
            json={"so_dinh_danh": "001203012345"},
            headers=headers,
        )
        httpx.get(f"{base}/v1/dvcqg/dossiers/001203012345", headers=headers)
        httpx.get(f"{base}/health/ready")
    text = output.read_text(encoding="utf-8")
    assert "001203012345" not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line JSON
    said = [
        (line.get("logger"), line["event"], line.get("lease"))  # one lease per background work
        for line in lines
        if line["event"] != "request"
    ]
    assert len(said) == len(set(said)), said  # nothing said twice (three mocks, one gateway)
    assert ("uvicorn.error", "Application startup complete.", None) in said
    ours = [line for line in lines if line.get("request_id") == "agency-001******345"]
    assert [line["event"] for line in ours].count("request") == 2


def test_a_litestar_app_built_with_its_own_logging_leaves_the_gateways_alone() -> None:
    """Mock national systems are litestar apps; one built without ``logging_config=None``
    runs ``dictConfig`` and would replace the root handlers (every line then printed by
    litestar's handler, not ours)."""
    import logging

    from litestar import Litestar

    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        ours = logging.getLogger().handlers[:]
        framework = logging.getLogger("litestar")
        before = (framework.handlers[:], framework.propagate)
        with logs.kept():
            Litestar([])  # the default LoggingConfig: dictConfig on construction
        assert logging.getLogger().handlers == ours
        assert (framework.handlers, framework.propagate) == before
        logging.getLogger("gateway.somewhere").info("still ours")
    finally:
        logs.configure(LoggingSettings(level="warning"))
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["event"] == "still ours"


def test_console_lines_for_a_person() -> None:
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info", format="console"), stream)
    try:
        logs.access(
            "info",
            {
                "method": "GET",
                "path": "/x",
                "status": 404,
                "duration_ms": 1.25,
                "request_id": "r-1",
                "error_code": "route_not_found",
            },
        )
    finally:
        logs.configure(LoggingSettings(level="warning"))
    line = stream.getvalue().decode().strip()
    assert line.endswith("GET /x 404 1.2ms error_code=route_not_found request_id=r-1")
    assert not line.startswith("{")
