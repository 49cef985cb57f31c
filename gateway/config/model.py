"""The shape of ``gateway.yaml``. Unknown keys and wrong types are errors.

Upstream settings are typed by their adapter (``adapters.<type>.Settings``)
and checked in a second pass, since the adapter set is open-ended.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from adapters import registry
from adapters.units import Duration, Size
from gateway.signatures.policy import SignatureMode, SignaturePolicy, TrustSettings

Identifier = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="an identifier: lower-case letters, digits, '-', '_' or '.'",
    ),
]
KeyHash = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="'sha256:' and 64 hex digits, the SHA-256 of an API key "
        "(make one with `lgsp-gateway keygen`)",
    ),
]
Rate = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[1-9][0-9]*/(s|second|m|minute|h|hour|d|day)$",
        description="calls per window: '10/s', '600/minute', '1000/hour', '50000/day'",
    ),
]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
RetryCondition = Literal["unavailable", "timeout", "5xx"]


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerTls(_Section):
    """HTTPS served by the gateway itself; files relative to the config file."""

    certificate: str
    """PEM: the gateway's certificate, then any intermediates."""
    key: str
    client_ca: str | None = None
    """PEM bundle of the CAs whose client certificates are accepted (mutual TLS)."""
    client_certificate: Literal["optional", "required"] = "optional"
    """With ``client_ca``: ``required`` refuses a handshake without a certificate; ``optional``
    lets API-key and token clients in without one."""
    min_version: Literal["1.2", "1.3"] = "1.2"


class ServerSettings(_Section):
    """The listener and the limits applied to every request before authentication."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    max_header_size: Size = "16KiB"
    """Request line and headers together; more is refused with 431 ``headers_too_large``."""
    max_headers: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    """Header fields per request; more is refused with 431 ``headers_too_large``."""
    header_timeout: Duration = "10s"
    """Time to receive the request line and headers (from connect, or from the first byte
    on a kept-alive connection); then 408 ``request_timeout`` and close."""
    body_timeout: Duration = "10s"
    """Longest pause while a request body arrives (408 ``request_timeout`` and close). The
    whole body must also arrive within the route's ``timeout``."""
    keep_alive_timeout: Duration = "5s"
    """An idle kept-alive connection is closed after this."""
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """Open connections per process; one more is answered 503 ``overloaded`` and closed."""
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] = 256
    """Requests in the pipeline at once, per process (see also a route's ``max_in_flight``)."""
    queue_timeout: Duration = "1s"
    """How long a request may wait for a slot (never past its route's timeout); then 503
    ``overloaded`` with ``Retry-After``."""
    tls: ServerTls | None = None
    """Serve HTTPS (and accept client certificates); none: plain HTTP."""
    metrics_listen: (
        Annotated[
            str,
            msgspec.Meta(pattern=r"^[^:\s]+:[0-9]{1,5}$", description="HOST:PORT (0.0.0.0:9464)"),
        ]
        | None
    ) = None
    """``HOST:PORT`` serving Prometheus ``/metrics`` with no key (a port only the monitoring
    network reaches). Unset: ``/metrics`` is on the main port, behind an admin key."""
    shutdown_grace: Duration = "20s"
    """On SIGTERM: stop accepting, let requests in flight finish for at most this long."""


class Limits(_Section):
    max_body_size: Size = "10MiB"
    """Default for routes that set no ``max_body_size``."""
    timeout: Duration = "30s"
    """Default for routes that set no ``timeout``."""


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """``auto``: readable lines when stdout is a terminal, JSON lines otherwise."""


class TracingSettings(_Section):
    """OpenTelemetry tracing: one span per exchange, W3C ``traceparent`` in and out."""

    enabled: bool = False
    exporter: Literal["otlp", "console", "none"] = "otlp"
    """``otlp`` needs the ``[otlp]`` extra (``pip install 'lgsp-gateway[otlp]'``)."""
    endpoint: str | None = None
    """OTLP/HTTP traces URL; unset: the exporter's own default or ``OTEL_EXPORTER_OTLP_*``."""
    service_name: str = "lgsp-gateway"
    sample_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    """Share of new traces kept; a caller's sampled ``traceparent`` is always followed."""


class ApiKey(_Section):
    """A key with an end date, so a new one can be added and the old retired without downtime."""

    hash: KeyHash
    not_after: dt.date | None = None
    """Last day the key is accepted (Vietnam time, UTC+7); `config check` warns 30 days ahead."""


KeySpec = KeyHash | ApiKey


def key_hash(spec: KeySpec) -> str:
    return spec.hash if isinstance(spec, ApiKey) else spec


