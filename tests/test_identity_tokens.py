"""Bearer tokens end to end: a real JWKS server on loopback, the gateway's HTTP path."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.config import ROOT, TEST_ADMIN_KEY, write_config
from tests.support.tokens import AUDIENCE, ISSUER, Issuer

CONFIG = """
admin:
  api_keys: [{admin_key}]
identity:
  tokens:
    issuer: {issuer}
    audience: {audience}
    jwks: {jwks}
    algorithms: [ES256]
    leeway: 5s
    jwks_refetch_interval: 0s
clients:
  - {{id: agency-a, name: Agency A}}
upstreams:
  echo:
    type: stub
    operations: {{hello: {{reply: {{body: {{ok: true}}}}}}}}
routes:
  - {{id: hello, match: {{method: GET, path: /hello}}, clients: [agency-a], upstream: echo,
      operation: hello}}
  - {{id: scoped, match: {{method: GET, path: /scoped}}, clients: [agency-a], upstream: echo,
      operation: hello, scopes: [registry.read]}}
"""


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client(tmp_path: Path, issuer: Issuer) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with issuer.serving() as jwks_url:
        text = CONFIG.replace("{issuer}", ISSUER).replace("{audience}", AUDIENCE)
        path = write_config(tmp_path, text.replace("{jwks}", jwks_url))
        with TestClient(create_app(str(path))) as test_client:
            yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def refused(client: TestClient, token: str, code: str) -> str:  # type: ignore[type-arg]
    response = client.get("/hello", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    detail: str = response.json()["detail"]
    return detail


def test_valid_token_is_the_client_it_names(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    response = client.get("/hello", headers=bearer(issuer.token()))
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_client_may_be_named_by_azp_or_sub(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    assert (
        client.get(
            "/hello", headers=bearer(issuer.token(client_id=None, azp="agency-a"))
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/hello", headers=bearer(issuer.token(client_id=None, sub="agency-a"))
        ).status_code
        == 200
    )
    assert "not configured" in refused(client, issuer.token(client_id="agency-z"), "token_invalid")


def test_expired_token(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    refused(client, issuer.token(exp=1_700_000_000), "token_expired")


def test_leeway_accepts_a_token_just_expired(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    import time

    token = issuer.token(exp=int(time.time()) - 2)  # leeway is 5s
    assert client.get("/hello", headers=bearer(token)).status_code == 200


def test_wrong_audience_and_issuer(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    assert "(aud)" in refused(client, issuer.token(aud="another-gateway"), "token_invalid")
    assert "(iss)" in refused(client, issuer.token(iss="https://evil.invalid"), "token_invalid")


def test_not_yet_valid(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    import time

    assert "(nbf)" in refused(client, issuer.token(nbf=int(time.time()) + 3600), "token_invalid")


def test_key_the_issuer_does_not_publish(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = ec.generate_private_key(ec.SECP256R1())
    assert "unknown" in refused(client, issuer.token(key=stranger), "token_invalid")


def test_tampered_token(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    header, payload, signature = issuer.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["client_id"] = "agency-a"
    claims["scope"] = "registry.read admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert "signature" in refused(client, f"{header}.{forged}.{signature}", "token_invalid")


def test_alg_none_is_refused(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    kid = issuer.jwks()["keys"][0]["kid"]
    payload = {"iss": ISSUER, "aud": AUDIENCE, "client_id": "agency-a", "exp": 4_000_000_000}
    unsigned = f"{part({'alg': 'none', 'kid': kid})}.{part(payload)}."
    assert "'none'" in refused(client, unsigned, "token_invalid")


def test_hmac_signed_with_the_public_key_is_refused(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    import hashlib
    import hmac

    jwk = issuer.jwks()["keys"][0]
    head = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "kid": jwk["kid"]}).encode()
    ).rstrip(b"=")
    body = base64.urlsafe_b64encode(
        json.dumps(
            {"iss": ISSUER, "aud": AUDIENCE, "client_id": "agency-a", "exp": 4_000_000_000}
        ).encode()
    ).rstrip(b"=")
    mac = hmac.new(json.dumps(jwk).encode(), head + b"." + body, hashlib.sha256).digest()
    token = f"{head.decode()}.{body.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert "HS256" in refused(client, token, "token_invalid")


def test_garbage_is_not_a_jwt(client: TestClient) -> None:  # type: ignore[type-arg]
    refused(client, "not-a-token", "token_invalid")


def test_key_rotation_fetches_the_jwks_again(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    assert client.get("/hello", headers=bearer(issuer.token())).status_code == 200
    fetched = issuer.fetches
    assert client.get("/hello", headers=bearer(issuer.token())).status_code == 200
    assert issuer.fetches == fetched  # a known key: no fetch
    issuer.rotate()
    assert client.get("/hello", headers=bearer(issuer.token())).status_code == 200
    assert issuer.fetches == fetched + 1
    old_key = issuer.keys[0]
    assert client.get("/hello", headers=bearer(issuer.token(key=old_key))).status_code == 200


def test_route_scopes_apply_to_tokens(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    response = client.get("/scoped", headers=bearer(issuer.token()))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    allowed = client.get("/scoped", headers=bearer(issuer.token(scope="registry.read other")))
    assert allowed.status_code == 200
    as_list = client.get("/scoped", headers=bearer(issuer.token(scp=["registry.read"])))
    assert as_list.status_code == 200


def test_admin_api_takes_a_token_with_the_admin_scope(client: TestClient, issuer: Issuer) -> None:  # type: ignore[type-arg]
    without = client.get("/admin/config", headers=bearer(issuer.token()))
    assert without.status_code == 403
    assert without.json()["code"] == "insufficient_scope"
    with_scope = client.post("/admin/reload", headers=bearer(issuer.token(scope="admin")))
    assert with_scope.status_code == 200
    records = client.get(
        "/admin/messages", params={"route": "admin.reload"}, headers={"x-api-key": TEST_ADMIN_KEY}
    ).json()["items"]
    assert [(r["client"], r["kind"], r["status"]) for r in records] == [
        ("token:agency-a", "admin", 200)
    ]


@pytest.mark.processes
def test_demo_token_command_mints_what_the_default_config_accepts(
    default_client: TestClient,  # type: ignore[type-arg]
) -> None:
    minted = subprocess.run(
        [sys.executable, "-m", "gateway", "token", "--client", "motcua-demo", "--scope", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    response = default_client.get("/v1/dvcqg/agencies", headers=bearer(minted))
    assert response.status_code == 200
