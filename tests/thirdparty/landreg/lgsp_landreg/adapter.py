"""``type: landreg``: look a parcel up in the land registry's JSON API."""

from __future__ import annotations

from typing import Annotated, ClassVar

import httpx
import msgspec

from adapters import bodies
from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.errors import UpstreamNotFound, UpstreamTimeout, UpstreamUnavailable
from lgsp_landreg.errors import ParcelDisputed


class LandRegistrySettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    base_url: str


class ParcelQuery(msgspec.Struct, forbid_unknown_fields=True):
    so_thua: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,6}$")]
    """The parcel number."""
    chu_su_dung: str
    """The land user's name, as the agency has it (personal data)."""


class LandRegistryAdapter:
    Settings: ClassVar[type[AdapterSettings]] = LandRegistrySettings

    def __init__(self, name: str, settings: LandRegistrySettings, context: AdapterContext) -> None:
        self.name = name
        self.client = httpx.AsyncClient(base_url=settings.base_url)

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        query = bodies.convert(bodies.json_body(request), ParcelQuery)
        try:
            answer = await self.client.get(f"/parcels/{query.so_thua}", timeout=request.remaining())
        except httpx.TimeoutException:
            raise UpstreamTimeout("the land registry did not answer in time") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"the land registry cannot be reached: {exc}") from None
        if answer.status_code == 404:
            raise UpstreamNotFound(f"no parcel {query.so_thua}")
        record = answer.json()
        if record.get("tranh_chap"):
            raise ParcelDisputed(
                f"parcel {query.so_thua} is under dispute",
                errors=[{"path": "$.so_thua", "message": "under dispute at the land registry"}],
            )
        matches = record.get("chu_su_dung") == query.chu_su_dung
        body = {"so_thua": query.so_thua, "dien_tich": record.get("dien_tich"), "khop": matches}
        return GatewayResponse(body=msgspec.json.encode(body))

    async def check(self) -> UpstreamHealth:
        return UpstreamHealth(state="unknown", detail="no health endpoint")

    async def aclose(self) -> None:
        await self.client.aclose()