class AdminSettings(_Section):
    api_keys: list[KeySpec] = []
    """Hashes of the keys accepted on ``/admin/*``. No key and no token issuer: the admin API
    is closed."""
    token_scope: str = "admin"
    """A bearer token (``identity.tokens``) carrying this scope is accepted on ``/admin/*``."""


class StorageSettings(_Section):
    url: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^(sqlite:///.+|postgresql://.+)$",
            description="sqlite:///FILE or postgresql://user@host:port/database",
        ),
    ] = "sqlite:///data/gateway.db"
    """``sqlite:///FILE`` (relative to the config file) or ``postgresql://user@host:port/db``."""
    background_lease: Duration = "15s"
    """Background work done once per deployment (a hosted adapter's poller) is held by one
    process for this long, renewed every third of it; another takes it over this long after
    its holder died (at once after a graceful stop)."""


class MessageLogSettings(_Section):
    enabled: bool = True
    max_body_size: Size = "64KiB"
    """Stored bodies (only on routes whose ``message_log.bodies`` is on) are cut to this."""
    personal_fields: list[str] = msgspec.field(
        default_factory=lambda: list(registry.personal_fields())
    )
    """JSON keys whose values are masked in stored bodies."""
    retention: Duration | None = None
    """Purge records older than this (checked hourly); none: keep everything."""
    archive_dir: str | None = None
    """Write purged records here as JSON Lines first (relative to the config file)."""


class DeliverySettings(_Section):
    """Store-and-forward for routes with ``delivery: async``."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 8
    max_age: Duration = "24h"
    """A message still undelivered this long after acceptance goes to the dead letters."""
    backoff: Duration = "1s"
    max_backoff: Duration = "5m"
    lease: Duration = "60s"
    """How long a worker owns a delivery; a crashed worker's deliveries return after it."""
    poll_interval: Duration = "500ms"
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=256)] = 4
    """Deliveries in flight per upstream, per gateway process."""
    keep_finished: Duration = "30d"
    """Delivered and discarded messages (stored request, answer, attempts) are deleted this
    long after they end; the message log keeps their evidence. Dead letters are kept."""


class IdempotencySettings(_Section):
    ttl: Duration = "24h"
    """How long an ``Idempotency-Key`` is remembered."""


class MockSettings(_Section):
    """One mock national system started with the gateway."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    """Default: the mock's own (``lgsp-gateway mock --help`` lists them)."""
    options: dict[str, Any] = {}
    """Passed to the mock's ``create_app`` (see ``lgsp-gateway mock --help``)."""


class CertificateMatch(_Section):
    """Names a client certificate by one of: fingerprint, subject, subject alternative name."""

    fingerprint: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^sha256:[0-9a-f]{64}$",
                description="'sha256:' and the 64 hex digits of the certificate's SHA-256",
            ),
        ]
        | None
    ) = None
    subject: str | None = None
    """RFC 4514, as ``openssl x509 -noout -subject -nameopt RFC2253`` prints it: ``CN=x,O=y``."""
    san: str | None = None
    """A DNS name, e-mail address or URI of the certificate's subjectAltName."""


class Client(_Section):
    """An agency system allowed to call the gateway."""

    id: Identifier
    name: str
    api_keys: list[KeySpec] = []
    """Several keys may be valid at once (rotation); a key may carry ``not_after``."""
    certificates: list[CertificateMatch] = []
    """Client certificates (mutual TLS) that identify this client."""
    require_certificate: bool = False
    """An API key alone is not enough: the same client's certificate must come with it."""
    rate_limits: list[Rate] = []
    """Limits on all this client's calls together (every route)."""
    enabled: bool = True
    description: str = ""


class Match(_Section):
    method: HttpMethod
    path: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^(/[A-Za-z0-9._~-]*|/\{[a-z_][a-z0-9_]*\})+$",
            description="an absolute path; '{name}' marks a path parameter, e.g. /v1/x/{id}",
        ),
    ]


class RetryPolicy(_Section):
    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    """Total attempts, the first included. Only idempotent routes are retried."""
    on: list[RetryCondition] = msgspec.field(default_factory=lambda: ["unavailable"])
    backoff: Duration = "100ms"
    """First wait; doubled each retry, with jitter, capped by ``max_backoff``."""
    max_backoff: Duration = "2s"
    attempt_timeout: Duration | None = None
    """Bound on one attempt, so a slow first try leaves time for another."""


class RouteMessageLog(_Section):
    bodies: bool = False
    """Keep request and response bodies in the message log (capped, masked)."""
    mask: bool = True
    """Mask personal data in kept bodies. Turn off only where the law asks for the full text."""


SignatureRule = SignatureMode | SignaturePolicy
"""``off``, ``if_present``, ``required``, or a full policy (mode, revocation, algorithms)."""


