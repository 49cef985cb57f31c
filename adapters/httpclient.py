"""What the httpx-based adapters share: TLS settings, one pooled client, error mapping.

Every network failure becomes the same typed ``UpstreamError`` whatever
protocol rides on top, so ``soap`` and ``http`` routes fail alike.

The client is httpx, its transport aiohttp's: httpcore's connection pool
costs about 2 ms of CPU per request under 50 concurrent calls (encode/httpx
#3215), aiohttp's a third of that (``bench/README.md`` has the figures).
"""

from __future__ import annotations

import contextvars
import os
import ssl
import time
from collections.abc import Mapping
from typing import Any

import certifi
import httpx
import msgspec
from httpx_aiohttp import AiohttpTransport

from adapters.base import UpstreamHealth
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.units import Duration, seconds


class TlsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    verify: bool = True
    """Verify the upstream's certificate. Turn off only against a test system."""
    ca_file: str | None = None
    """PEM bundle of CAs to trust instead of the system's (relative to the config file)."""
    cert_file: str | None = None
    """Client certificate (PEM) for mutual TLS."""
    key_file: str | None = None


class PoolSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_connections: int = 100
    max_keepalive: int = 20
    """Idle connections kept once the load is gone (more stay open while in steady use)."""
    connect_timeout: Duration = "5s"


OUTBOUND_HEADERS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "lgsp_outbound_headers", default=None
)
"""Headers the host puts on every HTTP call made in the current context: the gateway sets
the W3C trace context (``traceparent``) of the upstream attempt here when tracing is on.
Adapters built on ``build_client`` send them without knowing of tracing."""


async def _add_outbound_headers(request: httpx.Request) -> None:
    headers = OUTBOUND_HEADERS.get()
    if headers:
        request.headers.update(headers)


def build_client(
    tls: TlsSettings,
    pool: PoolSettings,
    config_dir: str,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """One pooled client per upstream; per-call deadlines come from the route."""
    limits = httpx.Limits(
        max_connections=pool.max_connections, max_keepalive_connections=pool.max_keepalive
    )
    hooks: dict[str, list[Any]] = kwargs.pop("event_hooks", {})
    hooks = {**hooks, "request": [*hooks.get("request", ()), _add_outbound_headers]}
    return httpx.AsyncClient(
        transport=AiohttpTransport(verify=ssl_context(tls, config_dir), limits=limits),
        timeout=httpx.Timeout(None, connect=seconds(pool.connect_timeout)),
        event_hooks=hooks,
        **kwargs,
    )


def ssl_context(tls: TlsSettings, config_dir: str) -> ssl.SSLContext:
    """Trust (``ca_file``, else certifi's bundle as httpx would) and our client certificate."""
    context = ssl.create_default_context(
        cafile=os.path.join(config_dir, tls.ca_file) if tls.ca_file else certifi.where()
    )
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file is not None:
        key = os.path.join(config_dir, tls.key_file) if tls.key_file else None
        context.load_cert_chain(os.path.join(config_dir, tls.cert_file), key)
    return context


def upstream_error(exc: httpx.HTTPError, target: str) -> UpstreamError:
    """Map an httpx failure to the gateway's error vocabulary."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return UpstreamUnavailable(f"cannot connect to {target}: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{target} did not answer in time")
    return UpstreamUnavailable(f"connection to {target} failed: {type(exc).__name__}")


class PassiveHealth:
    """Upstream state as seen from real traffic, for upstreams we must not probe."""

    def __init__(self) -> None:
        self._state: UpstreamHealth = UpstreamHealth(state="unknown", detail="no call yet")

    def ok(self) -> None:
        if self._state.state != "up":
            self._state = UpstreamHealth(state="up", detail="last call succeeded")

    def failed(self, error: UpstreamError) -> None:
        if isinstance(error, UpstreamUnavailable | UpstreamTimeout):
            stamp = time.strftime("%H:%M:%S", time.gmtime())
            self._state = UpstreamHealth(state="down", detail=f"{stamp}Z {error.detail}")

    def unreachable(self, exc: httpx.HTTPError, target: str) -> UpstreamError:
        """The gateway's error for a call to ``target`` that failed in transport, noted."""
        error = upstream_error(exc, target)
        self.failed(error)
        return error

    @property
    def state(self) -> UpstreamHealth:
        return self._state
