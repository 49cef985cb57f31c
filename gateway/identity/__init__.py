"""Who is calling: API keys, client certificates, bearer tokens, compiled per runtime.

``Identity.authenticate`` is step 1 of the pipeline. An ``X-API-Key``, when
sent, decides alone (a wrong one is refused, nothing else is tried); else a
``Authorization: Bearer`` token, when ``identity.tokens`` is configured; else
the client certificate of the connection (or of a trusted proxy's header).
The common case, a key, costs one hash and one dictionary lookup.
"""

from __future__ import annotations

from typing import Any

from gateway.auth import KeyRing
from gateway.config.model import Client, GatewayConfig, key_hash
from gateway.identity.certificates import PEER_STATE, Certificate, ForwardedHeader, Peer
from gateway.identity.tokens import TokenVerifier, token_problem
from gateway.problems import Problem

API_KEY_HEADER = "x-api-key"


class Caller:
    """An authenticated client; ``scopes`` is None unless it came with a token."""

    __slots__ = ("client", "scopes")

    def __init__(self, client: Client, scopes: frozenset[str] | None = None) -> None:
        self.client = client
        self.scopes = scopes


class Identity:
    def __init__(self, config: GatewayConfig, config_dir: str, previous: Identity | None) -> None:
        clients = [c for c in config.clients if c.enabled]
        self.keys: KeyRing[Client] = KeyRing(
            (spec, client) for client in clients for spec in client.api_keys
        )
        self.by_id = {client.id: client for client in clients}
        self.certificates: dict[tuple[str, str], Client] = {
            (kind, value): client
            for client in clients
            for match in client.certificates
            for kind, value in (
                ("fingerprint", match.fingerprint),
                ("subject", match.subject),
                ("san", match.san),
            )
            if value
        }
        settings = config.identity
        self.forwarded = (
            ForwardedHeader(settings.forwarded_certificate)
            if settings.forwarded_certificate
            else None
        )
        self.tokens: TokenVerifier | None = None
        if settings.tokens is not None:
            kept = previous.tokens if previous is not None else None
            same = kept is not None and kept.settings == settings.tokens
            # a verifier kept across reloads keeps its JWKS cache
            self.tokens = kept if same else TokenVerifier(settings.tokens, config_dir)
        self.admin_keys: KeyRing[str] = KeyRing(
            (spec, f"admin-key:{key_hash(spec)[7:19]}") for spec in config.admin.api_keys
        )
        self.admin_scope = config.admin.token_scope

    async def authenticate(self, headers: dict[str, str], scope: Any) -> Caller | None:
        """The caller, or None when it showed no credential this gateway knows."""
        forwarded = headers.pop(self.forwarded.header, None) if self.forwarded else None
        key = headers.get(API_KEY_HEADER)
        if key:
            client = self.keys.lookup(key)
            if client is None:
                return None
            if client.require_certificate:
                self._check_certificate(client, scope, forwarded)
            return Caller(client)
        authorization = headers.get("authorization")
        if authorization and self.tokens is not None and authorization[:7].lower() == "bearer ":
            claims = await self.tokens.verify(authorization[7:].strip())
            client = self.by_id.get(claims.client_id)
            if client is None:
                raise token_problem(
                    "token_invalid", f"the token's client {claims.client_id!r} is not configured"
                )
            if client.require_certificate:
                self._check_certificate(client, scope, forwarded)
            return Caller(client, claims.scopes)
        if self.certificates:
            certificate = self._certificate(scope, forwarded)
            client = self._client_of(certificate) if certificate else None
            if client is not None:
                return Caller(client)
        return None

    def unauthenticated(self, headers: dict[str, str]) -> Problem:
        challenge = "ApiKey, Bearer" if self.tokens else "ApiKey"
        if headers.get(API_KEY_HEADER):
            detail = "unknown, expired or disabled API key"
        elif self.tokens is None and headers.get("authorization"):
            detail = "bearer tokens are not accepted here (no identity.tokens); send X-API-Key"
        else:
            detail = "missing credentials: send X-API-Key" + (
                " or Authorization: Bearer" if self.tokens else ""
            )
        return Problem("unauthenticated", detail, headers={"www-authenticate": challenge})

    async def admin(self, headers: dict[str, str]) -> str | None:
        """Who the admin caller is (for the record), or None: an admin key, or a token with
        the admin scope."""
        actor = self.admin_keys.lookup(headers.get(API_KEY_HEADER))
        if actor is not None:
            return actor
        authorization = headers.get("authorization", "")
        if self.tokens is None or authorization[:7].lower() != "bearer ":
            return None
        claims = await self.tokens.verify(authorization[7:].strip())
        if self.admin_scope not in claims.scopes:
            raise Problem(
                "insufficient_scope", f"the admin API needs a token with scope {self.admin_scope!r}"
            )
        return f"token:{claims.client_id}"

    def _check_certificate(self, client: Client, scope: Any, forwarded: str | None) -> None:
        certificate = self._certificate(scope, forwarded)
        if certificate is None or self._client_of(certificate) is not client:
            raise Problem(
                "unauthenticated",
                f"client {client.id!r} must also present its client certificate",
                headers={"www-authenticate": "ApiKey"},
            )

    def _certificate(self, scope: Any, forwarded: str | None) -> Certificate | None:
        state = scope.get("state")
        peer: Peer | None = state.get(PEER_STATE) if state else None
        if forwarded is not None and self.forwarded is not None:
            client = scope.get("client")
            address = peer.address if peer is not None else (client[0] if client else None)
            return self.forwarded.certificate(forwarded, address)
        return peer.certificate if peer is not None else None

    def _client_of(self, certificate: Certificate) -> Client | None:
        found = self.certificates.get(("fingerprint", certificate.fingerprint))
        if found is None and certificate.subject is not None:
            found = self.certificates.get(("subject", certificate.subject))
        for name in certificate.alt_names if found is None else ():
            found = self.certificates.get(("san", name))
            if found is not None:
                break
        return found