class RequestSpec(_Section):
    schema: str
    """``module.Struct`` under ``schemas/`` for JSON bodies, or a path to an ``.xsd`` for XML."""


class Route(_Section):
    id: Identifier
    match: Match
    upstream: Identifier
    clients: Annotated[list[str], msgspec.Meta(min_length=1)]
    """Client ids allowed to call this route; ``"*"`` allows every client."""
    public: bool = False
    """Callable without an API key (e.g. a national system's callback, which the adapter
    authenticates itself, as PayGov's checksum). Recorded with client ``public``."""
    operation: str = ""
    description: str = ""
    summary: str = ""
    request: RequestSpec | None = None
    timeout: Duration | None = None
    retry: RetryPolicy | None = None
    idempotent: bool | None = None
    """Safe to call twice? Default: by method (GET, PUT, DELETE yes; POST, PATCH no)."""
    max_body_size: Size | None = None
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Requests of this route in the pipeline at once, per process; none: only the
    server-wide ``server.max_in_flight``."""
    rate_limits: list[Rate] = []
    """Limits on this route's calls, all clients together."""
    client_rate_limits: list[Rate] = []
    """Limits on this route's calls by each client separately (a daily quota: ``5000/day``)."""
    scopes: list[str] = []
    """Scopes a bearer token must carry to call this route (API keys and certificates are
    authorized by ``clients`` alone)."""
    log_bodies: bool = False
    """Bodies of this route may be written to logs (after masking). Off for personal data."""
    verify_signatures: SignatureRule = "off"
    """Check the digital signatures of the body (edXML or PDF) before it goes upstream."""
    delivery: Literal["sync", "async"] = "sync"
    """``async``: store the request, answer 202 with a status URL, deliver in the background."""
    message_log: RouteMessageLog = msgspec.field(default_factory=RouteMessageLog)
    tags: list[str] = []


JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
"""Public-key algorithms only: never ``none``, never HMAC (a JWKS holds public keys)."""


class TokenSettings(_Section):
    """OAuth2 bearer tokens (JWT) from the province's identity provider."""

    issuer: str
    """``iss`` the tokens must carry."""
    audience: str
    """``aud`` the tokens must carry: this gateway."""
    jwks: str
    """The issuer's public keys: a JWKS file (relative to the config file) or an https:// URL."""
    algorithms: Annotated[list[JwtAlgorithm], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["RS256", "ES256"]
    )
    leeway: Duration = "30s"
    """Clock skew tolerated on ``exp`` and ``nbf``."""
    client_claims: Annotated[list[str], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["client_id", "azp", "sub"]
    )
    """Claims naming the client, tried in order; the first present must be a client id."""
    jwks_timeout: Duration = "5s"
    jwks_cache: Duration = "10m"
    """A fetched JWKS is used this long, then fetched again."""
    jwks_refetch_interval: Duration = "30s"
    """A token with an unknown ``kid`` fetches the JWKS again, at most this often."""


class ForwardedCertificate(_Section):
    """The client certificate as a TLS-terminating proxy passes it on."""

    header: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]+$")]
    """Lower-case header with the URL-encoded PEM (nginx ``$ssl_client_escaped_cert``)."""
    trusted_proxies: Annotated[list[str], msgspec.Meta(min_length=1)]
    """Addresses or CIDR blocks of the proxies; the header from anyone else is ignored."""


class IdentitySettings(_Section):
    tokens: TokenSettings | None = None
    forwarded_certificate: ForwardedCertificate | None = None


class TrafficSettings(_Section):
    storage: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^(memory|rediss?://.+)$",
            description="memory, or redis://host:port/db to share counters between processes",
        ),
    ] = "memory"
    """Where rate-limit counters live. Read at start."""


class CircuitBreakerSettings(_Section):
    """Stop calling an upstream that keeps failing (timeouts, connection errors, 5xx)."""

    enabled: bool = True
    failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Consecutive failures that open the circuit."""
    failure_rate: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] | None = 0.5
    """Share of failed calls within ``window`` that opens it (once ``min_calls`` were made)."""
    window: Duration = "60s"
    min_calls: Annotated[int, msgspec.Meta(ge=1)] = 20
    cool_down: Duration = "30s"
    """How long an open circuit answers at once; then one probe call is let through."""


class UpstreamTraffic(_Section):
    """The gateway's keys of an ``upstreams`` entry besides ``type`` (the rest is the
    adapter's)."""

    circuit_breaker: CircuitBreakerSettings = msgspec.field(default_factory=CircuitBreakerSettings)
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] = 100
    """Calls to this upstream in flight at once, per process; more: 503 ``overloaded``."""


UPSTREAM_TRAFFIC_KEYS = ("circuit_breaker", "max_in_flight")


