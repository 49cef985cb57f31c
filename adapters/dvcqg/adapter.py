"""``type: dvcqg``: the operations an agency system calls, on top of ``portal.Portal``."""

from __future__ import annotations

from typing import Any, ClassVar

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
from adapters.dvcqg import payments
from adapters.dvcqg.agency import convert, json_answer, query_filters
from adapters.dvcqg.errors import DossierStatusRegression
from adapters.dvcqg.portal import NotFoundAtPortal, Portal, Reply
from adapters.dvcqg.settings import DvcqgSettings
from adapters.errors import UpstreamError, UpstreamNotFound
from adapters.httpclient import PassiveHealth, build_client
from adapters.logs import get_logger
from schemas.dvcqg import records as r

log = get_logger(__name__)

STATUS_KEY = "status:{}"
"""State key of a dossier's last synced status (value: the code as text)."""


class Sync(msgspec.Struct, frozen=True):
    """A push of one record; ``status_field`` names the dossier status it sets, if any."""

    record: type[msgspec.Struct]
    receipt: type[msgspec.Struct]
    status_field: str | None


class Listing(msgspec.Struct, frozen=True):
    """A catalogue or list pulled from the portal, filtered by query parameters."""

    filters: type[msgspec.Struct]
    item: type[msgspec.Struct]
    share: bool


SYNCS: dict[str, Sync] = {
    "DongBoHoSoMC": Sync(r.DongBoHoSoMC, r.DongBoKetQua, "TrangThaiHoSo"),
    "CapNhatTienDoHoSoMC": Sync(r.CapNhatTienDoHoSoMC, r.DongBoKetQua, "TrangThai"),
    "DongBoHoiDap": Sync(r.DongBoHoiDap, r.DongBoHoiDapKetQua, None),
}
LISTINGS: dict[str, Listing] = {
    "LayDanhSachTTHC": Listing(r.LocThuTuc, r.ThuTucHanhChinh, share=True),
    "LayDanhMucCoQuan": Listing(r.LocCoQuan, r.CoQuan, share=True),
    "LayDanhMucLinhVuc": Listing(r.LocLinhVuc, r.LinhVuc, share=True),
    "LayDanhSachHoiDapGuiTuDVCQG": Listing(r.LocHoiDap, r.CauHoiDVCQG, share=False),
}
LOOKUP = "TraCuuHoSo"
OPERATIONS = frozenset({*SYNCS, *LISTINGS, LOOKUP, payments.CREATE, payments.CALLBACK})


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
        if operation == payments.CREATE:
            return await payments.create(self, request)
        if operation == payments.CALLBACK:
            return await payments.callback(self, request)
        known = ", ".join(sorted(OPERATIONS))
        raise UpstreamError(f"dvcqg has no operation {operation!r} (known: {known})")

    async def _sync(self, service: str, sync: Sync, request: GatewayRequest) -> GatewayResponse:
        record = convert(bodies.json_body(request), sync.record)
        data = msgspec.to_builtins(record)
        state = self.state() if sync.status_field else None
        key = STATUS_KEY.format(data.get("MaHoSo"))
        last = await state.get(key) if state is not None else None
        status: int | None = data.get(sync.status_field) if sync.status_field else None
        if status is not None and last is not None and status < int(last):
            raise _regression(data["MaHoSo"], sync.status_field or "", int(last), status)
        reply = await self.portal.call(
            service,
            [data],
            deadline=request.deadline,
            share=False,
            updating=service == "DongBoHoSoMC" and last is not None,
        )
        if state is not None and status is not None:
            await state.put(key, str(status))
        receipt = self._items(reply, sync.receipt, service)
        answer = {"message": reply.message, **(msgspec.to_builtins(receipt[0]) if receipt else {})}
        return json_answer(answer)

    async def _list(
        self, service: str, listing: Listing, request: GatewayRequest
    ) -> GatewayResponse:
        filters = msgspec.to_builtins(query_filters(request, listing.filters))
        reply = await self.portal.call(
            service,
            [filters] if filters else [],
            deadline=request.deadline,
            share=listing.share,
            updating=False,
        )
        return json_answer(
            {"items": msgspec.to_builtins(self._items(reply, listing.item, service))}
        )

    async def _lookup(self, request: GatewayRequest) -> GatewayResponse:
        data: dict[str, Any] = {}
        if request.body:
            data = bodies.json_body(request)
        elif "ma_ho_so" in request.path_params:
            data = {"MaHoSo": request.path_params["ma_ho_so"]}
        else:
            data = msgspec.to_builtins(query_filters(request, r.TraCuuHoSo))
        query = convert(data, r.TraCuuHoSo)
        try:
            reply = await self.portal.call(
                LOOKUP,
                [{"MaHoSo": query.MaHoSo}],
                deadline=request.deadline,
                share=False,
                updating=False,
            )
            found = self._items(reply, r.HoSo, LOOKUP)
            if not found:
                raise NotFoundAtPortal(f"{LOOKUP}: {self.name} returned no dossier")
        except NotFoundAtPortal as exc:
            raise UpstreamNotFound(f"no dossier {query.MaHoSo} at {self.name}: {exc}") from None
        return json_answer(msgspec.to_builtins(found[0]))

    def _items(self, reply: Reply, kind: type[msgspec.Struct], service: str) -> list[Any]:
        """The reply's result as ``kind`` items (one object counts as a list of one)."""
        result = reply.document.get(self.settings.result_key)
        if result is None:
            return []
        items = result if isinstance(result, list) else [result]
        try:
            return msgspec.convert(items, list[kind], strict=False)  # type: ignore[valid-type]
        except msgspec.ValidationError as exc:
            raise UpstreamError(
                f"{service}: {self.name} answered an unexpected record: {exc}"
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
