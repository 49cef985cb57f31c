"""``type: dvcqg``: the operations an agency system calls, on top of ``portal.Portal``."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec

from adapters import bodies
from adapters.base import (
    AdapterContext,
    AdapterHost,
    AdapterState,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.dvcqg import payments, wire
from adapters.dvcqg.agency import convert, json_answer, query_filters
from adapters.dvcqg.errors import DossierStatusRegression
from adapters.dvcqg.portal import NotFoundAtPortal, Portal, Reply
from adapters.dvcqg.settings import DvcqgSettings
from adapters.errors import UpstreamError, UpstreamNotFound
from adapters.httpclient import PassiveHealth, build_client
from adapters.logs import get_logger
from schemas.dvcqg import records as r

log = get_logger(__name__)

T = TypeVar("T", bound=msgspec.Struct)
STATUS_KEY = "status:{}"
"""State key of a dossier's last synced status (value: the code as text)."""


class Sync(msgspec.Struct, frozen=True):
    """A push of one record in ``data``; ``status_field`` names the dossier status it sets.

    ``receipt_from`` fills the receipt from the record sent when the portal's
    answer leaves a field out: (receipt field, record field).
    """

    record: type[msgspec.Struct]
    receipt: type[msgspec.Struct]
    status_field: str | None
    receipt_from: tuple[tuple[str, str], ...]
    updating: bool = False
    """Whether the envelope carries ``isUpdating`` (OpenCPS sends it with DongBoHoSoMC only)."""


class Listing(msgspec.Struct, frozen=True):
    """A catalogue or list pulled from the portal, filtered by query parameters."""

    filters: type[msgspec.Struct]
    item: type[msgspec.Struct]
    share: bool


SYNCS: dict[str, Sync] = {
    "DongBoHoSoMC": Sync(
        r.DongBoHoSoMC,
        r.DongBoKetQua,
        "TrangThaiHoSo",
        (("MaHoSo", "MaHoSo"), ("TrangThaiHoSo", "TrangThaiHoSo")),
        updating=True,
    ),
    "CapNhatTienDoHoSoMC": Sync(
        r.CapNhatTienDoHoSoMC,
        r.DongBoKetQua,
        "TrangThai",
        (("MaHoSo", "MaHoSo"), ("TrangThaiHoSo", "TrangThai")),
    ),
    "DongBoHoiDap": Sync(r.DongBoHoiDap, r.DongBoHoiDapKetQua, None, (("MaCauHoi", "MaCauHoi"),)),
}
LISTINGS: dict[str, Listing] = {
    "LayDanhSachTTHC": Listing(r.LocThuTuc, r.ThuTucHanhChinh, share=True),
    "LayDanhMucCoQuan": Listing(r.LocCoQuan, r.CoQuan, share=True),
    "LayDanhMucLinhVuc": Listing(r.LocLinhVuc, r.LinhVuc, share=True),
    "LayDanhSachHoiDapGuiTuDVCQG": Listing(r.LocHoiDap, r.CauHoiDVCQG, share=False),
}
LOOKUP = "TraCuuHoSo"
PROCEDURE = "LayThuTuc"
OPERATIONS = frozenset({*SYNCS, *LISTINGS, LOOKUP, PROCEDURE, payments.CREATE, payments.CALLBACK})


