"""``type: population`` end to end: gateway -> population adapter -> mock national database.

Everything runs on loopback over real HTTP: the mock of
``adapters/population/mock.py`` (SOAP 1.1, synthetic citizens, the
data-exchange platform's header check, MockKit faults) and the real gateway
app on a temp config. ``/__mock/stats`` proves when no call reached the mock.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from adapters.population import mock, wire
from adapters.population.auth import auth_headers
from gateway import logs
from gateway.app import create_app
from gateway.config.model import LoggingSettings
from schemas.population import PROVINCES
from schemas.population.ids import encoded_birth_year, encoded_gender
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.servers import serve_in_thread

LOOKUP = "/v1/population/citizens/lookup"
VERIFY = "/v1/population/citizens/verify"
RELATIVES = "/v1/population/citizens/relatives/verify"
HEADERS = {"X-API-Key": TEST_KEY}

CONFIG = (
    BASE_CONFIG
    + """\
storage: {{url: "sqlite:///DB"}}
upstreams:
  population:
    type: population
    address: MOCK/dancu
    user: ${{POP_USER}}
    secret: ${{POP_SECRET}}
    x_road_client: ${{POP_CLIENT}}
    api_key: ${{POP_API_KEY}}
    ma_don_vi: 000.00.11.H53
    ma_dvc: "1.001612"
  population-suffixed:
    type: population
    address: SUFFIXED/dancu
    user: ${{POP_USER}}
    secret: ${{POP_SECRET}}
    x_road_client: ${{POP_CLIENT}}
    api_key: ${{POP_API_KEY}}
    verify_profile: suffixed
    ma_dvc: "033"
  population-wrong-secret:
    type: population
    address: MOCK/dancu
    user: ${{POP_USER}}
    secret: not-the-secret
    x_road_client: ${{POP_CLIENT}}
    api_key: ${{POP_API_KEY}}
routes:
  - id: lookup
    match: {{method: POST, path: /v1/population/citizens/lookup}}
    clients: [agency-a]
    request: {{schema: population.CitizenLookupRequest}}
    upstream: population
    operation: lookup
    timeout: 300ms
  - id: verify   # no request schema: the adapter's own check gives the paths
    match: {{method: POST, path: /v1/population/citizens/verify}}
    clients: [agency-a]
    upstream: population
    operation: verify
    timeout: 2s
  - id: relatives
    match: {{method: POST, path: /v1/population/citizens/relatives/verify}}
    clients: [agency-a]
    request: {{schema: population.CitizenRelativesRequest}}
    upstream: population
    operation: relatives
    timeout: 2s
  - id: verify-suffixed
    match: {{method: POST, path: /v1/population/suffixed/verify}}
    clients: [agency-a]
    upstream: population-suffixed
    operation: verify
    timeout: 2s
  - id: lookup-wrong-secret
    match: {{method: POST, path: /v1/population/wrong/lookup}}
    clients: [agency-a]
    upstream: population-wrong-secret
    operation: lookup
    timeout: 2s
"""
)
ENVIRON = {
    "POP_USER": mock.DEMO_USER,
    "POP_SECRET": mock.DEMO_SECRET,
    "POP_CLIENT": mock.DEMO_X_ROAD_CLIENT,
    "POP_API_KEY": mock.DEMO_API_KEY,
}


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with serve_in_thread(mock.create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def suffixed_url() -> Iterator[str]:
    """A mock speaking anhnbt's XacThucThongTinCongDanRequest variant."""
    with serve_in_thread(mock.create_app(verify_profile="suffixed")) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(
    mock_url: str, suffixed_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    directory = tmp_path_factory.mktemp("population")
    text = (
        CONFIG.replace("MOCK", mock_url)
        .replace("SUFFIXED", suffixed_url)
        .replace("DB", str(directory / "gateway.db"))
    )
    app = create_app(str(write_config(directory, text)))
    with pytest.MonkeyPatch.context() as environ:
        for name, value in ENVIRON.items():
            environ.setenv(name, value)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, headers=HEADERS) as client:
            yield client


