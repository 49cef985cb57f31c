"""``type: http``: forward to an HTTP/REST upstream over a pool of keep-alive connections.

The route's ``operation`` says where: empty forwards the inbound method and
path; ``/api/x/{id}`` forwards to that path (path parameters substituted);
``GET /api/x`` also changes the method.

Forwarding goes through ``adapters.http1``, a lean HTTP/1.1 client: the data plane
needs no httpx models. httpx stays for the OAuth2 token calls.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit

import msgspec

from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.errors import UpstreamError
from adapters.http1 import ACCEPT_ENCODING, Answer, Pool, decoded
from adapters.httpclient import (
    OUTBOUND_HEADERS,
    PassiveHealth,
    PoolSettings,
    TlsSettings,
    build_client,
    ssl_context,
)
from adapters.oauth2 import ClientCredentials, TokenSource
from adapters.units import seconds

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PATH_SAFE = "/!$&'()*+,;=:@"
"""Kept as they are in a path (RFC 3986 pchar); everything else is percent-encoded."""
_DECODED = {"accept-encoding": ACCEPT_ENCODING}
"""Offered whatever the caller accepts: the gateway reads the answer, so it must decode it."""
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
        url = urlsplit(settings.base_url)
        https = url.scheme == "https"
        self.pool = Pool(
            name,
            url.hostname or "",
            url.port or (443 if https else 80),
            ssl_context(settings.tls, context.config_dir) if https else None,
            max_connections=settings.pool.max_connections,
            max_keepalive=settings.pool.max_keepalive,
            connect_timeout=seconds(settings.pool.connect_timeout),
        )
        self.prefix = url.path.rstrip("/")
        self.defaults = {
            "host": url.netloc.rpartition("@")[2],
            "accept": "*/*",
            "user-agent": "lgsp-gateway",
        }
        if url.username is not None:  # credentials in the URL, as httpx sent them
            pair = f"{unquote(url.username)}:{unquote(url.password or '')}"
            self.defaults["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        self.headers = {k.lower(): v for k, v in settings.headers.items()}
        self.health = PassiveHealth()
        self.tokens = (
            TokenSource(
                settings.oauth2,
                build_client(settings.tls, settings.pool, context.config_dir),
                name,
            )
            if settings.oauth2 is not None
            else None
        )

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        method, target = self._target(request)
        if request.query:
            target = f"{target}{'&' if '?' in target else '?'}{request.query}"
        headers = {**self.defaults, **request.headers, **self.headers, **_DECODED}
        outbound = OUTBOUND_HEADERS.get()
        if outbound:
            headers.update(outbound)
        if self.tokens is None:
            answer = await self._send(method, target, request, headers)
        else:
            headers["authorization"] = await self.tokens.header()
            answer = await self._send(method, target, request, headers)
            if answer.status == 401:  # revoked before its time: one new token, one retry
                headers["authorization"] = await self.tokens.header(renew=True)
                answer = await self._send(method, target, request, headers)
        return _response(answer)

    async def _send(
        self, method: str, target: str, request: GatewayRequest, headers: dict[str, str]
    ) -> Answer:
        body = request.body
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        lines.extend([f"{name}: {value}\r\n" for name, value in headers.items()])
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {len(body)}\r\n")
        lines.append("\r\n")
        try:
            answer = await self.pool.request(
                method, "".join(lines).encode("latin-1"), body, request.deadline
            )
        except UpstreamError as error:
            self.health.failed(error)
            raise
        self.health.ok()
        return answer

    def _target(self, request: GatewayRequest) -> tuple[str, str]:
        """Method and request target (path percent-encoded, the base URL's path before it)."""
        operation = request.operation.strip()
        if not operation:
            return request.method, self.prefix + quote(request.path, safe=_PATH_SAFE)
        method, _, path = operation.partition(" ") if " " in operation else ("", "", operation)
        if method and method not in _METHODS:
            raise UpstreamError(f"operation {operation!r}: unknown method {method!r}")
        path = _PARAM.sub(lambda m: quote(request.path_params.get(m[1], ""), safe=""), path)
        path, mark, query = path.partition("?")  # a query in the operation is sent as written
        target = self.prefix + quote(path, safe=_PATH_SAFE + "%") + mark + query
        return method or request.method, target

    async def check(self) -> UpstreamHealth:
        if self.settings.health_path is None:
            return self.health.state
        probe = GatewayRequest(
            operation=f"GET {self.settings.health_path}",
            method="GET",
            path=self.settings.health_path,
            deadline=time.monotonic() + 2.0,
        )
        method, target = self._target(probe)
        try:
            answer = await self._send(method, target, probe, dict(self.defaults))
        except UpstreamError as error:
            return UpstreamHealth(state="down", detail=error.detail)
        return UpstreamHealth(
            state="up" if answer.status < 500 else "down",
            detail=f"{self.settings.health_path}: {answer.status}",
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self.tokens is not None:
            await self.tokens.client.aclose()


def _response(answer: Answer) -> GatewayResponse:
    """The answer as the gateway passes it on: connection headers dropped, body decoded."""
    headers: dict[str, str] = {}
    content_type = "application/octet-stream"
    encoding = ""
    for raw_name, raw_value in answer.headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in _DROPPED:
            if name == "content-encoding":
                encoding = value
        elif name == "content-type":
            content_type = value
        else:  # a repeated header: its values joined, as HTTP allows (RFC 9110 §5.3)
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    body = decoded(answer.body, encoding) if encoding else answer.body
    return GatewayResponse(
        status=answer.status, body=body, content_type=content_type, headers=headers
    )
