"""The population adapter against public code's wire, not against our mock.

The adapter runs on an httpx transport that records each request and answers
with ``tests/fixtures/population/public.py``: the request must be what C06
sends for the same lookup (bytes, once C06's indentation is removed, and
headers at a fixed clock), and anhnbt's ``CongdanCollection`` must read into
our JSON face, however many elements we do not know it carries.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from typing import Any

import httpx
import msgspec
import pytest

from adapters.base import AdapterContext, GatewayRequest
from adapters.population import adapter as population
from gateway import logs
from gateway.config.model import LoggingSettings
from tests.fixtures.population import public

ADDRESS = "https://dancu.example.vn/api/dancu"
AUTH_URL = "https://dancu.example.vn/xacthuc"
CLOCK = 1_764_472_500_000
SETTINGS: dict[str, Any] = {
    "address": ADDRESS,
    "auth_url": AUTH_URL,
    "user": "lgsp-tinh",
    "secret": "s3cr3t",
    "x_road_client": "VN/GOV/000.00.11.H53/LGSP",
    "api_key": "key-1",
    "ma_dvc": "VPCP",
    "ma_can_bo": "lgsp-gateway",
    "ma_don_vi": "000.00.11.H53",
    "tai_khoan": "motcua.h53",
    "so_dien_thoai": "0",
}


class Service:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(
            200, content=self.answer.encode(), headers={"content-type": "text/xml"}
        )


def run(service: Service, operation: str, body: dict[str, Any], **settings: Any) -> Any:
    config = msgspec.convert({**SETTINGS, **settings}, population.PopulationSettings)
    adapter = population.PopulationAdapter(
        "population", config, AdapterContext(config_dir=".", schemas_dir=".")
    )

    async def call() -> Any:
        real = adapter.http
        adapter.http = httpx.AsyncClient(transport=httpx.MockTransport(service))
        try:
            answer = await adapter.handle(
                GatewayRequest(
                    operation=operation,
                    method="POST",
                    path="/",
                    data=body,
                    request_id="req-c06-0001",
                    client_id="motcua-demo",
                    deadline=time.monotonic() + 5,
                )
            )
            return msgspec.json.decode(answer.body)
        finally:
            await real.aclose()
            await adapter.aclose()

    return asyncio.run(call())


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(population, "_timestamp_ms", lambda: CLOCK)


def test_a_lookup_is_the_request_c06_sends() -> None:
    service = Service(public.ANHNBT_COLLECTION)
    declared = {"so_dinh_danh": "001203012345", "ho_va_ten": "Nguyễn Văn An"}
    run(service, "lookup", {**declared, "ngay_sinh": "2003-05-17"})
    (sent,) = service.sent
    c06 = public.c06_lookup(
        "req-c06-0001",
        ma_can_bo="lgsp-gateway",
        ma_don_vi="000.00.11.H53",
        tai_khoan="motcua.h53",
        so_dinh_danh="001203012345",
        ho_va_ten="Nguyễn Văn An",
        nam_sinh="20030517",
    )
    assert sent.content == re.sub(r">\s+<", "><", c06).encode()
    expected = public.c06_headers(
        url_xacthuc=AUTH_URL,
        user="lgsp-tinh",
        secret="s3cr3t",
        x_road_client="VN/GOV/000.00.11.H53/LGSP",
        api_key="key-1",
        timestamp=CLOCK,
    )
    assert {name: sent.headers.get(name) for name in expected} == expected
    assert str(sent.url) == ADDRESS


def test_anhnbt_collection_reads_with_parents_and_attributes() -> None:
    answer = run(Service(public.ANHNBT_COLLECTION), "lookup", {"so_dinh_danh": "001203012345"})
    citizen = answer["cong_dan"]
    assert citizen["ho_va_ten"]["day_du"] == "Nguyễn Văn An"
    assert citizen["ngay_sinh"] == "2003-05-17"
    assert citizen["so_cmnd"] is None  # <SoCMND></SoCMND>: absent
    assert citizen["cha"] == {
        "ho_va_ten": "Nguyễn Văn Bình",
        "so_dinh_danh": "001075001111",
        "so_cmnd": None,
        "quoc_tich": "VN",
    }
    assert citizen["me"]["ho_va_ten"] == "Lê Thị Hoa"
    assert answer["thoi_diem_du_lieu"] == "2026-11-30T10:15:00.000+07:00"


def test_unknown_elements_are_logged_once_and_never_fatal() -> None:
    extra = public.ANHNBT_COLLECTION.replace(
        "<ns3:SoCMND></ns3:SoCMND>",
        "<ns3:SoDinhDanhCu>012345678</ns3:SoDinhDanhCu><ns3:SoCMND></ns3:SoCMND>",
    ).replace(
        "<ns3:QuocTich>VN</ns3:QuocTich>",
        "<ns3:QuocTich>VN</ns3:QuocTich><ns3:DanToc>Kinh</ns3:DanToc>",
        1,
    )
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        config = msgspec.convert(SETTINGS, population.PopulationSettings)
        adapter = population.PopulationAdapter(
            "population", config, AdapterContext(config_dir=".", schemas_dir=".")
        )
        answers = []

        async def twice() -> None:
            real = adapter.http
            adapter.http = httpx.AsyncClient(transport=httpx.MockTransport(Service(extra)))
            for _ in range(2):
                request = GatewayRequest(
                    operation="lookup",
                    method="POST",
                    path="/",
                    data={"so_dinh_danh": "001203012345"},
                    deadline=time.monotonic() + 5,
                )
                answers.append(msgspec.json.decode((await adapter.handle(request)).body))
            await real.aclose()
            await adapter.aclose()

        asyncio.run(twice())
    finally:
        logs.configure(LoggingSettings(level="warning"))
    assert [a["cong_dan"]["cha"]["ho_va_ten"] for a in answers] == ["Nguyễn Văn Bình"] * 2
    lines = [json.loads(line) for line in stream.getvalue().decode().splitlines()]
    unknown = [line["element"] for line in lines if line["event"] == "population_unknown_element"]
    assert unknown == ["CongDan/SoDinhDanhCu", "CongDan/Cha/DanToc"]
    assert "012345678" not in stream.getvalue().decode()  # names only, never values


def test_suffixed_verify_reads_anhnbt_answer() -> None:
    service = Service(public.ANHNBT_VERIFY_ANSWER)
    answer = run(
        service,
        "verify",
        {"so_dinh_danh": "079195001234", "ho_va_ten": "Trần Thị Bích Ngọc"},
        verify_profile="suffixed",
        ma_dvc="033",
    )
    assert answer["khop"] is True
    body = service.sent[0].content.decode()
    assert "<dan:XacThucThongTinCongDanRequest><dan:MaYeuCau>req-c06-0001</dan:MaYeuCau>" in body
    assert "<dan:MaDichVu>033</dan:MaDichVu><dan:MaCanBo>lgsp-gateway</dan:MaCanBo>" in body
    assert "MaTichHop" not in body and "MaDonVi" not in body  # not in anhnbt's request
