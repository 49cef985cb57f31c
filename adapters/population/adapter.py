"""``type: population``: the national population database, behind a clean JSON face.

Route operations:

- ``lookup``: body ``schemas.population.CitizenLookupRequest`` ->
  ``TraCuuThongTinCongDan`` -> ``CitizenLookupAnswer``; nobody found -> 404
  problem ``not_found``.
- ``verify``: body ``schemas.population.CitizenVerifyRequest`` ->
  ``XacThucThongTinCongDan`` (named per ``verify_profile``) ->
  ``CitizenVerifyAnswer`` (``khop``).
- ``relatives``: body ``schemas.population.CitizenRelativesRequest`` ->
  ``XacMinhThongTinNhanThan`` -> ``CitizenRelativesAnswer`` (``khop`` per
  declared relative, nothing else of theirs); the citizen not found -> 404.

The body is checked again here, with every error's path, so a route without
``request.schema`` is no less safe: a bad ID never costs a national call.
MaYeuCau is the gateway's request id; the other request fields come from
settings. The SOAP is written and read by ``wire`` (as public clients do),
not by zeep from a WSDL: answers are read by element name, and an element we
do not know is logged once (``population_unknown_element``), never a 502.

Errors: HTTP 401/403 -> ``upstream_auth_failed``; a ``Client`` SOAP fault
(our data refused) -> ``upstream_rejected``; any other fault, an HTTP error
or an answer that is not a SOAP envelope -> ``upstream_error``; network and
deadline failures as for every adapter.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import msgspec
from lxml import etree

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
    UpstreamTimeout,
)
from adapters.httpclient import (
    PassiveHealth,
    PoolSettings,
    TlsSettings,
    build_client,
)
from adapters.logs import get_logger
from adapters.population import mapping, wire
from adapters.population.auth import auth_headers
from schemas.population import (
    CitizenLookupRequest,
    CitizenRelativesRequest,
    CitizenVerifyRequest,
)
from schemas.population.answers import (
    CitizenLookupAnswer,
    CitizenRelativesAnswer,
    CitizenVerifyAnswer,
)

log = get_logger(__name__)

_REFUSED_CREDENTIALS = (401, 403)
T = TypeVar("T", bound=msgspec.Struct)


class PopulationSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    """Where the service is, who we are, and the wire details public clients disagree on.

    Which public client each wire detail follows:

    - C06 (``Module.Common.C06.CallApi037``): the headers (``Timestamp``,
      ``Authorization: Basic``, ``X-Road-Client``, ``ApiKey``, ``SOAPAction: ""``),
      ``Content-Type: application/xml; charset=utf-8``, and
      ``TraCuuThongTinCongDan``'s elements, their order and namespace.
    - anhnbt (``anhnbt/lgsp``): the answer ``CongdanCollection`` (its attributes;
      ``Cha``/``Me`` as ``SoDinhDanh, QuocTich, HoVaTen{Ho, ChuDem, Ten}``),
      ``XacMinhThongTinNhanThan`` (element, namespace, fields) and the
      ``suffixed`` verify profile.
    - Assumptions: the ``plain`` verify profile (one Spring-WS service, no client
      code); ``VoChong``, ``NguoiDaiDien`` and ``ChuHo`` shaped like ``Cha``;
      the rest of ``CongDan`` (from samples, population.md); GioiTinh ``1``/``2``;
      nobody found as an empty collection, not a fault; refused credentials as
      HTTP 401; the relatives answer also in ``CongdanCollection``, bare or wrapped.
    """

    address: str
    """The national service's endpoint."""
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
    """SoDienThoai: contact phone of the officer (C06 sends "0")."""
    ma_dvc: str | None = None
    """MaDVC when the body gives no ``ma_dvc``."""
    soap_action: str = ""
    """The ``SOAPAction`` header, sent quoted: ``""`` as C06 sends it."""
    content_type: str = "application/xml; charset=utf-8"
    """As C06 sends it; ``text/xml; charset=utf-8`` is the SOAP 1.1 default."""
    verify_profile: wire.VerifyProfileName = "plain"
    """``XacThucThongTinCongDan``'s names: ``plain`` (XacThucThongTinCongDan, MaDVC,
    KetQuaXacThuc) or ``suffixed`` (XacThucThongTinCongDanRequest, MaDichVu,
    KetQuaXacThucResponse; no MaTichHop, MaDonVi or birth date)."""
    namespace: str = wire.DAN
    """Namespace of the lookup and verify requests."""
    relatives_namespace: str = wire.QLDC
    """Namespace of ``XacMinhThongTinNhanThan``."""
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)


