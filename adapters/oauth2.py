"""OAuth2 client credentials for upstreams that want a bearer token from the gateway.

The token is fetched from ``token_url`` with the client id and secret (set
them with ``${ENV}``), kept until shortly before ``expires_in`` runs out, and
fetched again once when the upstream answers 401 (a token revoked early).
Concurrent calls share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import httpx
import msgspec

from adapters.errors import UpstreamAuthFailed, UpstreamError
from adapters.units import Duration, seconds

REFRESH_MARGIN = 30.0
"""Seconds before expiry at which a cached token is no longer used."""


class ClientCredentials(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    client_id: str
    client_secret: str
    """Use ``${ENV}``: a secret does not belong in the YAML."""
    scope: str | None = None
    audience: str | None = None
    """Sent as ``audience`` (some providers, e.g. Auth0, need it)."""
    timeout: Duration = "10s"


class _TokenAnswer(msgspec.Struct):
    access_token: str
    token_type: str = "Bearer"
    expires_in: float = 300.0


class TokenSource:
    """The gateway's own bearer token for one upstream."""

    def __init__(self, settings: ClientCredentials, client: httpx.AsyncClient, name: str) -> None:
        self.settings = settings
        self.client = client
        self.name = name
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    async def header(self, *, renew: bool = False) -> str:
        """``Authorization`` value; ``renew`` discards the cached token (after a 401)."""
        stale = self._token
        async with self._lock:
            if renew and self._token == stale:
                self._token = None
            if self._token is None or time.monotonic() >= self._valid_until:
                await self._fetch()
            assert self._token is not None
            return f"Bearer {self._token}"

    async def _fetch(self) -> None:
        settings = self.settings
        form = {"grant_type": "client_credentials"}
        if settings.scope:
            form["scope"] = settings.scope
        if settings.audience:
            form["audience"] = settings.audience
        try:
            answer = await self.client.post(
                settings.token_url,
                data=form,
                auth=(settings.client_id, settings.client_secret),
                timeout=httpx.Timeout(seconds(settings.timeout)),
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"{self.name}: token endpoint unreachable: {type(exc).__name__}"
            ) from None
        if answer.status_code in (400, 401, 403):
            raise UpstreamAuthFailed(
                f"{self.name}: the token endpoint refused our client credentials "
                f"(HTTP {answer.status_code})"
            )
        if answer.status_code != 200:
            raise UpstreamError(
                f"{self.name}: token endpoint answered HTTP {answer.status_code}",
                upstream_status=answer.status_code,
            )
        try:
            token = msgspec.json.decode(answer.content, type=_TokenAnswer)
        except msgspec.DecodeError:
            raise UpstreamError(f"{self.name}: token endpoint answered no access_token") from None
        self._token = token.access_token
        self._valid_until = time.monotonic() + max(0.0, token.expires_in - REFRESH_MARGIN)
