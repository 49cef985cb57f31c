"""``type: http``: forward to an HTTP/REST upstream with one pooled httpx client.

The route's ``operation`` says where: empty forwards the inbound method and
path; ``/api/x/{id}`` forwards to that path (path parameters substituted);
``GET /api/x`` also changes the method.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

import httpx
import msgspec

from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.errors import UpstreamError
from adapters.httpclient import (
    PassiveHealth,
    PoolSettings,
    TlsSettings,
    build_client,
    upstream_error,
)
from adapters.oauth2 import ClientCredentials, TokenSource

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Response headers the gateway recomputes or that describe the upstream's connection.
_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "server",
        "date",
    }
)


class HttpSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[
        str, msgspec.Meta(pattern=r"^https?://", description="an http:// or https:// URL")
    ]
    headers: dict[str, str] = {}
    """Sent on every call (use ${ENV} for credentials)."""
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)
    health_path: str | None = None
    """If set, ``/health/ready`` GETs this path; otherwise health is judged from traffic."""
    oauth2: ClientCredentials | None = None
    """Send a bearer token obtained with OAuth2 client credentials (cached, renewed on 401)."""


class HttpAdapter:
    Settings = HttpSettings

    def __init__(self, name: str, settings: HttpSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.client = build_client(settings.tls, settings.pool, context.config_dir)
        self.health = PassiveHealth()
        self.tokens = (
            TokenSource(settings.oauth2, self.client, name) if settings.oauth2 is not None else None
        )

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        method, path = self._target(request)
        url = self.base_url + path + (f"?{request.query}" if request.query else "")
        headers = {**request.headers, **self.settings.headers}
        if self.tokens is None:
            answer = await self._send(method, url, request, headers)
        else:
            headers["authorization"] = await self.tokens.header()
            answer = await self._send(method, url, request, headers)
            if answer.status_code == 401:  # revoked before its time: one new token, one retry
                headers["authorization"] = await self.tokens.header(renew=True)
                answer = await self._send(method, url, request, headers)
        return GatewayResponse(
            status=answer.status_code,
            body=answer.content,
            content_type=answer.headers.get("content-type", "application/octet-stream"),
            headers={
                k: v for k, v in answer.headers.items() if k not in _DROPPED and k != "content-type"
            },
        )

    async def _send(
        self, method: str, url: str, request: GatewayRequest, headers: dict[str, str]
    ) -> httpx.Response:
        try:
            answer = await self.client.request(
                method,
                url,
                content=request.body or None,
                headers=headers,
                timeout=httpx.Timeout(request.remaining()),
            )
        except httpx.HTTPError as exc:
            error = upstream_error(exc, self.name)
            self.health.failed(error)
            raise error from None
        self.health.ok()
        return answer

    def _target(self, request: GatewayRequest) -> tuple[str, str]:
        operation = request.operation.strip()
        if not operation:
            return request.method, request.path
        method, _, path = operation.partition(" ") if " " in operation else ("", "", operation)
        if method and method not in _METHODS:
            raise UpstreamError(f"operation {operation!r}: unknown method {method!r}")
        path = _PARAM.sub(lambda m: quote(request.path_params.get(m[1], ""), safe=""), path)
        return method or request.method, path

    async def check(self) -> UpstreamHealth:
        if self.settings.health_path is None:
            return self.health.state
        try:
            answer = await self.client.get(
                self.base_url + self.settings.health_path, timeout=httpx.Timeout(2.0)
            )
        except httpx.HTTPError as exc:
            return UpstreamHealth(state="down", detail=upstream_error(exc, self.name).detail)
        return UpstreamHealth(
            state="up" if answer.status_code < 500 else "down",
            detail=f"{self.settings.health_path}: {answer.status_code}",
        )

    async def aclose(self) -> None:
        await self.client.aclose()
