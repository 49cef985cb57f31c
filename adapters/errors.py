"""What an adapter raises, each error carrying the stable code, HTTP status and title.

The code is part of the gateway's API (agency systems branch on it); the
class says it once, so whoever raises the error cannot get it wrong and the
gateway never has to look a code up::

    GatewayError
    ├── RequestRejected ........ 422 schema_invalid     the caller's data cannot become a call
    │   ├── MalformedBody ...... 400 malformed_body     not even parseable
    │   ├── XmlForbidden ....... 400 xml_forbidden      a DOCTYPE, an entity: refused unread
    │   └── PayloadTooLarge .... 413 payload_too_large  past a size limit
    └── UpstreamError .......... 502 upstream_error     no usable answer from the upstream
        ├── UpstreamUnavailable  502 upstream_unavailable   could not connect
        ├── UpstreamTimeout .... 504 upstream_timeout       no answer in time
        ├── UpstreamRejected ... 422 upstream_rejected      it refused the caller's data
        ├── UpstreamNotFound ... 404 not_found              it has no such record
        └── UpstreamAuthFailed . 502 upstream_auth_failed   it refused our credentials

An adapter package adds codes of its own by subclassing (``code``, ``status``
and ``title`` as class attributes) and lists the classes in its ``Plugin``;
the gateway then shows them in its problem documents, OpenAPI and
``config check``. Codes are stable: add, never rename.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

Source = Literal["gateway", "upstream"]


class ErrorCode(msgspec.Struct, frozen=True):
    """One entry of the error vocabulary."""

    code: str
    status: int
    title: str


class GatewayError(Exception):
    """An error the caller sees as a problem document with this class's code."""

    code: ClassVar[str]
    status: ClassVar[int]
    title: ClassVar[str]
    source: ClassVar[Source] = "gateway"
    """Who failed, sent as ``X-LGSP-Error-Source``: the gateway (or the caller), or the upstream."""

    def __init__(self, detail: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        """``{"path": ..., "message": ...}`` items, as schema errors list them."""

    @classmethod
    def error_code(cls) -> ErrorCode:
        return ErrorCode(cls.code, cls.status, cls.title)


class RequestRejected(GatewayError):
    """The request cannot become an upstream call (e.g. it does not fit the WSDL).

    The caller's fault, found by the adapter before anything was sent.
    """

    code = "schema_invalid"
    status = 422
    title = "Request body does not match the schema"


class MalformedBody(RequestRejected):
    code = "malformed_body"
    status = 400
    title = "Request body cannot be parsed"


class XmlForbidden(RequestRejected):
    code = "xml_forbidden"
    status = 400
    title = "XML construct not accepted"


class PayloadTooLarge(RequestRejected):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"


class UpstreamError(GatewayError):
    """The upstream could not give a usable answer."""

    code = "upstream_error"
    status = 502
    title = "Upstream answered with an error"
    source = "upstream"

    def __init__(self, detail: str, *, upstream_status: int | None = None) -> None:
        super().__init__(detail)
        self.upstream_status = upstream_status

    @property
    def retry_condition(self) -> str | None:
        """The route ``retry.on`` value that allows retrying this failure, if any."""
        return "5xx" if (self.upstream_status or 0) >= 500 else None


class UpstreamUnavailable(UpstreamError):
    """Could not reach the upstream at all (refused, reset, DNS): safe to retry if idempotent."""

    code = "upstream_unavailable"
    title = "Upstream cannot be reached"

    @property
    def retry_condition(self) -> str | None:
        return "unavailable"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the route's deadline."""

    code = "upstream_timeout"
    status = 504
    title = "Upstream did not answer in time"

    @property
    def retry_condition(self) -> str | None:
        return "timeout"


class UpstreamRejected(UpstreamError):
    """The upstream understood the call and refused its data (a validation error of theirs).

    The caller's data is at fault, not the link: never retried, answered as 422.
    """

    code = "upstream_rejected"
    status = 422
    title = "Upstream refused the request's data"

    @property
    def retry_condition(self) -> str | None:
        return None


class UpstreamNotFound(UpstreamError):
    """The upstream has no such record (a lookup's answer, not a failure)."""

    code = "not_found"
    status = 404
    title = "Not found"

    @property
    def retry_condition(self) -> str | None:
        return None


class UpstreamAuthFailed(UpstreamError):
    """The gateway's own credentials for the upstream were refused (login, signature)."""

    code = "upstream_auth_failed"
    title = "Upstream refused the gateway's credentials"

    @property
    def retry_condition(self) -> str | None:
        return None


SDK_ERRORS: tuple[type[GatewayError], ...] = (
    RequestRejected,
    MalformedBody,
    XmlForbidden,
    PayloadTooLarge,
    UpstreamError,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamRejected,
    UpstreamNotFound,
    UpstreamAuthFailed,
)
"""The codes every adapter may raise, known to the gateway without any plugin."""
