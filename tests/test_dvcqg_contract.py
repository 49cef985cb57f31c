"""The dvcqg adapter against the portal as OpenCPS shows it, not against our mock.

The adapter runs on an httpx transport that records each request and answers
with ``tests/fixtures/dvcqg/opencps.py`` (the public client's requests and the
portal's answers as that client reads them): what we send must equal what
OpenCPS sends for the same dossier, value for value and type for type, and
what the portal answers must read into our JSON face.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec
import pytest

from adapters.base import AdapterContext, GatewayRequest
from adapters.dvcqg.adapter import DvcqgAdapter
from adapters.dvcqg.settings import DvcqgSettings
from adapters.errors import UpstreamNotFound
from tests.fixtures.dvcqg import opencps

SETTINGS = {
    "base_url": "https://dvcqg.example.vn",
    "username": "lgsp-tinh",
    "password": "secret",
    "dstcode": "H53",
    "madonvi": opencps.MADONVI,
}
ANSWERS = {
    "DongBoHoSoMC": {"error_code": "00", "message": "Thành công"},
    "CapNhatTienDoHoSoMC": {"error_code": "00", "message": "Thành công"},
    "TraCuuHoSo": opencps.PORTAL_LOOKUP,
    "LayThuTuc": opencps.PORTAL_PROCEDURE,
    "LayDanhMucCoQuan": opencps.PORTAL_AGENCIES,
    "LayDanhMucLinhVuc": opencps.PORTAL_FIELDS,
    "LayDanhSachHoiDapGuiTuDVCQG": opencps.PORTAL_QUESTIONS,
}


class Portal:
    """Records every request; answers the login and each service from the fixtures."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []
        self.answers: dict[str, Any] = dict(ANSWERS)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if request.url.path == "/api/auth":
            return httpx.Response(200, json=opencps.PORTAL_LOGIN)
        service = msgspec.json.decode(request.content)["service"]
        return httpx.Response(200, json=self.answers[service])

    def calls(self) -> list[dict[str, Any]]:
        """The bodies of the service calls (the login left out)."""
        return [msgspec.json.decode(r.content) for r in self.sent if r.url.path != "/api/auth"]


def run(portal: Portal, operation: str, **request: Any) -> Any:
    settings = msgspec.convert(SETTINGS, DvcqgSettings)
    adapter = DvcqgAdapter("portal", settings, AdapterContext(config_dir=".", schemas_dir="."))
    adapter.portal.client = httpx.AsyncClient(transport=httpx.MockTransport(portal))

    async def call() -> Any:
        try:
            answer = await adapter.handle(
                GatewayRequest(
                    operation=operation,
                    method=request.pop("method", "GET"),
                    path="/",
                    deadline=time.monotonic() + 5,
                    **request,
                )
            )
            return msgspec.json.decode(answer.body)
        finally:
            await adapter.portal.client.aclose()
            await adapter.aclose()

    return asyncio.run(call())


def test_a_dossier_is_sent_as_opencps_sends_it() -> None:
    portal = Portal()
    answer = run(portal, "DongBoHoSoMC", method="POST", data=opencps.AGENCY_DOSSIER)
    assert portal.calls() == [opencps.OPENCPS_SYNC]
    # A receipt without result data still tells the agency what was synced.
    assert answer == {"message": "Thành công", "MaHoSo": opencps.MA_HO_SO, "TrangThaiHoSo": 4}


def test_dstcode_goes_with_every_request_not_only_the_login() -> None:
    portal = Portal()
    run(portal, "DongBoHoSoMC", method="POST", data=opencps.AGENCY_DOSSIER)
    assert [r.url.path for r in portal.sent] == ["/api/auth", "/api/integration"]
    assert [r.headers.get("dstcode") for r in portal.sent] == ["H53", "H53"]


def test_a_progress_step_is_sent_as_opencps_sends_it() -> None:
    portal = Portal()
    run(portal, "CapNhatTienDoHoSoMC", method="POST", data=opencps.AGENCY_STEP)
    assert portal.calls() == [opencps.OPENCPS_PROGRESS]


def test_lookup_sends_top_level_mahoso_and_reads_the_string_valued_record() -> None:
    portal = Portal()
    found = run(portal, "TraCuuHoSo", path_params={"ma_ho_so": opencps.MA_HO_SO})
    assert portal.calls() == [opencps.OPENCPS_LOOKUP]
    assert found == {
        "MaHoSo": opencps.MA_HO_SO,
        "SoBienNhan": "BN-0777",
        "MaTTHC": "1.001612",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G09-TP02",
        "TenLinhVuc": "Hộ tịch",
        "TrangThaiHoSo": 4,  # "4" on the wire
        "NgayTiepNhan": "20261122083000",
        "NgayHenTra": "20261127170000",  # NgayTra "" on the wire: absent
        "DonViXuLy": "UBND xã An Bình (demo)",
    }


def test_lookup_of_an_unknown_dossier_is_not_found() -> None:
    portal = Portal()
    portal.answers["TraCuuHoSo"] = opencps.PORTAL_LOOKUP_UNKNOWN
    with pytest.raises(UpstreamNotFound):
        run(portal, "TraCuuHoSo", path_params={"ma_ho_so": opencps.MA_HO_SO})


def test_lay_thu_tuc_sends_ma_tthc_and_maps_upper_case_keys() -> None:
    portal = Portal()
    procedure = run(portal, "LayThuTuc", path_params={"ma_tthc": "1.001612"})
    assert portal.calls() == [opencps.OPENCPS_PROCEDURE]
    assert procedure == {
        "MaTTHC": "1.001612",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G09-TP02",  # from LINHVUCTHUCHIEN[0], as OpenCPS reads it
        "TenLinhVuc": "Hộ tịch",
        "MucDo": 4,
        "LinhVucThucHien": [{"MaLinhVuc": "G09-TP02", "TenLinhVuc": "Hộ tịch"}],
    }


def test_catalogue_keys_are_mapped_and_numbers_read_as_text() -> None:
    agencies = run(Portal(), "LayDanhMucCoQuan")
    assert agencies == {
        "items": [{"MaCoQuan": "000.11.30.H53", "TenCoQuan": "Sở Tư pháp", "CapCoQuan": "2"}]
    }
    fields = run(Portal(), "LayDanhMucLinhVuc")
    assert fields == {
        "items": [{"MaLinhVuc": "G09-TP02", "TenLinhVuc": "Hộ tịch", "MaNganh": "TP"}]
    }
    questions = run(Portal(), "LayDanhSachHoiDapGuiTuDVCQG")
    assert questions == {
        "items": [
            {
                "MaCauHoi": "101",
                "NoiDungCauHoi": "Đăng ký khai sinh quá hạn có bị phạt không?",
                "MaLinhVuc": "G09-TP02",
                "MaCoQuan": "000.11.30.H53",
            }
        ]
    }
