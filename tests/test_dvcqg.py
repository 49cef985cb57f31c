"""The dvcqg adapter end to end: agency -> gateway (HTTP) -> adapter -> mock portal (HTTP).

One gateway, one mock portal and one agency system (that receives payment
callbacks) on loopback for the module; each test resets the mock and uses
its own dossier ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, post

from adapters.base import AdapterContext, GatewayRequest
from adapters.dvcqg import mock as portal_mock
from adapters.dvcqg.adapter import DvcqgAdapter
from adapters.dvcqg.settings import DvcqgSettings
from adapters.errors import RequestRejected
from gateway.app import create_app
from schemas.dvcqg import checksum
from tests.fixtures.dvcqg import opencps
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import free_port, serve_in_thread

CONFIG = """
storage: {{url: "sqlite:///DB"}}
delivery: {{backoff: 50ms, max_backoff: 100ms, poll_interval: 50ms}}
admin: {{api_keys: ["{admin_key}"]}}
clients:
  - {{id: agency-a, name: Agency A, api_keys: ["{test_key}"]}}
upstreams:
  portal:
    type: dvcqg
    base_url: MOCK
    username: lgsp-demo
    password: "${{DVCQG_TEST_PASSWORD:-demo}}"
    dstcode: H53
    madonvi: 000.00.11.H53
    payment:
      client_id: LGSP-H53-DEMO
      secret: "${{DVCQG_TEST_PAYGOV_SECRET:-demo-paygov-secret}}"
      notify_upstream: motcua
  portal-bad-login:
    type: dvcqg
    base_url: MOCK
    username: lgsp-demo
    password: not-the-password
    dstcode: H53
    madonvi: 000.00.11.H53
  portal-misordered:
    type: dvcqg
    base_url: MOCK
    username: lgsp-demo
    password: demo
    dstcode: H53
    madonvi: 000.00.11.H53
    payment:
      client_id: LGSP-H53-DEMO
      secret: demo-paygov-secret
      request_fields: [transaction_id, client_id, trans_amount, command, version, locale, country_code, currency_code, bill_info]
  motcua: {{type: http, base_url: AGENCY}}
routes:
  - {{id: dossier-sync, match: {{method: POST, path: /v1/dvcqg/dossiers}}, clients: [agency-a], upstream: portal, operation: DongBoHoSoMC, request: {{schema: dvcqg.DongBoHoSoMC}}}}
  - {{id: dossier-progress, match: {{method: POST, path: /v1/dvcqg/progress}}, clients: [agency-a], upstream: portal, operation: CapNhatTienDoHoSoMC, request: {{schema: dvcqg.CapNhatTienDoHoSoMC}}}}
  - {{id: dossier-lookup, match: {{method: GET, path: "/v1/dvcqg/dossiers/{{ma_ho_so}}"}}, clients: [agency-a], upstream: portal, operation: TraCuuHoSo, timeout: 500ms}}
  - {{id: procedures, match: {{method: GET, path: /v1/dvcqg/procedures}}, clients: [agency-a], upstream: portal, operation: LayDanhSachTTHC}}
  - {{id: procedure, match: {{method: GET, path: "/v1/dvcqg/procedures/{{ma_tthc}}"}}, clients: [agency-a], upstream: portal, operation: LayThuTuc}}
  - {{id: agencies, match: {{method: GET, path: /v1/dvcqg/agencies}}, clients: [agency-a], upstream: portal, operation: LayDanhMucCoQuan}}
  - {{id: fields, match: {{method: GET, path: /v1/dvcqg/fields}}, clients: [agency-a], upstream: portal, operation: LayDanhMucLinhVuc}}
  - {{id: question-sync, match: {{method: POST, path: /v1/dvcqg/questions}}, clients: [agency-a], upstream: portal, operation: DongBoHoiDap}}
  - {{id: questions, match: {{method: GET, path: /v1/dvcqg/questions}}, clients: [agency-a], upstream: portal, operation: LayDanhSachHoiDapGuiTuDVCQG}}
  - {{id: payment, match: {{method: POST, path: /v1/dvcqg/payments}}, clients: [agency-a], upstream: portal, operation: paygov.create, request: {{schema: dvcqg.ThanhToanHoSo}}}}
  - {{id: payment-callback, match: {{method: POST, path: /v1/dvcqg/payments/callback}}, clients: [agency-a], public: true, upstream: portal, operation: paygov.callback}}
  - {{id: bad-login, match: {{method: GET, path: /v1/bad/procedures}}, clients: [agency-a], upstream: portal-bad-login, operation: LayDanhSachTTHC}}
  - {{id: misordered, match: {{method: POST, path: /v1/misordered/payments}}, clients: [agency-a], upstream: portal-misordered, operation: paygov.create}}
