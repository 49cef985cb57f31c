"""``type: soap`` end to end: the gateway calls a SOAP server over real HTTP.

The server is a small ASGI app run by uvicorn on loopback, speaking the
population WSDL (``schemas/population/population.wsdl``); the gateway is the
real app on a temp config. Each test checks what a caller would see: status,
JSON fields, the problem ``code``, ``x-lgsp-error-source`` and the request id.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from lxml import etree

from gateway.app import create_app
from gateway.config.loader import ConfigInvalid, load_config
from gateway.runtime import build_runtime
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.servers import free_port, serve_in_thread

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
BCA = "http://dancuquocgia.bca"
MIC = "http://www.mic.gov.vn/dancu/1.0"
API_KEY = "soap-upstream-key-42"
KNOWN_ID = "001203012345"

CITIZEN = f"""\
<ns1:CongDan>
  <ns1:SoDinhDanh>{KNOWN_ID}</ns1:SoDinhDanh>
  <ns1:SoCMND>013456789</ns1:SoCMND>
  <ns1:HoVaTen><ns1:Ho>Nguyễn</ns1:Ho><ns1:ChuDem>Văn</ns1:ChuDem><ns1:Ten>An</ns1:Ten></ns1:HoVaTen>
  <ns1:GioiTinh>1</ns1:GioiTinh>
  <ns1:DanToc>01</ns1:DanToc>
  <ns1:NgayThangNamSinh><ns1:Nam>2003</ns1:Nam><ns1:NgayThangNam>20030517</ns1:NgayThangNam>
  </ns1:NgayThangNamSinh>
  <ns1:ThuongTru>
    <ns1:MaTinhThanh>01</ns1:MaTinhThanh><ns1:MaQuanHuyen>001</ns1:MaQuanHuyen>
    <ns1:MaPhuongXa>00001</ns1:MaPhuongXa><ns1:ChiTiet>Số 1 Tràng Tiền</ns1:ChiTiet>
    <ns1:QuocGia>VN</ns1:QuocGia>
  </ns1:ThuongTru>
  <ns1:QuocTich>VN</ns1:QuocTich>
  <ns1:ChuHo><ns1:QuanHe>Chủ hộ</ns1:QuanHe><ns1:SoDinhDanh>{KNOWN_ID}</ns1:SoDinhDanh>
  </ns1:ChuHo>
  <ns1:SoSoHoKhau>HK-0001</ns1:SoSoHoKhau>
</ns1:CongDan>"""


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}">'
        f"<soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


class Call:
    def __init__(self, headers: dict[str, str], operation: str, fields: dict[str, str]) -> None:
        self.headers = headers
        self.operation = operation
        self.fields = fields


class PopulationServer:
    """A fake national population service; ``mode`` picks how it answers."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: list[Call] = []
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]  # startup / shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = etree.fromstring(body)
        soap_body = request.find(f"{{{SOAP_ENV}}}Body")
        assert soap_body is not None
        operation_element = soap_body[0]
        fields = {etree.QName(e).localname: e.text or "" for e in operation_element.iter()}
        self.calls.append(Call(headers, etree.QName(operation_element).localname, fields))
        status, content_type, answer = await self.answer(self.calls[-1])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def answer(self, call: Call) -> tuple[int, str, bytes]:
        xml = "text/xml; charset=utf-8"
        if self.mode == "slow":
            started = time.monotonic()
            while not self.release.is_set() and time.monotonic() - started < 2:
                await asyncio.sleep(0.02)
        if self.mode == "fault":
            fault = (
                "<soapenv:Fault><faultcode>soapenv:Server</faultcode>"
                "<faultstring>Hệ thống CSDL dân cư đang bảo trì</faultstring></soapenv:Fault>"
            )
            return 500, xml, envelope(fault)
        if self.mode == "http500":
            return 500, "text/plain", b"Internal Server Error"
        if self.mode == "malformed":
            return 200, xml, b"<soapenv:Envelope xmlns:soapenv='" + SOAP_ENV.encode() + b"'><oops"
        found = call.fields.get("SoDinhDanh") == KNOWN_ID
        if call.operation == "XacThucThongTinCongDan":
            matches = found and call.fields.get("HoVaTen") == "Nguyễn Văn An"
            body = f'<dan:KetQuaXacThuc xmlns:dan="{BCA}"><dan:TonTai>{str(matches).lower()}'
            return 200, xml, envelope(body + "</dan:TonTai></dan:KetQuaXacThuc>")
        citizens = CITIZEN if found else ""
        collection = f'<ns1:CongdanCollection xmlns:ns1="{MIC}">{citizens}</ns1:CongdanCollection>'
        return 200, xml, envelope(collection)


