"""The shape of ``gateway.yaml``. Unknown keys and wrong types are errors.

Upstream settings are typed by their adapter (``adapters.<type>.Settings``)
and checked in a second pass, since the adapter set is open-ended.
"""

from __future__ import annotations

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
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
RetryCondition = Literal["unavailable", "timeout", "5xx"]


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


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


class AdminSettings(_Section):
    api_keys: list[KeyHash] = []
    """Hashes of the keys accepted on ``/admin/*``. No key: the admin API is closed."""


class StorageSettings(_Section):
    url: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^(sqlite:///.+|postgresql://.+)$",
            description="sqlite:///FILE or postgresql://user@host:port/database",
        ),
    ] = "sqlite:///data/gateway.db"
    """``sqlite:///FILE`` (relative to the config file) or ``postgresql://user@host:port/db``."""


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


class Client(_Section):
    """An agency system allowed to call the gateway."""

    id: Identifier
    name: str
    api_keys: Annotated[list[KeyHash], msgspec.Meta(min_length=1)]
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
    log_bodies: bool = False
    """Bodies of this route may be written to logs (after masking). Off for personal data."""
    verify_signatures: SignatureRule = "off"
    """Check the digital signatures of the body (edXML or PDF) before it goes upstream."""
    delivery: Literal["sync", "async"] = "sync"
    """``async``: store the request, answer 202 with a status URL, deliver in the background."""
    message_log: RouteMessageLog = msgspec.field(default_factory=RouteMessageLog)
    tags: list[str] = []


class GatewayConfig(_Section):
    version: Literal[1] = 1
    include: list[str] = []
    """Further YAML files (globs, relative to this file) adding clients, upstreams and routes."""
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    limits: Limits = msgspec.field(default_factory=Limits)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    tracing: TracingSettings = msgspec.field(default_factory=TracingSettings)
    admin: AdminSettings = msgspec.field(default_factory=AdminSettings)
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


INCLUDABLE_SECTIONS = ("clients", "upstreams", "routes")