"""
KEY = {"x-api-key": TEST_KEY}
ADMIN = {"x-api-key": TEST_ADMIN_KEY}


class Agency:
    """The one-stop-shop system: receives verified payment callbacks from the gateway."""

    def __init__(self) -> None:
        self.received: list[tuple[str | None, dict[str, Any]]] = []

        @post("/paygov/callback", status_code=200)
        async def paid(request: Request[Any, Any, Any]) -> dict[str, str]:
            body = msgspec.json.decode(await request.body())
            self.received.append((request.headers.get("idempotency-key"), body))
            return {"status": "OK"}

        self.app = Litestar([paid])


class Setup:
    def __init__(self, gateway: str, mock: str, agency: Agency) -> None:
        self.gateway = httpx.Client(base_url=gateway, timeout=10)
        self.mock = httpx.Client(base_url=mock, timeout=10)
        self.mock_url = mock
        self.agency = agency

    def requests(self, operation: str) -> int:
        counted: int = self.mock.get("/__mock/stats").json()["requests"].get(operation, 0)
        return counted


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("dvcqg")
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    agency = Agency()
    portal = portal_mock.create_app(callback_url=f"{gateway_url}/v1/dvcqg/payments/callback")
    with serve_in_thread(portal) as mock_url, serve_in_thread(agency.app) as agency_url:
        text = (
            CONFIG.replace("DB", f"{tmp}/gateway.db")
            .replace("MOCK", mock_url)
            .replace("AGENCY", agency_url)
        )
        app = create_app(str(write_config(tmp, text)))
        with serve_in_thread(app, port=port):
            yield Setup(gateway_url, mock_url, agency)


@pytest.fixture
def gw(setup: Setup) -> Setup:
    setup.mock.post("/__mock/reset")
    return setup


def dossier(ma_ho_so: str, status: int) -> dict[str, Any]:
    return {
        "MaHoSo": ma_ho_so,
        "MaTTHC": "1.001612",
        "TenTTHC": "Đăng ký khai sinh",
        "ChuHoSo": "Nguyễn Văn Demo",
        "NgayTiepNhan": "20261122083000",
        "NgayHenTra": "20261127170000",
        "TrangThaiHoSo": status,
    }


def step(ma_ho_so: str, status: int) -> dict[str, Any]:
    return {
        "MaHoSo": ma_ho_so,
        "NguoiXuLy": "Cán bộ một cửa (demo)",
        "ThoiDiemXuLy": "20261123090000",
        "NoiDungXuLy": "Chuyển phòng chuyên môn xử lý",
        "TrangThai": status,
    }


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


# --- dossiers ---


def test_dossier_sync_progress_and_lookup(gw: Setup) -> None:
    ma = "000.00.11.H53-261122-0101"
    synced = gw.gateway.post("/v1/dvcqg/dossiers", json=dossier(ma, 2), headers=KEY)
    assert synced.status_code == 200, synced.text
    answer = synced.json()
    assert answer["message"] == "Đồng bộ hồ sơ thành công"
    assert (answer["MaHoSo"], answer["TrangThaiHoSo"]) == (ma, 2)
    assert len(answer["ThoiGianDongBo"]) == 14
    assert "session" not in answer and "error_code" not in answer  # no envelope

    progressed = gw.gateway.post("/v1/dvcqg/progress", json=step(ma, 4), headers=KEY)
    assert progressed.status_code == 200, progressed.text
    assert progressed.json()["TrangThaiHoSo"] == 4

    found = gw.gateway.get(f"/v1/dvcqg/dossiers/{ma}", headers=KEY)
    assert found.status_code == 200, found.text
    record = found.json()
    assert (record["MaHoSo"], record["MaTTHC"], record["TrangThaiHoSo"]) == (ma, "1.001612", 4)
    assert "ChuHoSo" not in record  # the lookup answers the dossier, not its owner

    # The portal answers an unknown dossier with an empty result, not an error.
    missing = gw.gateway.get("/v1/dvcqg/dossiers/000.00.11.H53-000000-0000", headers=KEY)
    body = problem(missing, 404, "not_found")
    assert "no dossier 000.00.11.H53-000000-0000" in body["detail"]
    assert gw.requests("TraCuuHoSo") == 2


def test_status_regression_refused_before_the_portal_is_called(gw: Setup) -> None:
    ma = "000.00.11.H53-261122-0102"
    assert gw.gateway.post("/v1/dvcqg/dossiers", json=dossier(ma, 10), headers=KEY).is_success
    sent = gw.requests("DongBoHoSoMC")

    back = gw.gateway.post("/v1/dvcqg/dossiers", json=dossier(ma, 4), headers=KEY)
    body = problem(back, 409, "dossier_status_regression")
    assert "10 (result returned)" in body["detail"] and "4 (in progress)" in body["detail"]
    assert [e["path"] for e in body["errors"]] == ["$.TrangThaiHoSo"]
    assert gw.requests("DongBoHoSoMC") == sent  # never reached the portal

    step_back = gw.gateway.post("/v1/dvcqg/progress", json=step(ma, 3), headers=KEY)
    body = problem(step_back, 409, "dossier_status_regression")
    assert [e["path"] for e in body["errors"]] == ["$.TrangThai"]
    assert gw.requests("CapNhatTienDoHoSoMC") == 0

    same = gw.gateway.post("/v1/dvcqg/dossiers", json=dossier(ma, 10), headers=KEY)
    assert same.status_code == 200  # a repeat of the same status is fine


def test_portal_refusal_of_data_is_upstream_rejected_with_its_message(gw: Setup) -> None:
    """The portal knows a later status than the gateway does (synced by OpenCPS, say)."""
    ma = opencps.MA_HO_SO
    dstcode = {"dstcode": portal_mock.DEMO_DSTCODE}
    login = gw.mock.post(
        portal_mock.AUTH_PATH,
        json={"username": portal_mock.DEMO_USERNAME, "password": portal_mock.DEMO_PASSWORD},
        headers=dstcode,
    ).json()
    assert login["error_code"] == 0
    sync = {
        **opencps.OPENCPS_SYNC,
        "session": login["session"],
        "data": [{**opencps.OPENCPS_DOSSIER, "TrangThaiHoSo": "9"}],
    }
    # The mock, like the portal OpenCPS talks to, wants dstcode on every call.
    without = gw.mock.post(portal_mock.INTEGRATION_PATH, json=sync).json()
    assert without["error_code"] == "-1"
    direct = gw.mock.post(portal_mock.INTEGRATION_PATH, json=sync, headers=dstcode).json()
    assert direct["error_code"] == "00", direct

    refused = gw.gateway.post("/v1/dvcqg/dossiers", json={**dossier(ma, 5)}, headers=KEY)
    body = problem(refused, 422, "upstream_rejected")
    assert "không thể chuyển từ 9 về 5" in body["detail"]
    assert refused.headers["x-lgsp-error-source"] == "upstream"


def test_progress_of_an_unknown_dossier_is_rejected(gw: Setup) -> None:
    response = gw.gateway.post(
        "/v1/dvcqg/progress", json=step("000.00.11.H53-261122-0199", 4), headers=KEY
    )
    assert "Không tìm thấy hồ sơ" in problem(response, 422, "upstream_rejected")["detail"]


def test_invalid_dossier_is_refused_with_paths(gw: Setup) -> None:
    bad = {**dossier("000.00.11.H53-261122-0104", 11), "NgayTiepNhan": "2026-11-22"}
    body = problem(
        gw.gateway.post("/v1/dvcqg/dossiers", json=bad, headers=KEY), 422, "schema_invalid"
    )
    assert {e["path"] for e in body["errors"]} == {"$.TrangThaiHoSo", "$.NgayTiepNhan"}
    assert gw.requests("DongBoHoSoMC") == 0


# --- session ---


def test_expired_session_is_renewed_once_transparently(gw: Setup) -> None:
    assert gw.gateway.get("/v1/dvcqg/fields", headers=KEY).status_code == 200
    logins, calls = gw.requests("login"), gw.requests("LayDanhMucLinhVuc")
    assert logins >= 1
    expired = gw.mock.post("/__mock/sessions/expire").json()
    assert expired["expired"] >= 1

    again = gw.gateway.get("/v1/dvcqg/fields", headers=KEY)
    assert again.status_code == 200, again.text
    assert again.json()["items"]
    assert gw.requests("login") == logins + 1
    assert gw.requests("LayDanhMucLinhVuc") == calls + 2  # the refused call and its retry


def test_concurrent_calls_share_one_login(gw: Setup) -> None:
    assert gw.gateway.get("/v1/dvcqg/fields", headers=KEY).status_code == 200
    gw.mock.post("/__mock/sessions/expire")
    logins = gw.requests("login")
    url = f"{gw.gateway.base_url}/v1/dvcqg/agencies"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: httpx.get(url, headers=KEY).status_code, range(8)))
    assert statuses == [200] * 8
    assert gw.requests("login") == logins + 1


def test_refused_login_is_upstream_auth_failed(gw: Setup) -> None:
    response = gw.gateway.get("/v1/bad/procedures", headers=KEY)
    body = problem(response, 502, "upstream_auth_failed")
    assert "refused the gateway's login" in body["detail"]
    assert "not-the-password" not in response.text
    assert gw.requests("LayDanhSachTTHC") == 0


# --- catalogues and questions ---


def test_catalogues(gw: Setup) -> None:
    procedures = gw.gateway.get("/v1/dvcqg/procedures", headers=KEY).json()["items"]
    birth = next(p for p in procedures if p["MaTTHC"] == "1.001612")
    assert birth["TenTTHC"] == "Đăng ký khai sinh"
    assert birth["TenLinhVuc"] == "Hộ tịch"

    building = gw.gateway.get(
        "/v1/dvcqg/procedures", params={"MaLinhVuc": "G09-XD01"}, headers=KEY
    ).json()["items"]
    assert [p["MaTTHC"] for p in building] == ["1.009994"]

    agencies = gw.gateway.get(
        "/v1/dvcqg/agencies", params={"MaCoQuanCha": "000.00.11.H53"}, headers=KEY
    ).json()["items"]
    assert {a["MaCoQuan"] for a in agencies} == {"000.11.30.H53", "000.11.35.H53", "000.20.21.H53"}

    fields = gw.gateway.get("/v1/dvcqg/fields", headers=KEY).json()["items"]
    assert {"MaLinhVuc": "G09-TP02", "TenLinhVuc": "Hộ tịch", "MaNganh": "TP"} in fields

    one = gw.gateway.get("/v1/dvcqg/procedures/1.009994", headers=KEY)
    assert one.status_code == 200, one.text
    assert one.json() == {
        "MaTTHC": "1.009994",
        "TenTTHC": "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
        "MaLinhVuc": "G09-XD01",
        "TenLinhVuc": "Hoạt động xây dựng",
        "MaCoQuan": "000.11.35.H53",
        "CapThucHien": "Cấp huyện",
        "MucDo": 3,
        "ThoiHanGiaiQuyet": "15 ngày",
        "LinhVucThucHien": [{"MaLinhVuc": "G09-XD01", "TenLinhVuc": "Hoạt động xây dựng"}],
    }
    problem(gw.gateway.get("/v1/dvcqg/procedures/9.999999", headers=KEY), 404, "not_found")
    assert gw.requests("LayThuTuc") == 2

    unknown = gw.gateway.get("/v1/dvcqg/procedures", params={"Foo": "1"}, headers=KEY)
    body = problem(unknown, 422, "schema_invalid")
    assert body["errors"][0]["path"] == "$query.Foo"


def test_questions(gw: Setup) -> None:
    question = {
        "MaCauHoi": "HD-H53-2026-0001",
        "TieuDe": "Lệ phí đăng ký khai sinh",
        "NoiDungCauHoi": "Đăng ký khai sinh đúng hạn có mất lệ phí không?",
        "NgayGui": "20261121100000",
        "NoiDungTraLoi": "Đăng ký khai sinh đúng hạn được miễn lệ phí.",
        "NgayTraLoi": "20261122100000",
    }
    synced = gw.gateway.post("/v1/dvcqg/questions", json=question, headers=KEY)
    assert synced.status_code == 200, synced.text
    assert synced.json()["MaCauHoi"] == "HD-H53-2026-0001"
    assert synced.json()["message"] == "Đồng bộ hỏi đáp thành công"
    sent = gw.requests("DongBoHoiDap")

    from_portal = gw.gateway.get(
        "/v1/dvcqg/questions", params={"TuNgay": "20261119000000"}, headers=KEY
    ).json()["items"]
    assert [q["MaCauHoi"] for q in from_portal] == ["HD-DVCQG-000102"]

    # This route has no schema: the adapter itself refuses bad input, with paths.
    bad = {**question, "NgayGui": "hôm qua", "Extra": 1}
    body = problem(
        gw.gateway.post("/v1/dvcqg/questions", json=bad, headers=KEY), 422, "schema_invalid"
    )
    assert {e["path"] for e in body["errors"]} == {"$.NgayGui", "$.Extra"}
    garbage = gw.gateway.post(
        "/v1/dvcqg/questions",
        content=b"{not json",
        headers={**KEY, "content-type": "application/json"},
    )
    problem(garbage, 400, "malformed_body")
    assert gw.requests("DongBoHoiDap") == sent


# --- payments ---

BILL = {
    "MaHoSo": "000.00.11.H53-261122-0201",
    "MaTTHC": "1.009994",
    "TenTTHC": "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
    "PhiLePhi": [
        {
            "LoaiPhiLePhi": 2,
            "MaPhiLePhi": "LP-XD-01",
            "TenPhiLePhi": "Lệ phí cấp phép",
            "SoTien": 75000,
        },
        {
            "LoaiPhiLePhi": 1,
            "MaPhiLePhi": "PH-XD-02",
            "TenPhiLePhi": "Phí thẩm định",
            "SoTien": 25000,
        },
    ],
    "TKThuHuong": "3511.0.1234567",
    "MaNHThuHuong": "KBNN",
    "TenTKThuHuong": "Sở Xây dựng (demo)",
    "HoTenNguoiNop": "Trần Thị Demo",
    "SoCMNDNguoiNop": "000000000000",
    "DiaChiNguoiNop": "Số 1 đường Demo, xã An Bình",
    "MaCoQuanQD": "000.11.35.H53",
    "TenCoQuanQD": "Sở Xây dựng (demo)",
    "KhoBac": "0011",
}


def test_payment_created_paid_and_forwarded_to_the_agency(gw: Setup) -> None:
    created = gw.gateway.post(
        "/v1/dvcqg/payments", json={**BILL, "transaction_id": "H53-PAY-0001"}, headers=KEY
    )
    assert created.status_code == 200, created.text
    payment = created.json()
    assert payment["transaction_id"] == "H53-PAY-0001"
    assert payment["trans_amount"] == 100000
    assert payment["payment_url"].endswith("/paygov/checkout/H53-PAY-0001")

    paid = gw.mock.post("/__mock/payments/H53-PAY-0001/pay", json={}).json()
    assert paid["callback_status"] == 200, paid
    assert paid["acknowledged"] is True

    deadline = time.monotonic() + 10
    while not gw.agency.received:
        assert time.monotonic() < deadline, "the callback was not delivered to the agency"
        time.sleep(0.05)
    key, report = gw.agency.received[-1]
    assert key  # delivered with an idempotency key
    assert report["transaction_id"] == "H53-PAY-0001"
    assert report["MaHoSo"] == BILL["MaHoSo"]
    assert (report["paid"], report["trans_amount"]) == (True, 100000)
    assert "checksum" not in report


def test_forged_or_unsigned_callback_is_refused_and_recorded(gw: Setup) -> None:
    created = gw.gateway.post(
        "/v1/dvcqg/payments", json={**BILL, "transaction_id": "H53-PAY-0002"}, headers=KEY
    )
    assert created.status_code == 200, created.text
    before = len(gw.agency.received)

    forged = gw.mock.post("/__mock/payments/H53-PAY-0002/pay", json={"forge": True}).json()
    assert forged["callback_status"] == 403
    assert forged["callback_answer"]["code"] == "checksum_invalid"
    assert forged["acknowledged"] is False

    unsigned = gw.gateway.post(  # no API key: the route is public, the checksum is the proof
        "/v1/dvcqg/payments/callback",
        json={"transaction_id": "H53-PAY-0002", "error_code": "00"},
    )
    problem(unsigned, 403, "checksum_invalid")

    records = gw.gateway.get(
        "/admin/messages", params={"route": "payment-callback", "status": "403"}, headers=ADMIN
    ).json()["items"]
    assert len(records) >= 2
    assert {r["error_code"] for r in records} == {"checksum_invalid"}
    assert {r["client"] for r in records} == {"public"}
    time.sleep(0.3)
    assert len(gw.agency.received) == before  # nothing forwarded


def test_payment_checksum_with_the_wrong_field_order_is_refused_by_the_portal(gw: Setup) -> None:
    response = gw.gateway.post(
        "/v1/misordered/payments", json={**BILL, "transaction_id": "H53-PAY-0003"}, headers=KEY
    )
    body = problem(response, 502, "upstream_auth_failed")
    assert "Sai mã client hoặc checksum" in body["detail"]


def test_invalid_payment_request_is_refused_with_paths(gw: Setup) -> None:
    bad = {**BILL, "PhiLePhi": [], "SoCMNDNguoiNop": "12345"}
    body = problem(
        gw.gateway.post("/v1/dvcqg/payments", json=bad, headers=KEY), 422, "schema_invalid"
    )
    assert {e["path"] for e in body["errors"]} == {"$.PhiLePhi", "$.SoCMNDNguoiNop"}
    assert gw.requests("paygov.create") == 0


# --- faults ---


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"latency": "2s"}, 504, "upstream_timeout"),
        ({"status": 503}, 502, "upstream_error"),
        ({"drop": True}, 502, "upstream_unavailable"),
    ],
)
def test_portal_faults_map_to_gateway_errors(
    gw: Setup, fault: dict[str, Any], status: int, code: str
) -> None:
    assert gw.gateway.get("/v1/dvcqg/fields", headers=KEY).status_code == 200  # session open
    gw.mock.post("/__mock/faults", json={"operation": "TraCuuHoSo", "times": 1, **fault})
    response = gw.gateway.get("/v1/dvcqg/dossiers/000.00.11.H53-261122-0301", headers=KEY)
    problem(response, status, code)
    assert response.headers["x-lgsp-error-source"] == "upstream"


# --- the adapter alone ---


def test_without_a_host_the_regression_check_is_skipped_not_fatal(setup: Setup) -> None:
    settings = msgspec.convert(
        {
            "base_url": setup.mock_url,
            "username": portal_mock.DEMO_USERNAME,
            "password": portal_mock.DEMO_PASSWORD,
            "dstcode": portal_mock.DEMO_DSTCODE,
            "madonvi": portal_mock.DEMO_MADONVI,
        },
        DvcqgSettings,
    )
    adapter = DvcqgAdapter("portal", settings, AdapterContext(config_dir=".", schemas_dir="."))

    def sync(status: int) -> GatewayRequest:
        return GatewayRequest(
            operation="DongBoHoSoMC",
            method="POST",
            path="/",
            data=dossier("000.00.11.H53-261122-0401", status),
            deadline=time.monotonic() + 5,
        )

    async def run() -> tuple[int, Exception | None]:
        first = await adapter.handle(sync(2))
        try:
            await adapter.handle(sync(1))  # unchecked here: the portal refuses it itself
        except Exception as exc:
            return first.status, exc
        finally:
            await adapter.aclose()
        return first.status, None

    status, error = asyncio.run(run())
    assert status == 200
    assert error is not None and not isinstance(error, RequestRejected)
    assert "không thể chuyển từ 2 về 1" in str(error)


def test_checksum_depends_on_key_order_and_algorithm() -> None:
    values = {"a": "1", "b": 2, "c": {"y": 1, "x": [1, 2]}}
    sha1 = checksum(values, ["a", "b", "c"], "k", "hmac-sha1")
    assert len(sha1) == 40
    assert checksum(values, ["b", "a", "c"], "k", "hmac-sha1") != sha1
    assert checksum(values, ["a", "b", "c"], "other", "hmac-sha1") != sha1
    assert len(checksum(values, ["a", "b", "c"], "k", "hmac-sha256")) == 64
    reordered = {"c": {"x": [1, 2], "y": 1}, "b": 2, "a": "1"}
    assert checksum(reordered, ["a", "b", "c"], "k", "hmac-sha1") == sha1
