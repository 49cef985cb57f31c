"""``type: soap``: call a SOAP service with zeep, described by a local WSDL.

The route's ``operation`` is the SOAP operation name; the JSON body (the
validated one, else the raw body decoded) becomes its arguments and the
result is answered as JSON. WSDLs are read from disk (``schemas/`` or next to
the config), never fetched: imports over the network are refused, with zeep's
DTD and entity protections on.

``SoapClient`` is the machinery, shared with adapters for a known SOAP service
(``population``): they build their own arguments and read the plain answer.

zeep's ``AsyncTransport`` overwrites the httpx client's default headers with
its own User-Agent, so configured headers and the request id are added by an
httpx request hook instead, which it cannot drop.

zeep strips a one-child answer element down to that child ("unwrapping"):
``<KetQuaXacThuc><TonTai>true</TonTai></KetQuaXacThuc>`` would come back as a
bare ``true``, and the JSON shape would change whenever the WSDL gains an
element. The client puts the stripped wrapper back, so the answer always has
the answer element's children as keys.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import msgspec
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.xsd
from lxml import etree
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.bodies import parse_json
from adapters.errors import MalformedBody, RequestRejected, UpstreamError
from adapters.httpclient import (
    PassiveHealth,
    PoolSettings,
    TlsSettings,
    build_client,
)
from schemas import xmlsafe


class _Call:
    """The request being sent, and the HTTP status it got (a fault hides it otherwise)."""

    def __init__(self, request: GatewayRequest) -> None:
        self.request = request
        self.status: int | None = None


_current: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("soap_call", default=None)


class SoapFault(UpstreamError):
    """The service answered with a SOAP fault.

    Its ``code`` stays ``upstream_error``; an adapter that knows the service's
    faults maps them further from ``fault_code`` and ``http_status``.
    """

    def __init__(self, detail: str, *, fault_code: str, http_status: int | None) -> None:
        super().__init__(detail)
        self.fault_code = fault_code
        """e.g. ``soapenv:Client`` (the sender's fault) or ``soapenv:Server``."""
        self.http_status = http_status


class SoapSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    wsdl: str
    """WSDL file: relative to the config file, else to ``schemas/``."""
    address: str | None = None
    """Endpoint URL, overriding the WSDL's ``soap:address`` (e.g. a test system)."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)


class SoapClient:
    """A zeep client on a local WSDL, one pooled httpx client, failures as ``UpstreamError``.

    ``headers`` is called for every HTTP request (signed headers carry a time).
    """

    def __init__(
        self,
        name: str,
        *,
        wsdl: str,
        address: str | None,
        tls: TlsSettings,
        pool: PoolSettings,
        context: AdapterContext,
        headers: Callable[[], Mapping[str, str]],
    ) -> None:
        self.name = name
        self.headers = headers
        self.health = PassiveHealth()
        path = _find(wsdl, context)
        self.http = build_client(
            tls,
            pool,
            context.config_dir,
            event_hooks={"request": [self._add_headers], "response": [_note_status]},
        )
        # WSDL loading is synchronous in zeep; its loader must never reach the network.
        loader = httpx.Client(transport=httpx.MockTransport(_refuse_fetch))
        transport = AsyncTransport(client=self.http, wsdl_client=loader)
        hardened = zeep.Settings(
            strict=True,
            xml_huge_tree=False,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        try:
            self.client = zeep.AsyncClient(path, transport=transport, settings=hardened)
        except (etree.XMLSyntaxError, zeep.exceptions.Error) as exc:
            raise ValueError(f"WSDL {path} is not usable: {exc}") from None
        finally:
            loader.close()
        self.binding, default_address = _endpoint(self.client.wsdl)
        address = address or default_address
        if not address:
            raise ValueError(f"WSDL {path} has no soap:address; set `address:`")
        self.address: str = address
        # Not ``client.create_service()``: that gives a synchronous proxy even on AsyncClient.
        self.service = AsyncServiceProxy(self.client, self.binding, address=address)

    async def _add_headers(self, request: httpx.Request) -> None:
        request.headers.update(self.headers())
        call = _current.get()
        if call is not None:
            request.headers["x-request-id"] = call.request.request_id
            request.headers["x-lgsp-client"] = call.request.client_id

    def check(self, operation: str, arguments: dict[str, Any]) -> None:
        """Refuse arguments the WSDL cannot serialize, before anything is sent."""
        self.operation(operation)
        _refuse_unencodable(operation, arguments)
        try:
            self.client.create_message(self.service, operation, **arguments)
        except (TypeError, zeep.exceptions.ValidationError) as exc:
            raise RequestRejected(f"the body does not fit {operation}: {exc}") from None

    def operation(self, name: str) -> Any:
        try:
            return self.service[name]
        except AttributeError:
            raise UpstreamError(f"{self.name}: WSDL has no operation {name!r}") from None

    async def call(self, request: GatewayRequest, operation: str, arguments: dict[str, Any]) -> Any:
        """The answer as plain dicts and lists, the answer element's children as keys."""
        send = self.operation(operation)
        _refuse_unencodable(operation, arguments)
        call = _Call(request)
        token = _current.set(call)
        try:
            result = await send(**arguments)
        except zeep.exceptions.Fault as fault:
            self.health.ok()  # it answered
            raise SoapFault(
                f"SOAP fault {fault.code}: {fault.message}",
                fault_code=str(fault.code or ""),
                http_status=call.status,
            ) from None
        except zeep.exceptions.TransportError as exc:
            # Also raised for a 200 whose body is not XML; the message quotes the body: not shown.
            if exc.status_code == 200:
                raise UpstreamError(f"{self.name} answered malformed XML") from None
            raise UpstreamError(
                f"{self.name} answered HTTP {exc.status_code}", upstream_status=exc.status_code
            ) from None
        except (etree.XMLSyntaxError, zeep.exceptions.XMLSyntaxError) as exc:
            raise UpstreamError(f"{self.name} answered malformed XML: {exc}") from None
        except zeep.exceptions.Error as exc:  # unexpected elements, DTD in the answer, ...
            raise UpstreamError(f"{self.name} answered unusable XML: {exc}") from None
        except httpx.HTTPError as exc:
            raise self.health.unreachable(exc, self.name) from None
        finally:
            _current.reset(token)
        self.health.ok()
        data = zeep.helpers.serialize_object(result, dict)
        return _rewrap(self.binding.get(operation), data)

    async def aclose(self) -> None:
        await self.http.aclose()


def _refuse_unencodable(operation: str, arguments: dict[str, Any]) -> None:
    """Characters XML cannot carry: lxml would refuse them mid-build, as a bare ValueError."""
    refused = [{"path": p, "message": m} for p, m in xmlsafe.unencodable(arguments, operation)]
    if refused:
        raise RequestRejected(f"{len(refused)} value(s) cannot be sent as XML", errors=refused)


class SoapAdapter:
    Settings = SoapSettings

    def __init__(self, name: str, settings: SoapSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.soap = SoapClient(
            name,
            wsdl=settings.wsdl,
            address=settings.address,
            tls=settings.tls,
            pool=settings.pool,
            context=context,
            headers=lambda: settings.headers,
        )

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        self.soap.operation(request.operation)
        arguments = self._arguments(request)
        data = await self.soap.call(request, request.operation, arguments)
        return GatewayResponse(body=msgspec.json.encode(data, enc_hook=str))

    def _arguments(self, request: GatewayRequest) -> dict[str, Any]:
        """The operation's arguments; a body that cannot be them is the caller's error."""
        data = request.data
        if data is None and request.body:
            data = parse_json(request.body)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise MalformedBody("the body must be a JSON object")
        self.soap.check(request.operation, data)  # a bad body costs no upstream call
        return data

    async def check(self) -> UpstreamHealth:
        return self.soap.health.state

    async def aclose(self) -> None:
        await self.soap.aclose()


async def _note_status(response: httpx.Response) -> None:
    call = _current.get()
    if call is not None:
        call.status = response.status_code


def _find(wsdl: str, context: AdapterContext) -> str:
    for base in (context.config_dir, context.schemas_dir):
        path = os.path.join(base, wsdl)
        if os.path.isfile(path):
            return path
    raise ValueError(f"WSDL {wsdl!r} not found next to the config or in schemas/")


def _refuse_fetch(request: httpx.Request) -> httpx.Response:
    raise ValueError(f"WSDL imports {request.url}: only file paths are read, never URLs")


def _endpoint(wsdl: Any) -> tuple[Any, str | None]:
    """The binding and address of the WSDL's first port, as ``client.service`` would use."""
    for service in wsdl.services.values():
        for port in service.ports.values():
            address: str | None = port.binding_options.get("address")
            return port.binding, address
    if not wsdl.bindings:
        raise ValueError("WSDL defines no binding")
    return next(iter(wsdl.bindings.values())), None


def _rewrap(operation: Any, data: Any) -> Any:
    """Undo zeep's unwrapping of a one-child answer (``SoapMessage.deserialize`` in zeep).

    zeep returns the only child of the answer element, and if that child is
    present and is itself a one-child complex value, that value's child.
    """
    if operation.output is None:
        return data
    inner = _only_child(getattr(operation.output.body, "type", None))
    if inner is None or operation.output.header.type.elements:
        return data
    name, element = inner
    grandchild = None if element.max_occurs != 1 else _only_child(element.type)
    if grandchild is None or data is None:
        return {name: data}
    return {name: {grandchild[0]: data}}


def _only_child(xsd_type: Any) -> tuple[str, Any] | None:
    if not isinstance(xsd_type, zeep.xsd.ComplexType):
        return None
    elements: list[tuple[str, Any]] = xsd_type.elements
    if len(elements) != 1 or xsd_type.attributes:
        return None
    return elements[0]