@pytest.fixture(autouse=True)
def fresh_mock(mock_url: str) -> None:
    httpx.post(f"{mock_url}/__mock/reset").raise_for_status()


def upstream_calls(mock_url: str) -> int:
    total: int = httpx.get(f"{mock_url}/__mock/stats").json()["total"]
    return total


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_auth_headers_match_a_hand_computed_value() -> None:
    # printf 'https://dancu.example.vn/authlgsp-tinh1700000000000s3cr3t' | sha256sum
    # printf 'lgsp-tinh:<that hex>' | base64 -w0
    headers = auth_headers(
        user="lgsp-tinh",
        secret="s3cr3t",
        auth_url="https://dancu.example.vn/auth",
        x_road_client="VN/GOV/000.00.11.H53/LGSP",
        api_key="key-1",
        timestamp_ms=1_700_000_000_000,
    )
    assert headers == {
        "Timestamp": "1700000000000",
        "Authorization": "Basic bGdzcC10aW5oOjY2YjZkZDNlNjlmNjQyODk4ODJlZGE3YzEwNGM1NjgwNzY1Mz"
        "c1NWM4N2MwMmE2YTczNmVjMTRlM2VkYmRkM2Y=",
        "X-Road-Client": "VN/GOV/000.00.11.H53/LGSP",
        "ApiKey": "key-1",
    }


def test_synthetic_population_is_deterministic_and_its_ids_are_consistent() -> None:
    people = mock.synthetic_population(seed=7, size=200)
    assert people == mock.synthetic_population(seed=7, size=200)
    assert len(people) == 200 + len(mock.KNOWN)
    for personal_id, person in people.items():
        assert personal_id[:3] in PROVINCES
        assert person.ngay_sinh is not None and person.gioi_tinh is not None
        assert encoded_birth_year(personal_id) == int(person.ngay_sinh[:4])
        assert encoded_gender(personal_id) == person.gioi_tinh
        assert person.thuong_tru is not None and person.thuong_tru.ma_tinh is not None
        assert person.thuong_tru.ma_tinh.zfill(3) in PROVINCES


