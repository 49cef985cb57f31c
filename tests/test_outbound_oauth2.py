"""An http upstream that wants an OAuth2 bearer token from the gateway."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.config import TEST_KEY, write_config
from tests.support.servers import Receive, Scope, Send, lifespan, request_body, serve_in_thread


class Provider:
    """A token endpoint and an API that accepts only its current token."""

    def __init__(self) -> None:
        self.issued = 0
        self.current = ""
        self.forms: list[dict[str, list[str]]] = []
        self.authorizations: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await request_body(receive)
        headers = dict(scope["headers"])
        if scope["path"] == "/token":
            self.forms.append(parse_qs(body.decode()))
            self.authorizations.append(headers.get(b"authorization", b"").decode())
            self.issued += 1
            self.current = f"token-{self.issued}"
            answer: Any = {"access_token": self.current, "token_type": "Bearer", "expires_in": 3600}
            status = 200
        elif headers.get(b"authorization") == f"Bearer {self.current}".encode():
            answer, status = {"ok": True}, 200
        else:
            answer, status = {"error": "invalid_token"}, 401
        data = msgspec.json.encode(answer)
        start = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": start})
        await send({"type": "http.response.body", "body": data})


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Provider]]:  # type: ignore[type-arg]
    provider = Provider()
    with serve_in_thread(provider) as url:
        config = write_config(
            tmp_path,
            f"""
            clients: [{{{{id: agency-a, name: A, api_keys: [{{test_key}}]}}}}]
            upstreams:
              api:
                type: http
                base_url: {url}
                oauth2:
                  token_url: {url}/token
                  client_id: lgsp-gateway
                  client_secret: s3cret
                  scope: registry.read
            routes:
              - {{{{id: data, match: {{{{method: GET, path: /data}}}}, clients: ["*"],
                  upstream: api, operation: /data}}}}
            """,
        )
        with TestClient(create_app(str(config))) as client:
            yield client, provider


def test_token_is_fetched_once_and_reused(setup: tuple[TestClient, Provider]) -> None:  # type: ignore[type-arg]
    client, provider = setup
    for _ in range(3):
        assert client.get("/data", headers={"x-api-key": TEST_KEY}).json() == {"ok": True}
    assert provider.issued == 1
    assert provider.forms[0] == {"grant_type": ["client_credentials"], "scope": ["registry.read"]}
    expected = base64.b64encode(b"lgsp-gateway:s3cret").decode()
    assert provider.authorizations[0] == f"Basic {expected}"


def test_a_401_renews_the_token_once(setup: tuple[TestClient, Provider]) -> None:  # type: ignore[type-arg]
    client, provider = setup
    assert client.get("/data", headers={"x-api-key": TEST_KEY}).status_code == 200
    provider.current = "revoked-by-the-provider"
    assert client.get("/data", headers={"x-api-key": TEST_KEY}).json() == {"ok": True}
    assert provider.issued == 2
