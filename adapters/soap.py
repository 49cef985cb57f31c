"""``type: soap``: call a SOAP service with zeep, described by a local WSDL.

The route's ``operation`` is the SOAP operation name; the validated JSON body
becomes its arguments and the result is answered as JSON. WSDLs are read from
disk (``schemas/`` or next to the config), never fetched, with zeep's DTD and
entity protections on.

zeep's ``AsyncTransport`` overwrites the httpx client's default headers with
its own User-Agent, so configured headers and the request id are added by an
httpx request hook instead, which it cannot drop.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any

import httpx
import msgspec
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree
from zeep.transports import AsyncTransport

from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamError,
    UpstreamHealth,
)
from adapters.httpclient import PassiveHealth, PoolSettings, TlsSettings, build_client, upstream_error

_current: contextvars.ContextVar[GatewayRequest | None] = contextvars.ContextVar(
    "soap_request", default=None
)


class SoapSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    wsdl: str
    """WSDL file: relative to the config file, else to ``schemas/``."""
    address: str | None = None
    """Endpoint URL, overriding the WSDL's ``soap:address`` (e.g. a test system)."""
    headers: dict[str, str] = {}
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)


class SoapAdapter:
    Settings = SoapSettings

    def __init__(self, name: str, settings: SoapSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.health = PassiveHealth()
        wsdl = _find(settings.wsdl, context)
        self.http = build_client(
            settings.tls,
            settings.pool,
            context.config_dir,
            event_hooks={"request": [self._add_headers]},
        )
        transport = AsyncTransport(client=self.http)
        hardened = zeep.Settings(
            strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
            forbid_external=True,
        )
        try:
            self.client = zeep.AsyncClient(wsdl, transport=transport, settings=hardened)
        except (etree.XMLSyntaxError, zeep.exceptions.Error) as exc:
            raise ValueError(f"WSDL {wsdl} is not usable: {exc}") from None
        if settings.address:
            binding = next(iter(self.client.wsdl.bindings))
            self.service = self.client.create_service(binding, settings.address)
        else:
            self.service = self.client.service

    async def _add_headers(self, request: httpx.Request) -> None:
        request.headers.update(self.settings.headers)
        current = _current.get()
        if current is not None:
            request.headers["x-request-id"] = current.request_id
            request.headers["x-lgsp-client"] = current.client_id

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        try:
            operation = self.service[request.operation]
        except AttributeError:
            raise UpstreamError(f"{self.name}: WSDL has no operation {request.operation!r}") from None
        arguments = request.data if isinstance(request.data, dict) else {}
        token = _current.set(request)
        try:
            result = await operation(**arguments)
        except zeep.exceptions.Fault as fault:
            self.health.ok()  # it answered
            raise UpstreamError(f"SOAP fault {fault.code}: {fault.message}") from None
        except zeep.exceptions.TransportError as exc:
            raise UpstreamError(
                f"{self.name} answered HTTP {exc.status_code}", upstream_status=exc.status_code
            ) from None
        except (etree.XMLSyntaxError, zeep.exceptions.XMLParseError) as exc:
            raise UpstreamError(f"{self.name} answered malformed XML: {exc}") from None
        except httpx.HTTPError as exc:
            error = upstream_error(exc, self.name)
            self.health.failed(error)
            raise error from None
        finally:
            _current.reset(token)
        self.health.ok()
        data = zeep.helpers.serialize_object(result, dict)
        return GatewayResponse(body=msgspec.json.encode(data, enc_hook=str))

    async def check(self) -> UpstreamHealth:
        return self.health.state

    async def aclose(self) -> None:
        await self.http.aclose()


def _find(wsdl: str, context: AdapterContext) -> str:
    for base in (context.config_dir, context.schemas_dir):
        path = os.path.join(base, wsdl)
        if os.path.isfile(path):
            return path
    raise ValueError(f"WSDL {wsdl!r} not found next to the config or in schemas/")
