"""The shape of ``gateway.yaml``. Unknown keys and wrong types are errors.

Upstream settings are typed by their adapter (``adapters.<type>.Settings``)
and checked in a second pass, since the adapter set is open-ended.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from gateway.config.units import Duration, Size

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
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080


class Limits(_Section):
    max_body_size: Size = "10MiB"
    """Default for routes that set no ``max_body_size``."""
    timeout: Duration = "30s"
    """Default for routes that set no ``timeout``."""


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class AdminSettings(_Section):
    api_keys: list[KeyHash] = []
    """Hashes of the keys accepted on ``/admin/*``. No key: the admin API is closed."""


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


class RequestSpec(_Section):
    schema: str
    """``module.Struct`` under ``schemas/`` for JSON bodies, or a path to an ``.xsd`` for XML."""


class Route(_Section):
    id: Identifier
    match: Match
    upstream: Identifier
    clients: Annotated[list[str], msgspec.Meta(min_length=1)]
    """Client ids allowed to call this route; ``"*"`` allows every client."""
    operation: str = ""
    description: str = ""
    summary: str = ""
    request: RequestSpec | None = None
    timeout: Duration | None = None
    retry: RetryPolicy | None = None
    idempotent: bool | None = None
    """Safe to call twice? Default: by method (GET, PUT, DELETE yes; POST, PATCH no)."""
    max_body_size: Size | None = None
    log_bodies: bool = False
    """Bodies of this route may be written to logs (after masking). Off for personal data."""
    tags: list[str] = []


class GatewayConfig(_Section):
    version: Literal[1] = 1
    include: list[str] = []
    """Further YAML files (globs, relative to this file) adding clients, upstreams and routes."""
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    limits: Limits = msgspec.field(default_factory=Limits)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    admin: AdminSettings = msgspec.field(default_factory=AdminSettings)
    clients: list[Client] = []
    upstreams: dict[Identifier, dict[str, Any]] = {}
    """Name -> ``{type: <adapter>, ...settings of that adapter}``."""
    routes: list[Route] = []


INCLUDABLE_SECTIONS = ("clients", "upstreams", "routes")
