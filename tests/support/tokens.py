"""A test identity provider: signing keys, their JWKS served on loopback, tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.demo import public_jwk
from tests.support.servers import Receive, Scope, Send, lifespan, serve_in_thread

ISSUER = "https://idp.test.invalid/realms/lgsp"
AUDIENCE = "lgsp-gateway"


class Issuer:
    def __init__(self) -> None:
        self.keys = [ec.generate_private_key(ec.SECP256R1())]
        self.published = list(self.keys)
        self.fetches = 0

    def rotate(self) -> None:
        """A new signing key, published beside the old one."""
        self.keys.append(ec.generate_private_key(ec.SECP256R1()))
        self.published = list(self.keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key) for key in self.published]}

    def token(self, key: ec.EllipticCurvePrivateKey | None = None, **claims: Any) -> str:
        key = key or self.keys[-1]
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "client_id": "agency-a",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key, algorithm="ES256", headers={"kid": public_jwk(key)["kid"]})

    @contextmanager
    def serving(self) -> Iterator[str]:
        """The JWKS at ``<url>``, read fresh on every request."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
                return
            self.fetches += 1
            body = msgspec.json.encode(self.jwks())
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        with serve_in_thread(app) as url:
            yield f"{url}/certs"
