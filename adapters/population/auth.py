"""Authentication through the national data-exchange platform: the one place it is built.

Two independent public integrations agree on the scheme (population.md): a
``Timestamp`` header (epoch milliseconds) and ``Authorization: Basic
base64(user ":" sha256hex(authUrl + user + timestamp + secret))``, plus the
``X-Road-Client`` and ``ApiKey`` headers. The mock checks with the same function.
"""

from __future__ import annotations

import base64
import hashlib


def password(auth_url: str, user: str, timestamp: str, secret: str) -> str:
    """The hashed password of one request: the secret itself never travels."""
    return hashlib.sha256((auth_url + user + timestamp + secret).encode()).hexdigest()


def auth_headers(
    *, user: str, secret: str, auth_url: str, x_road_client: str, api_key: str, timestamp_ms: int
) -> dict[str, str]:
    timestamp = str(timestamp_ms)
    token = f"{user}:{password(auth_url, user, timestamp, secret)}"
    return {
        "Timestamp": timestamp,
        "Authorization": "Basic " + base64.b64encode(token.encode()).decode(),
        "X-Road-Client": x_road_client,
        "ApiKey": api_key,
    }
