"""Client certificates: who the TLS peer is, by fingerprint, subject or subjectAltName.

Under ``lgsp-gateway serve`` every connection records its peer (address and,
over TLS, the certificate the handshake verified) in the ASGI scope's
``state``, through ``PeerRecording``, a mixin for uvicorn's protocol class:
uvicorn itself does not pass the client certificate on. Behind a proxy that
terminates TLS, the certificate may instead come in a header, believed only
when the connection comes from one of ``trusted_proxies``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.config.model import ForwardedCertificate, ServerTls

PEER_STATE = "lgsp.peer"
"""Key of the ``Peer`` in ``scope["state"]``."""


class Certificate:
    """A client certificate (DER) and the names a client entry may match it by."""

    def __init__(self, der: bytes) -> None:
        self.der = der
        self.fingerprint = "sha256:" + hashlib.sha256(der).hexdigest()

    @cached_property
    def _parsed(self) -> x509.Certificate | None:
        try:
            return x509.load_der_x509_certificate(self.der)
        except ValueError:
            return None

    @cached_property
    def subject(self) -> str | None:
        return None if self._parsed is None else self._parsed.subject.rfc4514_string()

    @cached_property
    def alt_names(self) -> list[str]:
        if self._parsed is None:
            return []
        try:
            san = self._parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return [
            *san.value.get_values_for_type(x509.DNSName),
            *san.value.get_values_for_type(x509.RFC822Name),
            *san.value.get_values_for_type(x509.UniformResourceIdentifier),
        ]


class Peer:
    """The other end of one connection."""

    __slots__ = ("address", "certificate")

    def __init__(self, address: str | None, certificate: Certificate | None) -> None:
        self.address = address
        self.certificate = certificate


class PeerRecording:
    """Mixin for a uvicorn HTTP protocol: puts the connection's ``Peer`` in every request's
    ``scope["state"]`` (uvicorn copies ``app_state`` into each scope)."""

    app_state: dict[str, Any]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        peername = transport.get_extra_info("peername")
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        peer = Peer(peername[0] if peername else None, Certificate(der) if der else None)
        self.app_state = {**self.app_state, PEER_STATE: peer}


TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def uvicorn_tls_options(tls: ServerTls | None, config_dir: str) -> dict[str, Any]:
    """``uvicorn.run`` keyword arguments serving HTTPS as ``server.tls`` says."""
    if tls is None:
        return {}

    def path(name: str) -> str:
        return name if name.startswith("/") else f"{config_dir}/{name}"

    def context(_: Any, default: Any) -> ssl.SSLContext:
        made: ssl.SSLContext = default()
        made.minimum_version = TLS_VERSIONS[tls.min_version]
        return made

    options: dict[str, Any] = {
        "ssl_certfile": path(tls.certificate),
        "ssl_keyfile": path(tls.key),
        "ssl_context_factory": context,
    }
    if tls.client_ca is not None:
        options["ssl_ca_certs"] = path(tls.client_ca)
        required = tls.client_certificate == "required"
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return options


class ForwardedHeader:
    """The client certificate a trusted TLS-terminating proxy put in a header."""

    def __init__(self, settings: ForwardedCertificate) -> None:
        self.header = settings.header
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def certificate(self, value: str, peer_address: str | None) -> Certificate | None:
        if peer_address is None or not self._trusted(peer_address):
            return None
        try:
            parsed = x509.load_pem_x509_certificate(unquote(value).encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        return Certificate(parsed.public_bytes(Encoding.DER))

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)