GATEWAY = (
    BASE_CONFIG
    + """\
upstreams:
  population:
    type: soap
    wsdl: population/population.wsdl
    address: ADDRESS
    headers:
      ApiKey: ${{SOAP_TEST_KEY}}
routes:
  - id: population-lookup
    match: {{method: POST, path: /v1/population/lookup}}
    clients: [agency-a]
    upstream: population
    operation: OPERATION
    timeout: TIMEOUT
  - id: population-verify
    match: {{method: POST, path: /v1/population/verify}}
    clients: [agency-a]
    upstream: population
    operation: XacThucThongTinCongDan
    timeout: 2s
"""
)


def gateway_config(
    directory: Path,
    address: str,
    *,
    operation: str = "TraCuuThongTinCongDan",
    timeout: str = "2s",
    wsdl: str = "population/population.wsdl",
) -> Path:
    text = (
        GATEWAY.replace("ADDRESS", address)
        .replace("OPERATION", operation)
        .replace("TIMEOUT", timeout)
        .replace("population/population.wsdl", wsdl)
    )
    return write_config(directory, text)


ENVIRON = {"SOAP_TEST_KEY": API_KEY}
HEADERS = {"X-API-Key": TEST_KEY, "X-Request-ID": "req-soap-0001"}
LOOKUP = {"MaYeuCau": "YC-0001", "MaTichHop": "037", "SoDinhDanh": KNOWN_ID}


@pytest.fixture(autouse=True)
def soap_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def upstream() -> Iterator[tuple[PopulationServer, str]]:
    server = PopulationServer()
    with serve_in_thread(server) as url:
        try:
            yield server, f"{url}/population"
        finally:
            server.release.set()


@contextmanager
def gateway(directory: Path, address: str, **options: str) -> Iterator[TestClient[Any]]:
    path = gateway_config(directory, address, **options)
    with TestClient(create_app(str(path))) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str, source: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-lgsp-error-source"] == source
    assert response.headers["x-request-id"] == HEADERS["X-Request-ID"]
    problem = response.json()
    assert problem["code"] == code
    assert problem["request_id"] == HEADERS["X-Request-ID"]


