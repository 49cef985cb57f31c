"""The http adapter over TLS: CA pinning and client certificates (mutual TLS)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.servers import serve_in_thread
from tests.support.tls_pki import LocalCA
from tests.support.upstreams import echo_upstream

KEY = {"x-api-key": TEST_KEY}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    ca = LocalCA(directory)
    ca.issue("upstream", server=True)
    ca.issue("lgsp-gateway", server=False)
    LocalCA(directory, name="Other CA").issue("stranger", server=False)
    return directory


@pytest.fixture(scope="module")
def mtls_upstream(pki: Path) -> Iterator[str]:
    """An HTTPS upstream that only talks to clients with a certificate from the test CA."""
    with serve_in_thread(
        echo_upstream(),
        ssl_certfile=str(pki / "upstream.pem"),
        ssl_keyfile=str(pki / "upstream.key"),
        ssl_ca_certs=str(pki / "lgsp-test-ca.pem"),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as url:
        yield url


def gateway(tmp_path: Path, pki: Path, url: str, tls: str) -> TestClient:  # type: ignore[type-arg]
    text = (
        BASE_CONFIG
        + f"""
upstreams:
  secure:
    type: http
    base_url: {url}
    tls: {tls}
routes:
  - {{{{id: r, match: {{{{method: GET, path: /echo/x}}}}, clients: ["*"], upstream: secure}}}}
"""
    )
    return TestClient(create_app(str(write_config(tmp_path, text.replace("PKI", str(pki))))))


def test_client_certificate_and_pinned_ca(tmp_path: Path, pki: Path, mtls_upstream: str) -> None:
    tls = "{{ca_file: PKI/lgsp-test-ca.pem, cert_file: PKI/lgsp-gateway.pem, key_file: PKI/lgsp-gateway.key}}"
    with gateway(tmp_path, pki, mtls_upstream, tls) as client:
        response = client.get("/echo/x", headers=KEY)
        assert response.status_code == 200
        assert response.json()["path"] == "/echo/x"


def test_upstream_with_an_unknown_ca_is_refused(
    tmp_path: Path, pki: Path, mtls_upstream: str
) -> None:
    tls = "{{cert_file: PKI/lgsp-gateway.pem, key_file: PKI/lgsp-gateway.key}}"  # system CAs only
    with gateway(tmp_path, pki, mtls_upstream, tls) as client:
        response = client.get("/echo/x", headers=KEY)
        assert response.status_code == 502
        assert response.json()["code"] == "upstream_unavailable"


@pytest.mark.parametrize(
    "client_cert", ["", ", cert_file: PKI/stranger.pem, key_file: PKI/stranger.key"]
)
def test_upstream_refuses_a_gateway_without_a_trusted_certificate(
    tmp_path: Path, pki: Path, mtls_upstream: str, client_cert: str
) -> None:
    tls = "{{ca_file: PKI/lgsp-test-ca.pem" + client_cert + "}}"
    with gateway(tmp_path, pki, mtls_upstream, tls) as client:
        response = client.get("/echo/x", headers=KEY)
        assert response.status_code == 502
        assert response.json()["code"] == "upstream_unavailable"
