"""``type: population``: the national population database, behind a clean JSON face.

Route operations:

- ``lookup``: body ``schemas.population.CitizenLookupRequest`` ->
  ``TraCuuThongTinCongDan`` -> ``CitizenLookupAnswer``; nobody found -> 404
  problem ``not_found``.
- ``verify``: body ``schemas.population.CitizenVerifyRequest`` ->
  ``XacThucThongTinCongDan`` -> ``CitizenVerifyAnswer`` (``khop``).

The body is checked again here, with every error's path, so a route without
``request.schema`` is no less safe: a bad ID never costs a national call.
MaYeuCau is the gateway's request id; the other request fields come from
settings. Errors: HTTP 401/403 -> ``upstream_auth_failed``; a ``Client``
SOAP fault (our data refused) -> ``upstream_rejected``; any other fault ->
``upstream_error``; network and deadline failures as for every adapter.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from adapters import bodies
from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
)
from adapters.httpclient import PoolSettings, TlsSettings
from adapters.logs import get_logger
from adapters.population import mapping
from adapters.population.auth import auth_headers
from adapters.soap import SoapClient, SoapFault
from schemas.population import CitizenLookupRequest, CitizenVerifyRequest
from schemas.population.answers import CitizenLookupAnswer, CitizenVerifyAnswer

log = get_logger(__name__)

LOOKUP = "TraCuuThongTinCongDan"
VERIFY = "XacThucThongTinCongDan"
_REFUSED_CREDENTIALS = (401, 403)
T = TypeVar("T", bound=msgspec.Struct)


class PopulationSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    address: str
    """The national service's endpoint (the WSDL's own address is a placeholder)."""
    wsdl: str = "population/population.wsdl"
    """Relative to the config file, else to ``schemas/``; the default is ours."""
    user: str
    """Account on the national data-exchange platform."""
    secret: str
    """Its secret, from ``${ENV}``: hashed into every request, never sent."""
    auth_url: str | None = None
    """The URL hashed with the secret (``authUrl``); default: ``address``."""
    x_road_client: str
    """``X-Road-Client`` header: the province's member/subsystem id on the platform."""
    api_key: str
    """``ApiKey`` header."""
    ma_tich_hop: str = "037"
    """MaTichHop: "037" in every public sample, meaning unconfirmed."""
    ma_don_vi: str | None = None
    """MaDonVi: the asking agency's code."""
    ma_can_bo: str | None = None
    """MaCanBo: the officer (or system account) on record for the calls."""
    tai_khoan: str | None = None
    """TaiKhoan: account name, where the platform wants one."""
    so_dien_thoai: str | None = None
    """SoDienThoai: contact phone of the officer."""
    ma_dvc: str | None = None
    """MaDVC when the body gives no ``ma_dvc``."""
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)


class PopulationAdapter:
    Settings = PopulationSettings

    def __init__(self, name: str, settings: PopulationSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.soap = SoapClient(
            name,
            wsdl=settings.wsdl,
            address=settings.address,
            tls=settings.tls,
            pool=settings.pool,
            context=context,
            headers=self._auth_headers,
        )
        self.operations: dict[str, Callable[[GatewayRequest], Awaitable[GatewayResponse]]] = {
            "lookup": self.lookup,
            "verify": self.verify,
        }

    def _auth_headers(self) -> dict[str, str]:
        s = self.settings
        return auth_headers(
            user=s.user,
            secret=s.secret,
            auth_url=s.auth_url or s.address,
            x_road_client=s.x_road_client,
            api_key=s.api_key,
            timestamp_ms=time.time_ns() // 1_000_000,
        )

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        operation = self.operations.get(request.operation)
        if operation is None:
            known = ", ".join(self.operations)
            raise UpstreamError(f"{self.name}: no operation {request.operation!r} ({known})")
        return await operation(request)

    async def lookup(self, request: GatewayRequest) -> GatewayResponse:
        query = _body(request, CitizenLookupRequest)
        data = await self._call(request, LOOKUP, query)
        found = (data or {}).get("CongDan") or []
        if not found:
            raise UpstreamNotFound("no citizen with this personal ID and declared data")
        answer = CitizenLookupAnswer(
            ma_yeu_cau=request.request_id, cong_dan=mapping.citizen(found[0])
        )
        return GatewayResponse(body=msgspec.json.encode(answer))

    async def verify(self, request: GatewayRequest) -> GatewayResponse:
        query = _body(request, CitizenVerifyRequest)
        data = await self._call(request, VERIFY, query)
        matches = (data or {}).get("TonTai")
        if not isinstance(matches, bool):
            raise UpstreamError(f"{self.name} answered {VERIFY} without TonTai")
        answer = CitizenVerifyAnswer(
            khop=matches,
            ma_yeu_cau=request.request_id,
            da_doi_chieu=mapping.compared_fields(query),
        )
        return GatewayResponse(body=msgspec.json.encode(answer))

    async def _call(self, request: GatewayRequest, operation: str, query: mapping.Query) -> Any:
        # Who asked for whom and why; the ID is masked by the log processor.
        log.info(
            "population_call",
            request_id=request.request_id,
            client=request.client_id,
            operation=operation,
            so_dinh_danh=query.so_dinh_danh,
            ma_dvc=query.ma_dvc or self.settings.ma_dvc,
            ly_do=query.ly_do,
        )
        arguments = {**self._envelope(request, query), **mapping.soap_query(query)}
        try:
            return await self.soap.call(request, operation, arguments)
        except SoapFault as fault:
            if fault.http_status in _REFUSED_CREDENTIALS:
                raise UpstreamAuthFailed(
                    f"{self.name} refused the gateway's credentials: {fault.detail}"
                ) from None
            if fault.fault_code.rpartition(":")[2] == "Client":
                raise UpstreamRejected(fault.detail) from None
            raise UpstreamError(fault.detail, upstream_status=fault.http_status) from None
        except UpstreamError as error:
            if error.upstream_status in _REFUSED_CREDENTIALS:
                raise UpstreamAuthFailed(
                    f"{self.name} refused the gateway's credentials (HTTP {error.upstream_status})"
                ) from None
            raise

    def _envelope(self, request: GatewayRequest, query: mapping.Query) -> dict[str, Any]:
        """Who asks, for which service: the request fields besides the search key."""
        s = self.settings
        fields = {
            "MaYeuCau": request.request_id,
            "MaDVC": query.ma_dvc or s.ma_dvc,
            "MaTichHop": s.ma_tich_hop,
            "MaCanBo": s.ma_can_bo,
            "MaDonVi": s.ma_don_vi,
            "TaiKhoan": s.tai_khoan,
            "SoDienThoai": s.so_dien_thoai,
        }
        return {k: v for k, v in fields.items() if v}

    async def check(self) -> UpstreamHealth:
        return self.soap.health.state

    async def aclose(self) -> None:
        await self.soap.aclose()


def _body(request: GatewayRequest, struct: type[T]) -> T:
    """The body (none: an empty object) as ``struct``, or every error with its JSON path."""
    data = bodies.json_body(request) if request.data is not None or request.body else {}
    return bodies.convert(data, struct)