def test_lookup_of_a_readme_citizen(gateway: httpx.Client, mock_url: str) -> None:
    response = gateway.post(
        LOOKUP,
        json={"so_dinh_danh": "001203012345", "ly_do": "Kiểm tra hồ sơ khai sinh"},
        headers={"X-Request-ID": "req-pop-0001"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ton_tai"] is True
    assert answer["ma_yeu_cau"] == "req-pop-0001"  # sent upstream as MaYeuCau
    citizen = answer["cong_dan"]
    assert citizen["ho_va_ten"] == {
        "ho": "Nguyễn", "chu_dem": "Văn", "ten": "An", "day_du": "Nguyễn Văn An"
    }  # fmt: skip
    assert citizen["gioi_tinh"] == "nam"
    assert citizen["ngay_sinh"] == "2003-05-17"
    assert citizen["thuong_tru"]["ma_tinh"] == "01"
    assert citizen["thuong_tru"]["ten_tinh"] == "Thành phố Hà Nội"
    assert citizen["chu_ho"]["quan_he"] == "Con"
    # Cha as the national system writes it (SoDinhDanh, QuocTich, HoVaTen{Ho, ChuDem, Ten}).
    assert citizen["cha"] == {
        "ho_va_ten": "Nguyễn Văn Bình", "so_dinh_danh": "001075001111", "so_cmnd": None,
        "quoc_tich": "VN",
    }  # fmt: skip
    assert citizen["vo_chong"] is None  # not in the answer: null, not dropped
    assert answer["thoi_diem_du_lieu"]  # the collection's ThoiDiemDuLieu
    assert upstream_calls(mock_url) == 1


def test_lookup_of_a_synthetic_citizen_answers_every_field(gateway: httpx.Client) -> None:
    people = mock.synthetic_population()
    personal_id, person = next(
        (i, p) for i, p in people.items() if i not in mock.KNOWN and p.vo_chong is not None
    )
    assert person.ngay_sinh is not None and person.ho_va_ten is not None
    declared = {
        "so_dinh_danh": personal_id,
        "ho_va_ten": person.ho_va_ten.day_du,
        "ngay_sinh": person.ngay_sinh,
        "gioi_tinh": person.gioi_tinh,
    }
    response = gateway.post(LOOKUP, json=declared)
    assert response.status_code == 200, response.text
    # SOAP out of the mock and back through the adapter: the same record.
    assert response.json()["cong_dan"] == msgspec.to_builtins(person)


def test_lookup_of_an_unknown_citizen_is_not_found(gateway: httpx.Client, mock_url: str) -> None:
    response = gateway.post(LOOKUP, json={"so_dinh_danh": "001203099999"})
    problem(response, 404, "not_found")
    assert response.headers["x-lgsp-error-source"] == "upstream"
    # A known ID with a name that is not theirs is not found either.
    other = gateway.post(LOOKUP, json={"so_dinh_danh": "001203012345", "ho_va_ten": "Lê Văn B"})
    problem(other, 404, "not_found")
    assert upstream_calls(mock_url) == 2


def test_verify_matching_and_not_matching(gateway: httpx.Client) -> None:
    declared = {"so_dinh_danh": "079195001234", "ho_va_ten": "Trần Thị Bích Ngọc"}
    same = gateway.post(VERIFY, json={**declared, "ngay_sinh": "1995-11-02", "gioi_tinh": "nu"})
    assert same.status_code == 200, same.text
    assert same.json()["khop"] is True
    assert same.json()["da_doi_chieu"] == ["so_dinh_danh", "ho_va_ten", "ngay_sinh"]
    wrong_name = gateway.post(VERIFY, json={**declared, "ho_va_ten": "Trần Thị Ngọc"})
    assert wrong_name.status_code == 200, wrong_name.text
    assert wrong_name.json()["khop"] is False
    assert wrong_name.json()["da_doi_chieu"] == ["so_dinh_danh", "ho_va_ten"]
    wrong_date = gateway.post(VERIFY, json={**declared, "ngay_sinh": "1995-11-03"})
    assert wrong_date.json()["khop"] is False
    unknown = gateway.post(VERIFY, json={**declared, "so_dinh_danh": "079195009999"})
    assert unknown.json()["khop"] is False


def test_verify_in_the_suffixed_profile(gateway: httpx.Client, suffixed_url: str) -> None:
    """anhnbt's variant: XacThucThongTinCongDanRequest/MaDichVu, no birth date sent."""
    declared = {"so_dinh_danh": "079195001234", "ho_va_ten": "Trần Thị Bích Ngọc"}
    same = gateway.post("/v1/population/suffixed/verify", json={**declared, "ngay_sinh": "1995"})
    assert same.status_code == 200, same.text
    assert same.json()["khop"] is True
    assert same.json()["da_doi_chieu"] == ["so_dinh_danh", "ho_va_ten"]  # the year is not sent
    other = gateway.post("/v1/population/suffixed/verify", json={**declared, "ho_va_ten": "Trần B"})
    assert other.json()["khop"] is False
    stats = httpx.get(f"{suffixed_url}/__mock/stats").json()["requests"]
    assert stats == {"XacThucThongTinCongDanRequest": 2}


def test_the_plain_profile_is_refused_by_a_suffixed_service(suffixed_url: str) -> None:
    """Each side keeps its own names: the wrong variant is a fault, not a silent pass."""
    headers = auth_headers(
        user=mock.DEMO_USER,
        secret=mock.DEMO_SECRET,
        auth_url=f"{suffixed_url}/dancu",
        x_road_client=mock.DEMO_X_ROAD_CLIENT,
        api_key=mock.DEMO_API_KEY,
        timestamp_ms=time.time_ns() // 1_000_000,
    )
    body = wire.envelope(
        "XacThucThongTinCongDan", wire.DAN, wire.LOOKUP_FIELDS, {"SoDinhDanh": "079195001234"}
    )
    refused = httpx.post(
        f"{suffixed_url}/dancu", content=body, headers={**headers, "SOAPAction": '""'}
    )
    assert refused.status_code == 500
    assert b"XacThucThongTinCongDan" in refused.content and b"faultcode" in refused.content


def test_relatives_verified_against_the_record(gateway: httpx.Client, mock_url: str) -> None:
    citizen = {"so_dinh_danh": "001203012345", "ho_va_ten": "Nguyễn Văn An"}
    declared = [
        {"quan_he": "cha", "so_dinh_danh": "001075001111", "ho_va_ten": "nguyễn  văn bình"},
        {"quan_he": "me", "ho_va_ten": "Lê Thị Hoa"},
    ]
    response = gateway.post(RELATIVES, json={**citizen, "nguoi_than": declared})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "khop": True,
        "ma_yeu_cau": response.headers["x-request-id"],
        "nguoi_than": [
            {"quan_he": "cha", "khop": True, "da_doi_chieu": ["so_dinh_danh", "ho_va_ten"]},
            {"quan_he": "me", "khop": True, "da_doi_chieu": ["ho_va_ten"]},
        ],
    }
    wrong = [
        {"quan_he": "me", "ho_va_ten": "Lê Thị Hồng"},
        {"quan_he": "vo_chong", "ho_va_ten": "Phạm Thị Lan"},  # none on record
    ]
    mismatch = gateway.post(RELATIVES, json={**citizen, "nguoi_than": wrong}).json()
    assert mismatch["khop"] is False
    assert [r["khop"] for r in mismatch["nguoi_than"]] == [False, False]
    unknown = gateway.post(RELATIVES, json={"so_dinh_danh": "001203099999", "nguoi_than": declared})
    problem(unknown, 404, "not_found")
    stats = httpx.get(f"{mock_url}/__mock/stats").json()["requests"]
    assert stats == {"XacMinhThongTinNhanThan": 3}


def test_relatives_pre_checks_give_every_path(gateway: httpx.Client, mock_url: str) -> None:
    body = {
        "so_dinh_danh": "001203012345",
        "ngay_sinh": "1990",
        "nguoi_than": [
            {"quan_he": "cha", "so_dinh_danh": "003075001111"},
            {"quan_he": "cha", "ho_va_ten": "Nguyễn Văn Bình"},
            {"quan_he": "me"},
        ],
    }
    errors = problem(gateway.post(RELATIVES, json=body), 422, "schema_invalid")["errors"]
    assert [e["path"] for e in errors] == [
        "$.nguoi_than[0].so_dinh_danh",
        "$.nguoi_than[2].ho_va_ten",
    ]
    body["nguoi_than"] = body["nguoi_than"][1:2] * 2
    errors = problem(gateway.post(RELATIVES, json=body), 422, "schema_invalid")["errors"]
    assert [e["path"] for e in errors] == ["$.ngay_sinh", "$.nguoi_than[1].quan_he"]
    empty = gateway.post(RELATIVES, json={"so_dinh_danh": "001203012345", "nguoi_than": []})
    assert problem(empty, 422, "schema_invalid")["errors"][0]["path"] == "$.nguoi_than"
    assert upstream_calls(mock_url) == 0


def test_ids_failing_the_pre_check_never_reach_the_national_system(
    gateway: httpx.Client, mock_url: str
) -> None:
    no_such_province = gateway.post(LOOKUP, json={"so_dinh_danh": "003203012345"})
    (error,) = problem(no_such_province, 422, "schema_invalid")["errors"]
    assert error["path"] == "$.so_dinh_danh"
    assert "Cà Mau" in error["message"]
    short = gateway.post(VERIFY, json={"so_dinh_danh": "12345678", "ho_va_ten": ""})
    paths = [e["path"] for e in problem(short, 422, "schema_invalid")["errors"]]
    assert paths == ["$.so_dinh_danh", "$.ho_va_ten"]
    contradicted = gateway.post(
        VERIFY,
        json={
            "so_dinh_danh": "079195001234",  # a woman born in 1995
            "ho_va_ten": "Trần Thị Bích Ngọc",
            "ngay_sinh": "1990-01-01",
            "gioi_tinh": "nam",
        },
    )
    assert problem(contradicted, 422, "schema_invalid")["errors"] == [
        {"path": "$.ngay_sinh", "message": "so_dinh_danh encodes birth year 1995, not 1990"},
        {"path": "$.gioi_tinh", "message": "so_dinh_danh encodes gender 'nu', not 'nam'"},
    ]
    # With the route's schema the same check runs before the adapter, same paths.
    year = gateway.post(LOOKUP, json={"so_dinh_danh": "001203012345", "ngay_sinh": "1990"})
    (error,) = problem(year, 422, "schema_invalid")["errors"]
    assert error == {
        "path": "$.ngay_sinh",
        "message": "so_dinh_danh encodes birth year 2003, not 1990",
    }
    not_json = gateway.post(
        VERIFY, content=b"so_dinh_danh=1", headers={"content-type": "text/plain"}
    )
    problem(not_json, 400, "malformed_body")
    assert upstream_calls(mock_url) == 0


def test_refused_credentials_are_upstream_auth_failed(gateway: httpx.Client, mock_url: str) -> None:
    response = gateway.post("/v1/population/wrong/lookup", json={"so_dinh_danh": "001203012345"})
    body = problem(response, 502, "upstream_auth_failed")
    assert response.headers["x-lgsp-error-source"] == "upstream"
    assert "not-the-secret" not in response.text
    assert "Xác thực không thành công" in body["detail"]
    assert upstream_calls(mock_url) == 1


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"latency": "1s"}, 504, "upstream_timeout"),
        (
            {"status": 500, "content_type": "text/xml", "body": mock.fault("Server", "Bảo trì")},
            502,
            "upstream_error",
        ),
        (
            {"status": 500, "content_type": "text/xml", "body": mock.fault("Client", "Sai MaDVC")},
            422,
            "upstream_rejected",
        ),
        ({"status": 503, "content_type": "text/plain", "body": "busy"}, 502, "upstream_error"),
        ({"drop": True}, 502, "upstream_unavailable"),
    ],
    ids=["latency", "server-fault", "client-fault", "http-503", "drop"],
)
def test_injected_faults_map_to_stable_codes(
    gateway: httpx.Client, mock_url: str, fault: dict[str, Any], status: int, code: str
) -> None:
    if isinstance(fault.get("body"), bytes):
        fault = {**fault, "body": fault["body"].decode()}
    injected = httpx.post(
        f"{mock_url}/__mock/faults",
        json={**fault, "operation": "TraCuuThongTinCongDan", "times": 1},
    )
    assert injected.status_code == 201, injected.text
    response = gateway.post(LOOKUP, json={"so_dinh_danh": "001203012345"})
    problem(response, status, code)
    assert response.headers["x-lgsp-error-source"] == "upstream"
    assert upstream_calls(mock_url) == 1


