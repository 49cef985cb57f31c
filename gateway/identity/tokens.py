"""OAuth2 bearer tokens: JWTs signed by the province's identity provider, checked here.

The signature is checked against the issuer's JWKS (a file, or a URL fetched
by PyJWT's ``PyJWKClient``: cached, fetched again for an unknown ``kid`` at
most every ``jwks_refetch_interval``, each fetch under ``jwks_timeout``).
Only public-key algorithms of the allow-list are accepted, and each key is
used with the algorithm it was published for, so neither ``alg: none`` nor
an HMAC token "signed" with a public key can pass. ``iss``, ``aud`` and
``exp`` are required; ``exp``/``nbf`` get ``leeway``.

Fetching a JWKS blocks (urllib), so it runs in a thread; a token whose key is
already known never leaves the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import jwt
import msgspec

from adapters.logs import get_logger
from adapters.units import seconds
from gateway.config.model import TokenSettings
from gateway.problems import Problem

log = get_logger(__name__)


class TokenClaims(msgspec.Struct, frozen=True):
    client_id: str
    scopes: frozenset[str]


def token_problem(code: str, detail: str) -> Problem:
    """401 with the RFC 6750 challenge."""
    challenge = f'Bearer error="invalid_token", error_description="{detail}"'
    return Problem(code, detail, headers={"www-authenticate": challenge})


class TokenVerifier:
    def __init__(self, settings: TokenSettings, config_dir: str) -> None:
        self.settings = settings
        self.leeway = seconds(settings.leeway)
        self.lifespan = seconds(settings.jwks_cache)
        self._keys: dict[str | None, tuple[float, jwt.PyJWK]] = {}
        self._fetch_lock = asyncio.Lock()
        self._client: jwt.PyJWKClient | None = None
        if settings.jwks.startswith(("http://", "https://")):
            self._client = jwt.PyJWKClient(
                settings.jwks,
                cache_jwk_set=True,
                lifespan=self.lifespan,
                timeout=seconds(settings.jwks_timeout),
                cooldown_duration=seconds(settings.jwks_refetch_interval),
            )
        else:
            with open(os.path.join(config_dir, settings.jwks), encoding="utf-8") as handle:
                jwks = jwt.PyJWKSet.from_json(handle.read())
            for key in jwks.keys:
                self._keys[key.key_id] = (float("inf"), key)

    async def verify(self, token: str) -> TokenClaims:
        """The client and scopes of a valid token; ``token_invalid``/``token_expired`` else."""
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise token_problem("token_invalid", "not a JWT") from None
        alg = header.get("alg")
        if alg not in settings.algorithms:
            raise token_problem("token_invalid", f"algorithm {alg!r} is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise token_problem("token_expired", "the token has expired") from None
        except jwt.PyJWTError as exc:
            raise token_problem("token_invalid", _reason(exc)) from None
        client = next((claims[c] for c in settings.client_claims if claims.get(c)), None)
        if not isinstance(client, str):
            names = "/".join(settings.client_claims)
            raise token_problem("token_invalid", f"the token names no client ({names})")
        return TokenClaims(client, _scopes(claims))

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        cached = self._keys.get(kid)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if kid is None and self._client is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))[1]
        if self._client is None or kid is None:
            raise token_problem("token_invalid", "the token's signing key is unknown")
        async with self._fetch_lock:  # concurrent tokens with a new kid: one fetch
            try:
                key = await asyncio.to_thread(self._client.get_signing_key, kid)
            except jwt.PyJWKClientConnectionError as exc:
                log.warning("jwks_fetch_failed", url=self.settings.jwks, error=str(exc))
                raise token_problem(
                    "token_invalid", "the issuer's keys cannot be fetched now"
                ) from None
            except jwt.PyJWKClientError:
                raise token_problem("token_invalid", "the token's signing key is unknown") from None
        self._keys[kid] = (time.monotonic() + self.lifespan, key)
        return key


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token is not for this gateway (aud)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token is from another issuer (iss)"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf)"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "the token's algorithm does not match its key"
    return "the token cannot be verified"


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """``scope`` (space-separated, RFC 8693) or ``scp`` (a list or a string)."""
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, list):
        return frozenset(str(s) for s in raw)
    return frozenset(str(raw).split())