def test_lookup_of_a_known_citizen_answers_its_fields_as_json(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    with gateway(tmp_path, address) as client:
        response = client.post("/v1/population/lookup", json=LOOKUP, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"] == "req-soap-0001"
    (citizen,) = response.json()["CongDan"]
    assert citizen["SoDinhDanh"] == KNOWN_ID
    assert citizen["HoVaTen"] == {"Ho": "Nguyễn", "ChuDem": "Văn", "Ten": "An"}
    assert citizen["NgayThangNamSinh"] == {"Nam": "2003", "NgayThangNam": "20030517"}
    assert citizen["ThuongTru"]["ChiTiet"] == "Số 1 Tràng Tiền"
    assert citizen["ChuHo"]["QuanHe"] == "Chủ hộ"
    assert citizen["Cha"] is None  # absent in the answer: null, not dropped
    # The JSON body became the operation's arguments, in the WSDL's namespace.
    (call,) = server.calls
    assert call.operation == "TraCuuThongTinCongDan"
    assert call.fields["SoDinhDanh"] == KNOWN_ID
    assert call.fields["MaYeuCau"] == "YC-0001"
    assert call.fields["MaTichHop"] == "037"


def test_lookup_of_an_unknown_citizen_answers_an_empty_collection(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    _, address = upstream
    with gateway(tmp_path, address) as client:
        body = {**LOOKUP, "SoDinhDanh": "079195001234"}
        response = client.post("/v1/population/lookup", json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    # The collection's attributes (anhnbt's CongdanCollection.xsd) come too, null if absent.
    assert response.json() == {
        "CongDan": [], "SoCongDan": None, "GhiChu": None, "ThoiDiemDuLieu": None, "id": None
    }  # fmt: skip


def test_verify_answers_an_object_with_ton_tai(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    declared = {**LOOKUP, "HoVaTen": "Nguyễn Văn An", "NgayThangNamSinh": {"Nam": "2003"}}
    with gateway(tmp_path, address) as client:
        match = client.post("/v1/population/verify", json=declared, headers=HEADERS)
        other = {**declared, "HoVaTen": "Trần Thị Bình"}
        mismatch = client.post("/v1/population/verify", json=other, headers=HEADERS)
    assert match.status_code == 200, match.text
    assert match.json() == {"TonTai": True}
    assert mismatch.status_code == 200, mismatch.text
    assert mismatch.json() == {"TonTai": False}
    assert [c.operation for c in server.calls] == ["XacThucThongTinCongDan"] * 2
    assert server.calls[0].fields["Nam"] == "2003"


def test_configured_headers_and_request_id_reach_the_soap_server_over_loopback(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    app = create_app(str(gateway_config(tmp_path, address)))
    with serve_in_thread(app) as base, httpx.Client(base_url=base) as client:
        first = client.post("/v1/population/lookup", json=LOOKUP, headers=HEADERS)
        again = {**HEADERS, "X-Request-ID": "req-soap-0002"}
        second = client.post("/v1/population/lookup", json=LOOKUP, headers=again)
    assert first.status_code == 200, first.text
    assert first.headers["x-request-id"] == "req-soap-0001"
    assert second.headers["x-request-id"] == "req-soap-0002"
    assert len(server.calls) == 2
    for call, request_id in zip(server.calls, ["req-soap-0001", "req-soap-0002"], strict=True):
        assert call.headers["apikey"] == API_KEY
        assert call.headers["x-request-id"] == request_id
        assert call.headers["x-lgsp-client"] == "agency-a"
        assert call.headers["content-type"].startswith("text/xml")
        assert call.headers["soapaction"] == '""'  # the WSDL's soapAction, as C06 sends it
        # The caller's gateway credential never travels upstream.
        assert TEST_KEY not in call.headers.values()


@pytest.mark.parametrize(
    ("mode", "evidence"),
    [
        ("fault", "bảo trì"),  # the SOAP fault's own message
        ("http500", '"upstream_status":500'),  # a non-SOAP 500
        ("malformed", "malformed XML"),
    ],
)
def test_unusable_answers_are_upstream_errors(
    upstream: tuple[PopulationServer, str], tmp_path: Path, mode: str, evidence: str
) -> None:
    server, address = upstream
    server.mode = mode
    with gateway(tmp_path, address) as client:
        response = client.post("/v1/population/lookup", json=LOOKUP, headers=HEADERS)
    assert_problem(response, 502, "upstream_error", "upstream")
    assert evidence in response.text


def test_nothing_listening_is_upstream_unavailable(tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}/population"
    with gateway(tmp_path, address) as client:
        response = client.post("/v1/population/lookup", json=LOOKUP, headers=HEADERS)
    assert_problem(response, 502, "upstream_unavailable", "upstream")


def test_server_slower_than_the_route_timeout_is_upstream_timeout(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    server.mode = "slow"
    with gateway(tmp_path, address, timeout="300ms") as client:
        started = time.monotonic()
        response = client.post("/v1/population/lookup", json=LOOKUP, headers=HEADERS)
        elapsed = time.monotonic() - started
    assert_problem(response, 504, "upstream_timeout", "upstream")
    assert elapsed < 1.5
    assert len(server.calls) == 1


def test_operation_missing_from_the_wsdl_is_an_upstream_error(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    with gateway(tmp_path, address, operation="TraCuuCongDanKhongCo") as client:
        response = client.post("/v1/population/lookup", json=LOOKUP, headers=HEADERS)
    assert_problem(response, 502, "upstream_error", "upstream")
    assert "TraCuuCongDanKhongCo" in response.json()["detail"]
    assert server.calls == []


def test_body_fields_the_wsdl_does_not_know_are_refused_before_any_call(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    with gateway(tmp_path, address) as client:
        unknown = client.post(
            "/v1/population/lookup", json={**LOOKUP, "so_dinh_danh": KNOWN_ID}, headers=HEADERS
        )
        missing = client.post(
            "/v1/population/lookup", json={"SoDinhDanh": KNOWN_ID}, headers=HEADERS
        )
        not_json = client.post(
            "/v1/population/lookup",
            content=b"SoDinhDanh=001203012345",
            headers={**HEADERS, "content-type": "application/x-www-form-urlencoded"},
        )
    assert_problem(unknown, 422, "schema_invalid", "gateway")
    assert "so_dinh_danh" in unknown.json()["detail"]
    assert_problem(missing, 422, "schema_invalid", "gateway")
    assert "MaYeuCau" in missing.json()["detail"]
    assert_problem(not_json, 400, "malformed_body", "gateway")
    assert server.calls == []


def test_missing_wsdl_is_a_config_error_naming_the_upstream(tmp_path: Path) -> None:
    path = gateway_config(tmp_path, "http://127.0.0.1:9/x", wsdl="population/nope.wsdl")
    with pytest.raises(ConfigInvalid) as caught:
        build_runtime(load_config(str(path), ENVIRON))
    (issue,) = caught.value.issues
    assert issue.path == "upstreams.population"
    assert "nope.wsdl" in issue.message


def test_wsdl_imports_are_never_fetched_from_the_network(
    upstream: tuple[PopulationServer, str], tmp_path: Path
) -> None:
    server, address = upstream
    base = address.rsplit("/", 1)[0]
    (tmp_path / "remote.wsdl").write_text(
        f"""<?xml version="1.0"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" targetNamespace="urn:x">
  <wsdl:types>
    <xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x">
      <xsd:import namespace="urn:y" schemaLocation="{base}/remote.xsd"/>
    </xsd:schema>
  </wsdl:types>
</wsdl:definitions>
""",
        encoding="utf-8",
    )
    path = gateway_config(tmp_path, address, wsdl="remote.wsdl")
    with pytest.raises(ConfigInvalid) as caught:
        build_runtime(load_config(str(path), ENVIRON))
    (issue,) = caught.value.issues
    assert issue.path == "upstreams.population"
    assert server.calls == []