def test_no_full_id_number_in_the_gateway_log(gateway: httpx.Client) -> None:
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        gateway.post(LOOKUP, json={"so_dinh_danh": "001203012345", "ly_do": "hồ sơ 038088004567"})
        gateway.post(LOOKUP, json={"so_dinh_danh": "001203099999"})
        gateway.post(VERIFY, json={"so_dinh_danh": "079195001234", "ho_va_ten": "Trần Thị B"})
        gateway.post(VERIFY, json={"so_dinh_danh": "079195001234", "ngay_sinh": "1990"})
        relative = {
            "quan_he": "cha",
            "so_dinh_danh": "001075001111",
            "ho_va_ten": "Nguyễn Văn Bình",
        }
        gateway.post(RELATIVES, json={"so_dinh_danh": "001203012345", "nguoi_than": [relative]})
    finally:
        logs.configure(LoggingSettings(level="warning"))
    text = stream.getvalue().decode()
    lines = [json.loads(line) for line in text.splitlines()]
    calls = [line for line in lines if line["event"] == "population_call"]
    assert [line["so_dinh_danh"] for line in calls] == [
        "001******345", "001******999", "079******234", "001******345"
    ]  # fmt: skip
    assert calls[-1]["operation"] == "XacMinhThongTinNhanThan"
    assert calls[0]["ly_do"] == "hồ sơ 038******567"
    assert len([line for line in lines if line["event"] == "request"]) == 5
    for full in ("001203012345", "001203099999", "079195001234", "038088004567", "001075001111"):
        assert full not in text
