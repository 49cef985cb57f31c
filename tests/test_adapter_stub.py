"""The mock adapter, as an integrator uses it: YAML replies, templates, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config

CONFIG = """
upstreams:
  registry:
    type: stub
    seed: 7
    operations:
      find:
        cases:
          - when: {{body.ma_so_thue: ["0101234567", "0109876543"]}}
            body: {{ten: Công ty TNHH Sen Vàng, ma_so_thue: "{{{{ body.ma_so_thue }}}}", von: 5000000000}}
          - when: {{body.ma_so_thue: "0000000000"}}
            status: 404
            body: {{thong_bao: không tìm thấy}}
        reply:
          body:
            echo: "{{{{ body }}}}"
            greeting: "Xin chào {{{{ client_id }}}}, yêu cầu {{{{ request_id }}}}"
            item: "{{{{ path.id }}}}"
            page: "{{{{ query.page }}}}"
            missing: "{{{{ body.nothing.here }}}}"
      letter:
        reply:
          content_type: application/xml
          body: "<ThuTraLoi><Ten>{{{{ body.ten }}}}</Ten></ThuTraLoi>"
      from-file:
        reply: {{body_file: reply.json}}
      slow:
        reply: {{latency: 200ms, body: {{ok: true}}}}
  flaky:
    type: stub
    seed: 1
    faults: {{error: 0.5}}
    circuit_breaker: {{enabled: false}}   # every call must reach the stub's dice
    operations: {{op: {{reply: {{body: {{ok: true}}}}}}}}
routes:
  - {{id: find, match: {{method: POST, path: "/find/{{id}}"}}, clients: ["*"], upstream: registry,
      operation: find}}
  - {{id: letter, match: {{method: POST, path: /letter}}, clients: ["*"], upstream: registry,
      operation: letter}}
  - {{id: file, match: {{method: GET, path: /file}}, clients: ["*"], upstream: registry,
      operation: from-file}}
  - {{id: slow, match: {{method: GET, path: /slow}}, clients: ["*"], upstream: registry,
      operation: slow}}
  - {{id: nothing, match: {{method: GET, path: /nothing}}, clients: ["*"], upstream: registry,
      operation: not-defined}}
  - {{id: flaky, match: {{method: GET, path: /flaky}}, clients: ["*"], upstream: flaky, operation: op}}
"""
KEY = {"x-api-key": TEST_KEY, "x-request-id": "req-7"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    (tmp_path / "reply.json").write_text('{"from_file": "{{ client_id }}"}', encoding="utf-8")
    path = write_config(tmp_path, BASE_CONFIG + CONFIG)
    with TestClient(create_app(str(path))) as test_client:
        yield test_client


def test_first_matching_case_answers(client: TestClient) -> None:  # type: ignore[type-arg]
    found = client.post("/find/1", json={"ma_so_thue": "0109876543"}, headers=KEY)
    assert found.json() == {
        "ten": "Công ty TNHH Sen Vàng",
        "ma_so_thue": "0109876543",
        "von": 5000000000,
    }
    missing = client.post("/find/1", json={"ma_so_thue": "0000000000"}, headers=KEY)
    assert missing.status_code == 404


def test_default_reply_is_templated_from_the_request(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/find/42?page=3", json={"a": [1, 2]}, headers=KEY)
    assert response.json() == {
        "echo": {"a": [1, 2]},  # a whole-string placeholder keeps the value's type
        "greeting": "Xin chào agency-a, yêu cầu req-7",
        "item": "42",
        "page": "3",
        "missing": None,
    }


def test_xml_templates_escape_values(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/letter", json={"ten": "<b>Lê & Trần</b>"}, headers=KEY)
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == "<ThuTraLoi><Ten>&lt;b&gt;Lê &amp; Trần&lt;/b&gt;</Ten></ThuTraLoi>"


def test_reply_from_a_file(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.get("/file", headers=KEY).json() == {"from_file": "agency-a"}


def test_latency(client: TestClient) -> None:  # type: ignore[type-arg]
    started = time.monotonic()
    assert client.get("/slow", headers=KEY).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_undefined_operation_is_an_upstream_error(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/nothing", headers=KEY)
    assert response.status_code == 502
    assert "no operation 'not-defined'" in response.json()["detail"]


def test_fault_rate_is_reproducible_with_a_seed(client: TestClient) -> None:  # type: ignore[type-arg]
    statuses = [client.get("/flaky", headers=KEY).status_code for _ in range(40)]
    assert 8 <= statuses.count(502) <= 32  # about half, and never all or none
    assert set(statuses) == {200, 502}
