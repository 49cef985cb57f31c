"""Every error code and the happy path of the request pipeline, through HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.stub import StubAdapter
from gateway.app import create_app
from tests.support.config import BASE_CONFIG, MOTCUA_KEY, QLVB_KEY, TEST_KEY, write_config

LOOKUP = "/v1/population/citizens/lookup"
JSON = {"content-type": "application/json"}
MOTCUA = {"x-api-key": MOTCUA_KEY, **JSON}


def problem(response, status: int, code: str, source: str = "gateway") -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Assert a problem document and return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-lgsp-error-source"] == source
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


def test_lookup_of_a_known_citizen(default_client: TestClient) -> None:  # type: ignore[type-arg]
    response = default_client.post(LOOKUP, json={"so_dinh_danh": "001203012345"}, headers=MOTCUA)
    assert response.status_code == 200
    citizen = response.json()["cong_dan"]
    assert citizen["ho_va_ten"] == {
        "ho": "Nguyễn",
        "chu_dem": "Văn",
        "ten": "An",
        "day_du": "Nguyễn Văn An",
    }
    assert response.json()["ma_yeu_cau"] == response.headers["x-request-id"]


def test_unknown_citizen_is_the_upstreams_404(default_client: TestClient) -> None:  # type: ignore[type-arg]
    response = default_client.post(LOOKUP, json={"so_dinh_danh": "001203099999"}, headers=MOTCUA)
    problem(response, 404, "not_found", source="upstream")


def test_request_id_is_echoed_or_generated(default_client: TestClient) -> None:  # type: ignore[type-arg]
    given = default_client.get("/health/live", headers={"x-request-id": "motcua-2026-000123"})
    assert given.headers["x-request-id"] == "motcua-2026-000123"
    generated = default_client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = default_client.get("/health/live", headers={"x-request-id": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


def test_missing_and_wrong_keys_are_unauthenticated(default_client: TestClient) -> None:  # type: ignore[type-arg]
    body = problem(default_client.post(LOOKUP, json={}, headers=JSON), 401, "unauthenticated")
    assert "missing" in body["detail"]
    wrong = default_client.post(LOOKUP, json={}, headers={"x-api-key": "guess", **JSON})
    problem(wrong, 401, "unauthenticated")


def test_authentication_comes_before_routing(default_client: TestClient) -> None:  # type: ignore[type-arg]
    """An unauthenticated caller learns nothing about which paths exist."""
    problem(default_client.get("/v1/nothing-here"), 401, "unauthenticated")


def test_client_off_the_routes_list_is_forbidden(default_client: TestClient) -> None:  # type: ignore[type-arg]
    headers = {"x-api-key": QLVB_KEY, **JSON}
    response = default_client.post(LOOKUP, json={"so_dinh_danh": "001203012345"}, headers=headers)
    body = problem(response, 403, "forbidden")
    assert "qlvb-demo" in body["detail"]


def test_route_not_found_and_method_not_allowed(default_client: TestClient) -> None:  # type: ignore[type-arg]
    problem(default_client.get("/v1/unknown", headers=MOTCUA), 404, "route_not_found")
    response = default_client.get(LOOKUP, headers=MOTCUA)
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_body_over_the_route_limit(default_client: TestClient) -> None:  # type: ignore[type-arg]
    big = b'{"so_dinh_danh": "' + b"1" * 20_000 + b'"}'
    problem(default_client.post(LOOKUP, content=big, headers=MOTCUA), 413, "payload_too_large")


def test_streamed_body_over_the_limit_without_content_length(default_client: TestClient) -> None:  # type: ignore[type-arg]
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 1024

    response = default_client.post(LOOKUP, content=chunks(), headers=MOTCUA)
    problem(response, 413, "payload_too_large")


def test_wrong_content_type(default_client: TestClient) -> None:  # type: ignore[type-arg]
    headers = {"x-api-key": MOTCUA_KEY, "content-type": "application/x-www-form-urlencoded"}
    response = default_client.post(LOOKUP, content=b"so_dinh_danh=001203012345", headers=headers)
    problem(response, 415, "unsupported_media_type")


def test_malformed_json(default_client: TestClient) -> None:  # type: ignore[type-arg]
    response = default_client.post(LOOKUP, content=b'{"so_dinh_danh": ', headers=MOTCUA)
    body = problem(response, 400, "malformed_body")
    assert body["errors"][0]["path"] == "$"


def test_schema_errors_list_every_field(default_client: TestClient) -> None:  # type: ignore[type-arg]
    payload = {"so_dinh_danh": "12345", "ngay_sinh": "17/05/2003", "nickname": "An"}
    body = problem(default_client.post(LOOKUP, json=payload, headers=MOTCUA), 422, "schema_invalid")
    paths = {e["path"] for e in body["errors"]}
    assert paths == {"$.so_dinh_danh", "$.ngay_sinh", "$.nickname"}
    messages = {e["path"]: e["message"] for e in body["errors"]}
    assert "12-digit" in messages["$.so_dinh_danh"]


def test_id_that_contradicts_the_declared_birth_year(default_client: TestClient) -> None:  # type: ignore[type-arg]
    payload = {"so_dinh_danh": "001203012345", "ngay_sinh": "1990-01-01"}
    body = problem(default_client.post(LOOKUP, json=payload, headers=MOTCUA), 422, "schema_invalid")
    assert "2003" in body["errors"][0]["message"]


def test_dossier_schema_uses_portal_field_names(default_client: TestClient) -> None:  # type: ignore[type-arg]
    dossier = {
        "MaHoSo": "000.00.11.H53-261122-0001",
        "MaTTHC": "1.001612",
        "TenTTHC": "Đăng ký khai sinh",
        "ChuHoSo": "Nguyễn Văn An",
        "NgayTiepNhan": "20261122083000",
        "TrangThaiHoSo": 2,
    }
    ok = default_client.post("/v1/dvcqg/dossiers", json=dossier, headers=MOTCUA)
    assert ok.status_code == 200, ok.text
    assert ok.json()["MaHoSo"] == dossier["MaHoSo"]
    bad = {**dossier, "TrangThaiHoSo": 11, "NgayTiepNhan": "2026-11-22"}
    body = problem(
        default_client.post("/v1/dvcqg/dossiers", json=bad, headers=MOTCUA), 422, "schema_invalid"
    )
    assert {e["path"] for e in body["errors"]} == {"$.TrangThaiHoSo", "$.NgayTiepNhan"}


EDXML = """<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader>
<MessageHeader><From><OrganId>000.00.11.H53</OrganId></From>{to}
<Subject>V/v triển khai nền tảng tích hợp</Subject></MessageHeader>
</edXMLHeader></edXMLEnvelope></edXML>"""
XML = {"x-api-key": QLVB_KEY, "content-type": "application/xml"}


def test_edxml_document_is_validated_then_sent(default_client: TestClient) -> None:  # type: ignore[type-arg]
    good = EDXML.format(to="<To><OrganId>000.00.00.G22</OrganId></To>").encode()
    assert default_client.post("/v1/documents", content=good, headers=XML).status_code == 201
    no_receiver = EDXML.format(to="").encode()
    body = problem(
        default_client.post("/v1/documents", content=no_receiver, headers=XML),
        422,
        "schema_invalid",
    )
    (error,) = body["errors"]
    assert (error["path"], error["rule"]) == (
        "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To",
        "missing_receiver",
    )
    twice = "<To><OrganId>000.00.00.G22</OrganId></To>" * 2
    duplicate = default_client.post(
        "/v1/documents", content=EDXML.format(to=twice).encode(), headers=XML
    )
    (error,) = problem(duplicate, 422, "schema_invalid")["errors"]
    assert error["rule"] == "duplicate_receiver"
    assert error["path"].endswith("/MessageHeader/To[2]/OrganId")


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;">]><r>&c;&c;&c;</r>',
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'.encode("utf-16"),
    ],
    ids=["external-entity", "entity-bomb", "utf16-hides-doctype-from-byte-scan"],
)
def test_hostile_xml_is_refused(default_client: TestClient, document: bytes) -> None:  # type: ignore[type-arg]
    response = default_client.post("/v1/documents", content=document, headers=XML)
    body = problem(response, 400, "xml_forbidden")
    assert "DOCTYPE" in body["errors"][0]["message"]
    assert "root:" not in response.text


# --- upstream failures, retries and deadlines, on a config with short timeouts ---

FAULTS_CONFIG = (
    BASE_CONFIG
    + """
