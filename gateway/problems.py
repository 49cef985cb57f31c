"""Errors as RFC 9457 problem documents, each with a stable ``code``.

Every error a caller can see is a ``Problem``; its code is part of the API
(agency systems branch on it), its title is fixed per code, its detail says
what exactly went wrong. ``X-LGSP-Error-Source`` tells the caller whether
the gateway or the upstream failed, as X-Road's ``X-Road-Error`` does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from adapters import registry
from adapters.errors import ErrorCode, GatewayError, Source

ERROR_SOURCE_HEADER = "x-lgsp-error-source"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# The core's own codes: (HTTP status, title). Stable: add, never rename. What adapters
# may raise (upstream_*, schema_invalid, ...) is declared with their error classes
# (adapters/errors.py and each plugin's), and joins these in ``vocabulary()``.
CODES: dict[str, tuple[int, str]] = {
    "duplicate_header": (400, "A header that counts once was sent more than once"),
    "path_invalid": (400, "Path not accepted"),
    "malformed_request": (400, "Not a valid HTTP/1.1 request"),
    "unauthenticated": (401, "Authentication required"),
    "token_invalid": (401, "Bearer token not accepted"),
    "token_expired": (401, "Bearer token has expired"),
    "insufficient_scope": (403, "Token lacks a scope this call needs"),
    "rate_limited": (429, "Rate limit or quota exceeded"),
    "upstream_circuit_open": (503, "Upstream is failing; calls are paused"),
    "overloaded": (503, "Gateway is at capacity"),
    "forbidden": (403, "Not allowed for this client"),
    "route_not_found": (404, "No route for this path"),
    "method_not_allowed": (405, "Method not allowed on this path"),
    "unsupported_media_type": (415, "Unsupported content type"),
    "signature_invalid": (422, "Digital signature verification failed"),
    "config_invalid": (422, "Configuration is invalid"),
    "idempotency_conflict": (409, "Idempotency-Key already used with another request"),
    "idempotency_in_progress": (409, "The first request with this Idempotency-Key is not done"),
    "idempotency_not_replayable": (
        409,
        "The first answer to this Idempotency-Key cannot be replayed",
    ),
    "log_unavailable": (503, "The exchange cannot be recorded, so it is not acknowledged"),
    "storage_unavailable": (503, "The request cannot be stored for delivery"),
    "headers_too_large": (431, "Request header fields too large"),
    "request_timeout": (408, "Request not received in time"),
    "not_ready": (503, "Gateway is not ready"),
    "access_request_conflict": (409, "The access request conflicts with its current state"),
    "internal_error": (500, "Internal gateway error"),
}


@cache
def vocabulary() -> dict[str, ErrorCode]:
    """Every code a caller may see: the core's, the adapter SDK's and every plugin's."""
    codes = {code: ErrorCode(code, status, title) for code, (status, title) in CODES.items()}
    for code, entry in registry.error_codes().items():
        if code in codes and codes[code] != entry:
            raise registry.PluginError(f"error code {code!r} differs from the gateway's own")
        codes[code] = entry
    return codes


class Problem(Exception):
    """An error answered as a problem document; ``code`` is a core code or an ``ErrorCode``."""

    def __init__(
        self,
        code: str | ErrorCode,
        detail: str,
        *,
        source: Source = "gateway",
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        entry = code if isinstance(code, ErrorCode) else vocabulary()[code]
        self.code, self.status, self.title = entry.code, entry.status, entry.title
        self.detail = detail
        self.source = source
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @classmethod
    def of(cls, error: GatewayError, extra: dict[str, Any] | None = None) -> Problem:
        """What the caller sees of an adapter's error: its class says code, status and title."""
        return cls(
            error.error_code(), error.detail, source=error.source, errors=error.errors, extra=extra
        )

    def body(self, request_id: str) -> bytes:
        document: dict[str, Any] = {
            "type": f"urn:lgsp-gateway:problem:{self.code}",
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "code": self.code,
            "request_id": request_id,
        }
        if self.errors is not None:
            document["errors"] = self.errors
        document.update(self.extra)
        return msgspec.json.encode(document)

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, ERROR_SOURCE_HEADER: self.source}
