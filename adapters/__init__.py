"""Pluggable adapters: how the gateway talks to an upstream system.

An adapter is a small async object (think httpx transports): it takes a
``GatewayRequest`` and returns a ``GatewayResponse`` or raises an
``UpstreamError``. See ``adapters.base`` for the contract and
``adapters.registry`` for how adapters are found.
"""

from adapters.base import (
    Adapter,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    RequestRejected,
    UpstreamError,
    UpstreamHealth,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "Adapter",
    "AdapterSettings",
    "GatewayRequest",
    "GatewayResponse",
    "RequestRejected",
    "UpstreamError",
    "UpstreamHealth",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]