upstreams:
  flaky:
    type: stub
    operations:
      read: {{reply: {{body: {{ok: true}}}}}}
      write: {{reply: {{body: {{ok: true}}}}}}
routes:
  - id: read
    match: {{method: GET, path: /read}}
    clients: ["*"]
    upstream: flaky
    operation: read
    timeout: 600ms
    retry: {{attempts: 3, on: [unavailable, timeout, 5xx], attempt_timeout: 150ms, backoff: 10ms}}
  - id: write
    match: {{method: POST, path: /write}}
    clients: ["*"]
    upstream: flaky
    operation: write
    timeout: 300ms
    retry: {{attempts: 3, on: [unavailable, timeout, 5xx], backoff: 10ms}}
"""
)
KEY = {"x-api-key": TEST_KEY}


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[tuple[TestClient, StubAdapter]]:  # type: ignore[type-arg]
    app = create_app(str(write_config(tmp_path, FAULTS_CONFIG)))
    with TestClient(app) as client:
        adapter = app.state.holder.current.adapters["flaky"]
        yield client, adapter


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("timeout", 504, "upstream_timeout"),
        ("unavailable", 502, "upstream_unavailable"),
        ("error", 502, "upstream_error"),
        ("malformed", 502, "upstream_error"),
    ],
)
def test_each_fault_maps_to_its_code(
    faults: tuple[TestClient, StubAdapter],
    fault: str,
    status: int,
    code: str,  # type: ignore[type-arg]
) -> None:
    client, _ = faults
    response = client.post("/write", headers={**KEY, "x-stub-fault": fault})
    problem(response, status, code, source="upstream")


def test_idempotent_route_is_retried_within_its_deadline(
    faults: tuple[TestClient, StubAdapter],  # type: ignore[type-arg]
) -> None:
    client, adapter = faults
    started = time.monotonic()
    response = client.get("/read", headers={**KEY, "x-stub-fault": "timeout"})
    elapsed = time.monotonic() - started
    problem(response, 504, "upstream_timeout", source="upstream")
    assert adapter.calls["read"] == 3
    assert elapsed < 0.6 + 0.3  # the route's timeout bounds the whole exchange


def test_non_idempotent_route_is_not_retried(faults: tuple[TestClient, StubAdapter]) -> None:  # type: ignore[type-arg]
    client, adapter = faults
    problem(
        client.post("/write", headers={**KEY, "x-stub-fault": "unavailable"}),
        502,
        "upstream_unavailable",
        "upstream",
    )
    assert adapter.calls["write"] == 1


def test_upstream_5xx_carries_its_status(faults: tuple[TestClient, StubAdapter]) -> None:  # type: ignore[type-arg]
    client, adapter = faults
    body = problem(
        client.get("/read", headers={**KEY, "x-stub-fault": "error"}),
        502,
        "upstream_error",
        "upstream",
    )
    assert body["upstream_status"] == 503
    assert adapter.calls["read"] == 3


def test_unexpected_error_is_a_generic_500(
    faults: tuple[TestClient, StubAdapter],
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    client, adapter = faults

    async def broken(request: object) -> None:
        raise RuntimeError("secret internals: /etc/lgsp/key.pem")

    monkeypatch.setattr(adapter, "handle", broken)
    response = client.get("/read", headers=KEY)
    body = problem(response, 500, "internal_error")
    assert "secret" not in response.text
    assert body["request_id"] in body["detail"]
