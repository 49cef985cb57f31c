"""Errors as RFC 9457 problem documents, each with a stable ``code``.

Every error a caller can see is a ``Problem``; its code is part of the API
(agency systems branch on it), its title is fixed per code, its detail says
what exactly went wrong. ``X-LGSP-Error-Source`` tells the caller whether
the gateway or the upstream failed, as X-Road's ``X-Road-Error`` does.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ERROR_SOURCE_HEADER = "x-lgsp-error-source"
PROBLEM_MEDIA_TYPE = "application/problem+json"

Source = Literal["gateway", "upstream"]

# code -> (HTTP status, title). Codes are stable: add, never rename.
CODES: dict[str, tuple[int, str]] = {
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed for this client"),
    "route_not_found": (404, "No route for this path"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed on this path"),
    "payload_too_large": (413, "Request body too large"),
    "unsupported_media_type": (415, "Unsupported content type"),
    "malformed_body": (400, "Request body cannot be parsed"),
    "xml_forbidden": (400, "XML construct not accepted"),
    "schema_invalid": (422, "Request body does not match the schema"),
    "signature_invalid": (422, "Digital signature verification failed"),
    "checksum_invalid": (403, "Message checksum does not verify"),
    "dossier_status_regression": (409, "Dossier status cannot move backwards"),
    "config_invalid": (422, "Configuration is invalid"),
    "idempotency_conflict": (409, "Idempotency-Key already used with another request"),
    "idempotency_in_progress": (409, "The first request with this Idempotency-Key is not done"),
    "log_unavailable": (503, "The exchange cannot be recorded, so it is not acknowledged"),
    "storage_unavailable": (503, "The request cannot be stored for delivery"),
    "upstream_timeout": (504, "Upstream did not answer in time"),
    "upstream_unavailable": (502, "Upstream cannot be reached"),
    "upstream_error": (502, "Upstream answered with an error"),
    "upstream_rejected": (422, "Upstream refused the request's data"),
    "upstream_auth_failed": (502, "Upstream refused the gateway's credentials"),
    "headers_too_large": (431, "Request header fields too large"),
    "request_timeout": (408, "Request not received in time"),
    "overloaded": (503, "Gateway is at capacity"),
    "not_ready": (503, "Gateway is not ready"),
    "internal_error": (500, "Internal gateway error"),
}


class Problem(Exception):
    def __init__(
        self,
        code: str,
        detail: str,
        *,
        source: Source = "gateway",
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title = CODES[code]
        self.code = code
        self.detail = detail
        self.source = source
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

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
