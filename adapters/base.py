"""The adapter contract: the one seam between the gateway core and upstreams.

The core never knows which protocol an upstream speaks. It builds a
``GatewayRequest``, awaits ``adapter.handle()`` under the route's deadline and
retry policy, and maps whatever comes back. Adapters raise the typed errors
below so that the caller gets a stable error code whatever the protocol.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import msgspec


class AdapterSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every adapter's settings: the keys of an ``upstreams`` entry besides ``type``."""

    description: str = ""


class GatewayRequest(msgspec.Struct, kw_only=True):
    """What an adapter is asked to do, independent of the inbound HTTP request."""

    operation: str
    """Route-defined operation: an upstream path, a SOAP operation name, a mock operation."""
    method: str
    path: str
    body: bytes = b""
    content_type: str = ""
    data: Any = None
    """The body decoded as JSON builtins when the route validated it as JSON, else None."""
    headers: dict[str, str] = {}
    """Inbound headers worth forwarding (lower-case names; credentials already removed)."""
    path_params: dict[str, str] = {}
    query: str = ""
    request_id: str = ""
    client_id: str = ""
    route_id: str = ""
    deadline: float = 0.0
    """``time.monotonic()`` value after which the result is useless to the caller."""

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


class GatewayResponse(msgspec.Struct, kw_only=True):
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = {}


class UpstreamHealth(msgspec.Struct, kw_only=True):
    state: Literal["up", "down", "unknown"]
    detail: str = ""


class UpstreamError(Exception):
    """The upstream could not give a usable answer.

    ``code`` is the stable error code the caller sees; subclasses fix it.
    """

    code: ClassVar[str] = "upstream_error"

    def __init__(self, detail: str, *, upstream_status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.upstream_status = upstream_status

    @property
    def retry_condition(self) -> str | None:
        """The route ``retry.on`` value that allows retrying this failure, if any."""
        return "5xx" if (self.upstream_status or 0) >= 500 else None


class UpstreamUnavailable(UpstreamError):
    """Could not reach the upstream at all (refused, reset, DNS): safe to retry if idempotent."""

    code = "upstream_unavailable"

    @property
    def retry_condition(self) -> str | None:
        return "unavailable"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the route's deadline."""

    code = "upstream_timeout"

    @property
    def retry_condition(self) -> str | None:
        return "timeout"


class RequestRejected(Exception):
    """The request cannot become an upstream call (e.g. it does not fit the WSDL).

    The caller's fault, found by the adapter before anything was sent.
    """

    def __init__(self, code: Literal["malformed_body", "schema_invalid"], detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@runtime_checkable
class Adapter(Protocol):
    """One configured upstream. Built once per config load, shared by all requests."""

    Settings: ClassVar[type[AdapterSettings]]

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        """Perform one call. Raise ``UpstreamError`` for anything the caller must not see raw."""
        ...

    async def check(self) -> UpstreamHealth:
        """Cheap health probe used by ``/health/ready``; must not raise."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections; called once the upstream is no longer configured."""
        ...


class AdapterFactory(Protocol):
    """The class registered under an entry point: ``Factory(name, settings, context)``."""

    Settings: ClassVar[type[AdapterSettings]]

    def __call__(self, name: str, settings: Any, context: AdapterContext) -> Adapter: ...


class AdapterContext(msgspec.Struct, frozen=True):
    """What an adapter may need from its surroundings while it is built."""

    config_dir: str
    """Directory of the main config file: relative file settings resolve against it."""
    schemas_dir: str
    """The ``schemas/`` package directory (WSDL, XSD shipped with the gateway)."""
