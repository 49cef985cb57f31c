"""What an attacker found against `make run`, each replayed over real HTTP against the
default configuration (uvicorn on a free port, the mock national systems behind it).

Requests go through ``http.client``: it sends a path and headers exactly as written
(``%2F``, ``..``, a header twice), as ``curl --path-as-is`` would.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.app import create_app
from tests.support.config import ADMIN_KEY, DEFAULT_CONFIG, MOTCUA_KEY
from tests.support.servers import serve_in_thread

LOOKUP = "/v1/population/citizens/lookup"
CITIZEN = {"so_dinh_danh": "001203012345"}
POPULATION_MOCK = f"http://127.0.0.1:{os.environ['LGSP_MOCK_POPULATION_PORT']}"
JSON_ROUTES = [
    "/v1/documents",
    "/v1/documents/statuses",
    "/v1/dvcqg/dossiers",
    "/v1/dvcqg/progress",
    "/v1/dvcqg/questions",
    "/v1/dvcqg/payments",
    "/v1/dvcqg/payments/callback",
    LOOKUP,
    "/v1/population/citizens/verify",
]


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with serve_in_thread(create_app(str(DEFAULT_CONFIG))) as base:
        yield base


def send(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Answer:
    """One request, path and headers as given (repeated headers stay repeated)."""
    where = urlsplit(base)
    connection = http.client.HTTPConnection(where.hostname or "", where.port)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return Answer(connection.getresponse())
    finally:
        connection.close()


def post_json(base: str, path: str, body: bytes, *extra: tuple[str, str]) -> Answer:
    headers = [("X-API-Key", MOTCUA_KEY), ("Content-Type", "application/json"), *extra]
    return send(base, "POST", path, body, headers)


def assert_problem(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code
    assert problem["request_id"] == answer.headers["x-request-id"]
    return problem


def lookups_reached() -> int:
    stats = httpx.get(f"{POPULATION_MOCK}/__mock/stats").json()
    count: int = stats["requests"].get("TraCuuThongTinCongDan", 0)
    return count


# --- hostile bodies: a 4xx with a code and a path, never a 500 ---


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_deeply_nested_json_is_refused_before_decoding(gateway: str, path: str) -> None:
    answer = post_json(gateway, path, b"[" * 8000 + b"]" * 8000)
    problem = assert_problem(answer, 400, "malformed_body")
    assert problem["errors"][0]["path"] == "$"
    assert "nested deeper than 64" in problem["errors"][0]["message"]


def test_nesting_within_the_limit_is_read(gateway: str) -> None:
    body = b'{"so_dinh_danh": "001203012345", "ly_do": ' + b"[" * 60 + b"]" * 60 + b"}"
    problem = assert_problem(post_json(gateway, LOOKUP, body), 422, "schema_invalid")
    assert problem["errors"][0]["path"] == "$.ly_do"


@pytest.mark.parametrize("character", ["\\u0008", "\\u0000", "\\u001f", "\\ufffe", "\\uffff"])
def test_characters_xml_cannot_carry_are_refused_with_their_path(
    gateway: str, character: str
) -> None:
    before = lookups_reached()
    body = f'{{"so_dinh_danh":"001203012345","ho_va_ten":"Nguy{character}n"}}'.encode()
    problem = assert_problem(post_json(gateway, LOOKUP, body), 422, "schema_invalid")
    assert problem["errors"][0]["path"] == "$.ho_va_ten"
    assert "XML cannot carry" in problem["errors"][0]["message"]
    assert lookups_reached() == before  # refused before any SOAP call


def test_invalid_utf8_is_400(gateway: str) -> None:
    problem = assert_problem(
        post_json(gateway, LOOKUP, b'{"so_dinh_danh":"001203\xff012345"}'), 400, "malformed_body"
    )
    assert "UTF-8" in problem["errors"][0]["message"]


def test_a_key_named_twice_is_refused(gateway: str) -> None:
    # One parser reads the first, another the last: two readers, two requests.
    body = b'{"so_dinh_danh":"001203012345","so_dinh_danh":"079203012345"}'
    problem = assert_problem(post_json(gateway, LOOKUP, body), 400, "malformed_body")
    assert "so_dinh_danh" in problem["errors"][0]["message"]


def test_paygov_amounts_are_bounded(gateway: str) -> None:
    fee = {"LoaiPhiLePhi": 1, "MaPhiLePhi": "LP1", "TenPhiLePhi": "Lệ phí", "SoTien": 10**400}
    body = json.dumps({"PhiLePhi": [fee]}).encode()
    problem = assert_problem(post_json(gateway, "/v1/dvcqg/payments", body), 422, "schema_invalid")
    paths = {e["path"] for e in problem["errors"]}
    assert "$.PhiLePhi[0].SoTien" in paths
    assert "1" + "0" * 400 not in answer_text(problem)


def answer_text(problem: dict[str, Any]) -> str:
    return json.dumps(problem)


# --- fixed endpoints behave like the data plane ---


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/admin/reload", "POST"),
        ("POST", "/docs", "GET, HEAD"),
        ("PUT", "/admin/messages", "GET, HEAD"),
    ],
)
def test_a_wrong_method_on_a_fixed_endpoint_is_405(
    gateway: str, method: str, path: str, allow: str
) -> None:
    answer = send(gateway, method, path, headers=[("X-API-Key", ADMIN_KEY)])
    assert_problem(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == allow


def test_head_works_wherever_get_does(gateway: str) -> None:
    for path in ("/health/live", "/health/ready", "/schema/openapi.json"):
        answer = send(gateway, "HEAD", path)
        assert answer.status == 200, path
        assert answer.body == b""
        assert answer.headers["x-request-id"]
    assert (
        send(gateway, "HEAD", "/v1/dvcqg/procedures", headers=[("X-API-Key", MOTCUA_KEY)]).body
        == b""
    )


@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS", "DELETE"])
@pytest.mark.parametrize("path", ["/admin/reload", "/admin/config", "/admin/messages", "/admin/x"])
def test_admin_paths_answer_nothing_without_the_admin_key(
    gateway: str, method: str, path: str
) -> None:
    for headers in ([], [("X-API-Key", MOTCUA_KEY)]):
        answer = send(gateway, method, path, headers=headers)
        assert_problem(answer, 401, "unauthenticated")
        assert "allow" not in answer.headers


def test_options_on_an_admin_path_with_the_key_is_405(gateway: str) -> None:
    answer = send(gateway, "OPTIONS", "/admin/reload", headers=[("X-API-Key", ADMIN_KEY)])
    assert_problem(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"


def test_readiness_without_the_admin_key_says_only_ready_or_degraded(gateway: str) -> None:
    anonymous = send(gateway, "GET", "/health/ready").json()
    assert anonymous == {"status": anonymous["status"]}
    assert anonymous["status"] in ("ready", "degraded")
    detailed = send(gateway, "GET", "/health/ready", headers=[("X-API-Key", ADMIN_KEY)]).json()
    assert detailed["config"]["digest"] and "upstreams" in detailed


@pytest.mark.parametrize("path", [LOOKUP, "/admin/config", "/health/live"])
def test_a_repeated_api_key_is_refused(gateway: str, path: str) -> None:
    headers = [("X-API-Key", "wrong"), ("X-API-Key", ADMIN_KEY), ("X-API-Key", MOTCUA_KEY)]
    assert_problem(send(gateway, "GET", path, headers=headers), 400, "duplicate_header")


# --- paths are matched as sent ---


def test_an_encoded_slash_is_not_a_separator(gateway: str) -> None:
    answer = post_json(
        gateway, "/v1%2Fpopulation%2Fcitizens%2Flookup", json.dumps(CITIZEN).encode()
    )
    assert_problem(answer, 404, "route_not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/x/../population/citizens/lookup",
        "/v1/./population/citizens/lookup",
        "/v1/%2e%2e/admin/config",
    ],
)
def test_dot_segments_are_refused_before_authorization(gateway: str, path: str) -> None:
    assert_problem(post_json(gateway, path, json.dumps(CITIZEN).encode()), 400, "path_invalid")


# --- personal data at rest, and what upstreams say ---


def test_idempotent_answers_are_stored_sealed(gateway: str) -> None:
    body = json.dumps(CITIZEN).encode()
    first = post_json(gateway, LOOKUP, body, ("Idempotency-Key", "hardening-k1"))
    again = post_json(gateway, LOOKUP, body, ("Idempotency-Key", "hardening-k1"))
    assert first.status == again.status == 200
    assert again.body == first.body and again.headers["idempotency-replayed"] == "true"
    stored = _stored_answers()
    assert stored and all(b"001203012345" not in row and b"Nguy" not in row for row in stored)


def _stored_answers() -> list[bytes]:
    database = os.environ["LGSP_STORAGE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT body, coalesce(headers, '') FROM idempotency_keys WHERE key = 'hardening-k1'"
        ).fetchall()
    return [bytes(body) + headers.encode() for body, headers in rows]


def test_a_request_id_holding_an_id_number_is_masked_wherever_it_goes(gateway: str) -> None:
    answer = post_json(
        gateway, LOOKUP, json.dumps(CITIZEN).encode(), ("X-Request-ID", "req-001203012345")
    )
    assert answer.headers["x-request-id"] == "req-001******345"
    assert answer.headers["x-request-id-replaced"] == "masked"
    message_id = answer.headers["x-lgsp-message-id"]
    records = send(
        gateway,
        "GET",
        f"/admin/messages?message_id={message_id}",
        headers=[("X-API-Key", ADMIN_KEY)],
    ).json()["items"]
    assert [r["request_id"] for r in records] == ["req-001******345"]


def test_an_invalid_request_id_is_replaced_and_the_answer_says_so(gateway: str) -> None:
    answer = send(gateway, "GET", "/health/live", headers=[("X-Request-ID", "not valid!")])
    assert answer.headers["x-request-id"] != "not valid!"
    assert answer.headers["x-request-id-replaced"] == "invalid"
    kept = send(gateway, "GET", "/health/live", headers=[("X-Request-ID", "agency-42")])
    assert kept.headers["x-request-id"] == "agency-42"
    assert "x-request-id-replaced" not in kept.headers


FAULT = (
    "ORA-01017: invalid username/password; jdbc:oracle:thin:csdl_app/S3cr3t@10.20.30.40:1521/DC "
    "password=S3cr3t at http://csdl-db.bca.internal:8080/ws while reading 001203012345"
)


def test_upstream_fault_text_reaches_the_caller_cut_and_masked(gateway: str) -> None:
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        "<soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode>"
        f"<faultstring>{FAULT} {'x' * 500}</faultstring></soapenv:Fault></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    fault = {
        "operation": "TraCuuThongTinCongDan",
        "status": 500,
        "content_type": "text/xml",
        "times": 1,
        "body": envelope,
    }
    assert httpx.post(f"{POPULATION_MOCK}/__mock/faults", json=fault).status_code == 201
    problem = assert_problem(
        post_json(gateway, LOOKUP, json.dumps(CITIZEN).encode()), 502, "upstream_error"
    )
    detail = problem["detail"]
    assert "ORA-01017" in detail and len(detail) <= 200
    for secret in ("S3cr3t", "10.20.30.40", "csdl-db.bca.internal", "csdl_app", "001203012345"):
        assert secret not in detail
