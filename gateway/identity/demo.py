"""The demo issuer behind ``lgsp-gateway token``: for trying bearer tokens with no identity
provider at hand. Its key is public (``config/demo-identity/``); no production config may
trust its JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import ECAlgorithm

from gateway.config.model import TokenSettings


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The public half as a JWK, ``kid`` its RFC 7638 thumbprint (what the JWKS file holds)."""
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    kid = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": "ES256"}


def mint(
    pem: bytes, settings: TokenSettings, client: str, scopes: Sequence[str], ttl: float
) -> str:
    """A token for ``client`` as the configured issuer would sign it (ES256)."""
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the demo issuer signs with an EC P-256 key")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": client,
        "client_id": client,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": public_jwk(key)["kid"]})
