"""Pluggable adapters: how the gateway talks to an upstream system.

An adapter is a small async object (think httpx transports): it takes a
``GatewayRequest`` and returns a ``GatewayResponse`` or raises an
``UpstreamError``. See ``adapters.base`` for the contract and
``adapters.registry`` for how adapters are found. The national systems each
have a package here (``dvcqg``, ``population``, ``document_axis``) holding
the adapter and a mock of the system (``mock.py``, on ``adapters.mockkit``).
"""

from adapters.base import (
    Adapter,
    AdapterHost,
    AdapterSettings,
    AdapterState,
    GatewayRequest,
    GatewayResponse,
    HostedAdapter,
    InboundMessage,
    UpstreamHealth,
)
from adapters.errors import (
    RequestRejected,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "Adapter",
    "AdapterHost",
    "AdapterSettings",
    "AdapterState",
    "GatewayRequest",
    "GatewayResponse",
    "HostedAdapter",
    "InboundMessage",
    "RequestRejected",
    "UpstreamAuthFailed",
    "UpstreamError",
    "UpstreamHealth",
    "UpstreamNotFound",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]