class DvcqgAdapter:
    Settings: ClassVar[type[DvcqgSettings]] = DvcqgSettings

    def __init__(self, name: str, settings: DvcqgSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.client = build_client(settings.tls, settings.pool, context.config_dir)
        self.health = PassiveHealth()
        self.portal = Portal(name, settings, self.client, self.health)
        self.host: AdapterHost | None = None
        self._warned_unhosted = False

    async def start(self, host: AdapterHost) -> None:
        self.host = host

    def state(self) -> AdapterState | None:
        """The durable state, or None outside the server (warned about once)."""
        if self.host is not None:
            return self.host.state
        if not self._warned_unhosted:
            self._warned_unhosted = True
            log.warning(
                "dvcqg_not_hosted", upstream=self.name, effect="status regression unchecked"
            )
        return None

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        operation = request.operation
        if operation in SYNCS:
            return await self._sync(operation, SYNCS[operation], request)
        if operation in LISTINGS:
            return await self._list(operation, LISTINGS[operation], request)
        if operation == LOOKUP:
            return await self._lookup(request)
        if operation == PROCEDURE:
            return await self._procedure(request)
        if operation == payments.CREATE:
            return await payments.create(self, request)
        if operation == payments.CALLBACK:
            return await payments.callback(self, request)
        known = ", ".join(sorted(OPERATIONS))
        raise UpstreamError(f"dvcqg has no operation {operation!r} (known: {known})")

    async def _sync(self, service: str, sync: Sync, request: GatewayRequest) -> GatewayResponse:
        record = convert(bodies.json_body(request), sync.record)
        sent = msgspec.to_builtins(record)
        state = self.state() if sync.status_field else None
        key = STATUS_KEY.format(sent.get("MaHoSo"))
        last = await state.get(key) if state is not None else None
        status: int | None = sent.get(sync.status_field) if sync.status_field else None
        if status is not None and last is not None and status < int(last):
            raise _regression(sent["MaHoSo"], sync.status_field or "", int(last), status)
        fields: dict[str, Any] = {"data": [wire.record(record)]}
        if sync.updating:
            fields = {"isUpdating": wire.flag(last is not None), **fields}
        reply = await self.portal.call(service, fields, deadline=request.deadline, share=False)
        if state is not None and status is not None:
            await state.put(key, str(status))
        given = {ours: sent.get(theirs) for ours, theirs in sync.receipt_from}
        answered = self._result(reply)
        first = answered[0] if answered and isinstance(answered[0], dict) else {}
        receipt = self._read([{**given, **first}], sync.receipt, service)
        return json_answer({"message": reply.message, **msgspec.to_builtins(receipt[0])})

    async def _list(
        self, service: str, listing: Listing, request: GatewayRequest
    ) -> GatewayResponse:
        filters = msgspec.to_builtins(query_filters(request, listing.filters))
        reply = await self.portal.call(
            service, filters, deadline=request.deadline, share=listing.share
        )
        items = self._read(self._result(reply), listing.item, service)
        return json_answer({"items": msgspec.to_builtins(items)})

    async def _lookup(self, request: GatewayRequest) -> GatewayResponse:
        query = convert(self._key(request, "ma_ho_so", "MaHoSo", r.TraCuuHoSo), r.TraCuuHoSo)
        found = await self._one(LOOKUP, {"mahoso": query.MaHoSo}, r.HoSo, request)
        if found is None:
            raise UpstreamNotFound(f"no dossier {query.MaHoSo} at {self.name}")
        return json_answer(msgspec.to_builtins(found))

    async def _procedure(self, request: GatewayRequest) -> GatewayResponse:
        query = convert(self._key(request, "ma_tthc", "MaTTHC", r.LayThuTuc), r.LayThuTuc)
        found = await self._one(PROCEDURE, {"maTTHC": query.MaTTHC}, r.ThuTucChiTiet, request)
        if found is None:
            raise UpstreamNotFound(f"no procedure {query.MaTTHC} at {self.name}")
        return json_answer(msgspec.to_builtins(found))

    def _key(
        self, request: GatewayRequest, param: str, field: str, kind: type[msgspec.Struct]
    ) -> Any:
        """What a lookup asks for: the path parameter, else the body, else the query."""
        if param in request.path_params:
            return {field: request.path_params[param]}
        if request.body:
            return bodies.json_body(request)
        return msgspec.to_builtins(query_filters(request, kind))

    async def _one(
        self, service: str, fields: dict[str, Any], kind: type[T], request: GatewayRequest
    ) -> T | None:
        """The first record a lookup answers; None when the portal has none (or says not found)."""
        try:
            reply = await self.portal.call(service, fields, deadline=request.deadline, share=False)
        except NotFoundAtPortal:
            return None
        found = self._read(self._result(reply), kind, service)
        return found[0] if found else None

    def _result(self, reply: Reply) -> list[Any]:
        """The reply's result data as a list (one object counts as a list of one)."""
        result = reply.document.get(self.settings.result_key)
        if result is None:
            return []
        return result if isinstance(result, list) else [result]

    def _read(self, items: list[Any], kind: type[T], service: str) -> list[T]:
        try:
            return wire.read(items, kind)
        except msgspec.ValidationError as exc:
            raise UpstreamError(
                f"{service}: {self.name} answered a record we cannot read: {exc}"
            ) from None

    async def check(self) -> UpstreamHealth:
        return self.health.state

    async def aclose(self) -> None:
        await self.client.aclose()


def _regression(ma_ho_so: str, field: str, last: int, status: int) -> DossierStatusRegression:
    before, after = r.status_name(last), r.status_name(status)
    return DossierStatusRegression(
        f"dossier {ma_ho_so}: {field} cannot move back from {before} to {after}",
        errors=[
            {
                "path": f"$.{field}",
                "message": f"last synced status is {before}; {after} would move it backwards",
            }
        ],
    )
