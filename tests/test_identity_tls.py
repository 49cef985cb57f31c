"""Client certificates through real TLS handshakes, and a trusted proxy's header."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway import edge
from gateway.app import create_app
from gateway.auth import hash_key
from gateway.config.loader import load_config
from gateway.identity.certificates import uvicorn_tls_options
from tests.support.config import TEST_KEY
from tests.support.servers import serve_in_thread
from tests.support.tls_pki import LocalCA

ROUTES = """
upstreams:
  echo:
    type: stub
    operations: {hello: {reply: {body: {client: "{{ client_id }}"}}}}
routes:
  - {id: hello, match: {method: GET, path: /hello}, clients: ["*"], upstream: echo,
      operation: hello}
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "gateway.yaml"
    path.write_text(text.replace("TEST_KEY_HASH", hash_key(TEST_KEY)), encoding="utf-8")
    return path


class Pki:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = LocalCA(directory)
        self.server = self.ca.issue("server", server=True)
        self.by_subject = self.ca.issue("agency-b", server=False)
        self.by_san = self.ca.issue("agency-c", server=False, dns="qlvb.tinh.example.vn")
        self.by_fingerprint = self.ca.issue("agency-d", server=False)
        self.expired = self.ca.issue("agency-b-old", server=False, expired=True)
        (directory / "other").mkdir()
        self.stranger_ca = LocalCA(directory / "other", name="Other CA")  # same CN, other CA
        self.stranger = self.stranger_ca.issue("agency-b", server=False)

    def fingerprint(self, cert: Path) -> str:
        der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
        return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def serve(pki: Pki, directory: Path, extra: str = "", tls: bool = True) -> Iterator[str]:
    server_tls = (
        f"server:\n  tls: {{certificate: {pki.server[0]}, key: {pki.server[1]}, "
        f"client_ca: {pki.ca.cert_file}, min_version: '1.2'}}\n"
        if tls
        else ""
    )
    config = write(
        directory,
        server_tls
        + extra
        + f"""
clients:
  - {{id: agency-a, name: A, api_keys: [TEST_KEY_HASH]}}
  - {{id: agency-b, name: B, certificates: [{{subject: CN=agency-b}}]}}
  - {{id: agency-c, name: C, certificates: [{{san: qlvb.tinh.example.vn}}]}}
  - id: agency-d
    name: D
    api_keys: [{hash_key("key-d")}]
    require_certificate: true
    certificates: [{{fingerprint: {pki.fingerprint(pki.by_fingerprint[0])}}}]
"""
        + ROUTES,
    )
    loaded = load_config(str(config))
    options = uvicorn_tls_options(loaded.config.server.tls, str(directory))
    edge_options = edge.uvicorn_options(loaded.config.server)
    with serve_in_thread(create_app(str(config)), **edge_options, **options) as url:
        yield url


@pytest.fixture
def gateway(pki: Pki, tmp_path: Path) -> Iterator[str]:
    yield from serve(pki, tmp_path)


def call(
    url: str, pki: Pki, cert: tuple[Path, Path] | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    with httpx.Client(verify=context) as client:
        return client.get(f"{url}/hello", headers=headers or {})


def test_valid_certificate_identifies_its_client(gateway: str, pki: Pki) -> None:
    assert call(gateway, pki, pki.by_subject).json() == {"client": "agency-b"}
    assert call(gateway, pki, pki.by_san).json() == {"client": "agency-c"}


def test_expired_certificate_fails_the_handshake(gateway: str, pki: Pki) -> None:
    with pytest.raises(httpx.TransportError):
        call(gateway, pki, pki.expired)


def test_certificate_from_another_ca_fails_the_handshake(gateway: str, pki: Pki) -> None:
    with pytest.raises(httpx.TransportError):
        call(gateway, pki, pki.stranger)


def test_no_certificate_needs_another_credential(gateway: str, pki: Pki) -> None:
    refused = call(gateway, pki, None)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"
    assert call(gateway, pki, None, {"x-api-key": TEST_KEY}).json() == {"client": "agency-a"}


def test_key_and_certificate_together(gateway: str, pki: Pki) -> None:
    key = {"x-api-key": "key-d"}
    assert call(gateway, pki, pki.by_fingerprint, key).json() == {"client": "agency-d"}
    alone = call(gateway, pki, None, key)
    assert alone.status_code == 401
    assert "certificate" in alone.json()["detail"]
    wrong = call(gateway, pki, pki.by_subject, key)  # agency-b's certificate, agency-d's key
    assert wrong.status_code == 401


def test_minimum_tls_version(pki: Pki, tmp_path: Path) -> None:
    config = write(
        tmp_path,
        f"server:\n  tls: {{certificate: {pki.server[0]}, key: {pki.server[1]}, min_version: '1.3'}}\n"
        "clients: [{id: agency-a, name: A, api_keys: [TEST_KEY_HASH]}]\n" + ROUTES,
    )
    options = uvicorn_tls_options(load_config(str(config)).config.server.tls, str(tmp_path))
    with serve_in_thread(create_app(str(config)), **options) as url:
        old = ssl.create_default_context(cafile=str(pki.ca.cert_file))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with httpx.Client(verify=old) as client, pytest.raises(httpx.TransportError):
            client.get(f"{url}/hello")
        modern = ssl.create_default_context(cafile=str(pki.ca.cert_file))
        with httpx.Client(verify=modern) as client:
            assert client.get(f"{url}/hello", headers={"x-api-key": TEST_KEY}).status_code == 200


def forwarded(pki: Pki, cert: Path) -> dict[str, str]:
    return {"x-ssl-client-cert": quote(cert.read_text())}  # as nginx's $ssl_client_escaped_cert


@pytest.mark.parametrize(("proxies", "trusted"), [("[127.0.0.1]", True), ("[10.0.0.0/8]", False)])
def test_certificate_header_only_from_trusted_proxies(
    pki: Pki, tmp_path: Path, proxies: str, trusted: bool
) -> None:
    extra = (
        "identity:\n  forwarded_certificate:\n    header: x-ssl-client-cert\n"
        f"    trusted_proxies: {proxies}\n"
    )
    for url in serve(pki, tmp_path, extra, tls=False):
        answer = httpx.get(f"{url}/hello", headers=forwarded(pki, pki.by_subject[0]))
        if trusted:
            assert answer.json() == {"client": "agency-b"}
        else:
            assert answer.status_code == 401