def _timestamp_ms() -> int:
    return time.time_ns() // 1_000_000


class PopulationAdapter:
    Settings = PopulationSettings

    def __init__(self, name: str, settings: PopulationSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.http = build_client(settings.tls, settings.pool, context.config_dir)
        self.health = PassiveHealth()
        self.verify_names = wire.VERIFY_PROFILES[settings.verify_profile]
        self._unknown_logged: set[str] = set()
        self.operations: dict[str, Callable[[GatewayRequest], Awaitable[GatewayResponse]]] = {
            "lookup": self.lookup,
            "verify": self.verify,
            "relatives": self.relatives,
        }

    def _headers(self, request: GatewayRequest) -> dict[str, str]:
        s = self.settings
        return {
            **auth_headers(
                user=s.user,
                secret=s.secret,
                auth_url=s.auth_url or s.address,
                x_road_client=s.x_road_client,
                api_key=s.api_key,
                timestamp_ms=_timestamp_ms(),
            ),
            "SOAPAction": f'"{s.soap_action}"',
            "Content-Type": s.content_type,
            "x-request-id": request.request_id,
            "x-lgsp-client": request.client_id,
        }

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        operation = self.operations.get(request.operation)
        if operation is None:
            known = ", ".join(self.operations)
            raise UpstreamError(f"{self.name}: no operation {request.operation!r} ({known})")
        return await operation(request)

    async def lookup(self, request: GatewayRequest) -> GatewayResponse:
        query = _body(request, CitizenLookupRequest)
        values = {**self._who(request, query), **mapping.search_key(query)}
        element = await self._call(
            request, wire.LOOKUP, query, self.settings.namespace, wire.LOOKUP_FIELDS, values
        )
        found = self._collection(element)
        if found is None or not found.citizens:
            raise UpstreamNotFound("no citizen with this personal ID and declared data")
        answer = CitizenLookupAnswer(
            ma_yeu_cau=request.request_id,
            cong_dan=mapping.citizen(found.citizens[0]),
            thoi_diem_du_lieu=found.attributes.get("ThoiDiemDuLieu"),
        )
        return GatewayResponse(body=msgspec.json.encode(answer))

    async def verify(self, request: GatewayRequest) -> GatewayResponse:
        query = _body(request, CitizenVerifyRequest)
        names = self.verify_names
        who = self._who(request, query)
        who[names.service_code] = who.pop("MaDVC", None)
        values = {**who, **mapping.search_key(query)}
        sent = {k: v for k, v in values.items() if k in names.fields}
        element = await self._call(
            request, names.request, query, self.settings.namespace, names.fields, values
        )
        matches = wire.ton_tai(element)
        if matches is None:
            raise UpstreamError(f"{self.name} answered {names.request} without TonTai")
        answered = etree.QName(element).localname
        self._note_unknown([] if answered == names.answer else [answered])
        answer = CitizenVerifyAnswer(
            khop=matches,
            ma_yeu_cau=request.request_id,
            da_doi_chieu=mapping.compared_fields(sent),
        )
        return GatewayResponse(body=msgspec.json.encode(answer))

    async def relatives(self, request: GatewayRequest) -> GatewayResponse:
        query = _body(request, CitizenRelativesRequest)
        values = {**self._who(request, query), **mapping.search_key(query, plain_birth=True)}
        element = await self._call(
            request,
            wire.RELATIVES,
            query,
            self.settings.relatives_namespace,
            wire.RELATIVES_FIELDS,
            values,
        )
        found = self._collection(element)
        if found is None or not found.citizens:
            raise UpstreamNotFound("no citizen with this personal ID and declared data")
        checks = mapping.check_relatives(query.nguoi_than, found.citizens[0])
        answer = CitizenRelativesAnswer(
            khop=all(check.khop for check in checks),
            ma_yeu_cau=request.request_id,
            nguoi_than=checks,
        )
        return GatewayResponse(body=msgspec.json.encode(answer))

    def _who(self, request: GatewayRequest, query: mapping.Query) -> dict[str, Any]:
        """Who asks, for which service: the request fields besides the search key."""
        s = self.settings
        return {
            "MaYeuCau": request.request_id,
            "MaDVC": query.ma_dvc or s.ma_dvc,
            "MaTichHop": s.ma_tich_hop,
            "MaCanBo": s.ma_can_bo,
            "MaDonVi": s.ma_don_vi,
            "TaiKhoan": s.tai_khoan,
            "SoDienThoai": s.so_dien_thoai,
        }

    async def _call(
        self,
        request: GatewayRequest,
        operation: str,
        query: mapping.Query,
        namespace: str,
        fields: tuple[str, ...],
        values: dict[str, Any],
    ) -> etree._Element:
        """Send one request; the answer element, or the gateway's error for what came back."""
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
        content = wire.envelope(operation, namespace, fields, values)
        remaining = request.deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout("no time left before the route's deadline")
        try:
            response = await self.http.post(
                self.settings.address,
                content=content,
                headers=self._headers(request),
                timeout=httpx.Timeout(remaining),
            )
        except httpx.HTTPError as exc:
            raise self.health.unreachable(exc, self.name) from None
        self.health.ok()
        status = response.status_code
        try:
            answer = wire.answer(response.content)
        except (ValueError, etree.XMLSyntaxError):
            if status in _REFUSED_CREDENTIALS:
                raise UpstreamAuthFailed(
                    f"{self.name} refused the gateway's credentials (HTTP {status})"
                ) from None
            if status >= 400:
                raise UpstreamError(
                    f"{self.name} answered HTTP {status}", upstream_status=status
                ) from None
            raise UpstreamError(f"{self.name} answered something that is not SOAP") from None
        if isinstance(answer, wire.Fault):
            said = f"SOAP fault {answer.code}: {answer.message}"
            if status in _REFUSED_CREDENTIALS:
                raise UpstreamAuthFailed(f"{self.name} refused the gateway's credentials: {said}")
            if answer.code == "Client":
                raise UpstreamRejected(said)
            raise UpstreamError(said, upstream_status=status if status >= 400 else None)
        if status >= 400:
            raise UpstreamError(f"{self.name} answered HTTP {status}", upstream_status=status)
        return answer

    def _collection(self, element: etree._Element) -> wire.Collection | None:
        found = wire.collection(element)
        if found is not None:
            self._note_unknown(found.unknown)
        return found

    def _note_unknown(self, paths: list[str]) -> None:
        """Log each element we do not read, once per adapter: the answer still counts."""
        for path in paths:
            if path not in self._unknown_logged:
                self._unknown_logged.add(path)
                log.warning("population_unknown_element", upstream=self.name, element=path)

    async def check(self) -> UpstreamHealth:
        return self.health.state

    async def aclose(self) -> None:
        await self.http.aclose()


def _body(request: GatewayRequest, struct: type[T]) -> T:
    """The body (none: an empty object) as ``struct``, or every error with its JSON path."""
    data = bodies.json_body(request) if request.data is not None or request.body else {}
    return bodies.convert(data, struct)