OrganId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$",
        description="an agency code (mã định danh cơ quan), e.g. 000.00.11.H53",
    ),
]
Text = Annotated[str, msgspec.Meta(min_length=1)]


class Owner(_Section):
    """The agency that owns the data a service shares."""

    organ_id: OrganId
    name: Text


class LegalBasis(_Section):
    """One legal document a service's data sharing rests on."""

    document: Text
    """Number and kind, e.g. ``Nghị định 278/2025/NĐ-CP``."""
    article: str = ""
    """Article or clause, e.g. ``Điều 12``."""
    title: str = ""


class DataField(_Section):
    """One field a service shares, with its meaning."""

    name: Text
    """As it appears in requests or answers, e.g. ``so_dinh_danh``."""
    meaning: Text
    """What it means, in Vietnamese."""
    meaning_en: str = ""
    dictionary_code: str | None = None
    """Its code in the shared data dictionary (danh mục dữ liệu dùng chung), where one exists."""
    personal: bool = False
    """Personal data (Decree 13/2023/NĐ-CP): shown as such to whoever asks for access."""


class ServiceLevel(_Section):
    availability: Annotated[float, msgspec.Meta(gt=0, le=100)]
    """Target, in percent of the time (e.g. 99.5)."""
    response_time: Duration
    """Expected time to answer (e.g. ``2s``)."""
    hours: str = "24/7"
    """When the service is supported, e.g. ``7:30-17:00 working days``."""


class Contact(_Section):
    name: Text
    email: str = ""
    phone: str = ""


class ServiceExample(_Section):
    """A call and its answer, shown in the catalogue."""

    route: Identifier
    title: str = ""
    request: Any = None
    """The request body (JSON), if the route takes one."""
    response: Any = None


class Service(_Section):
    """A catalogue entry: routes that share one kind of data, with who owns it, on what legal
    basis, at what service level, and how to ask for access."""

    id: Identifier
    name: Text
    """Vietnamese name."""
    routes: Annotated[list[Identifier], msgspec.Meta(min_length=1)]
    """Ids of the routes this service groups; a route belongs to one service at most."""
    name_en: str = ""
    shared: bool = True
    """Shared data (dữ liệu dùng chung): listed for the national catalogue; owner,
    descriptions, fields, classification, legal basis, SLA and contact are then required."""
    description: str = ""
    description_en: str = ""
    owner: Owner | None = None
    classification: Literal["public", "internal", "restricted", "confidential"] | None = None
    """Access level of the data: public (công khai), internal (dùng chung nội bộ), restricted
    (chia sẻ có điều kiện), confidential (mật: never shared through the catalogue)."""
    fields: list[DataField] = []
    legal_basis: list[LegalBasis] = []
    sla: ServiceLevel | None = None
    contact: Contact | None = None
    version: Text = "1"
    state: Literal["active", "deprecated"] = "active"
    deprecated_since: dt.date | None = None
    """With ``state: deprecated``: announced in the ``Deprecation`` header (RFC 9745)."""
    sunset: dt.date | None = None
    """With ``state: deprecated``: the day it stops, in the ``Sunset`` header (RFC 8594)."""
    successor: Identifier | None = None
    """The service that replaces a deprecated one."""
    examples: list[ServiceExample] = []


class GatewayConfig(_Section):
    version: Literal[1] = 1
    include: list[str] = []
    """Further YAML files (globs, relative to this file) adding clients, upstreams and routes."""
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    limits: Limits = msgspec.field(default_factory=Limits)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    tracing: TracingSettings = msgspec.field(default_factory=TracingSettings)
    admin: AdminSettings = msgspec.field(default_factory=AdminSettings)
    identity: IdentitySettings = msgspec.field(default_factory=IdentitySettings)
    """How clients may prove who they are besides API keys: bearer tokens, certificates."""
    traffic: TrafficSettings = msgspec.field(default_factory=TrafficSettings)
    trust: TrustSettings | None = None
    """Trust anchors and revocation checking for routes that verify signatures."""
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    message_log: MessageLogSettings = msgspec.field(default_factory=MessageLogSettings)
    delivery: DeliverySettings = msgspec.field(default_factory=DeliverySettings)
    idempotency: IdempotencySettings = msgspec.field(default_factory=IdempotencySettings)
    mocks: dict[str, MockSettings] = {}
    """Mock national systems to start with the gateway: for development and demos, never
    production. Read only at start."""
    clients: list[Client] = []
    upstreams: dict[Identifier, dict[str, Any]] = {}
    """Name -> ``{type: <adapter>, ...settings of that adapter}``."""
    routes: list[Route] = []
    services: list[Service] = []
    """The service catalogue: routes grouped, described, and open to access requests."""


INCLUDABLE_SECTIONS = ("clients", "upstreams", "routes", "services")
