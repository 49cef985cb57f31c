"""Reading and checking bodies: what routes' schemas and adapters share.

A body-schema kind (``BodySchema``) checks a whole request body and raises
``BodyInvalid`` listing every error with its path; an adapter that reads a
JSON body itself uses ``json_body`` and ``convert``, so its refusals look
exactly like a route schema's.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import msgspec

from adapters.base import GatewayRequest
from adapters.errors import MalformedBody, RequestRejected
from schemas import jsonsafe
from schemas.typecheck import collect_errors, format_path

T = TypeVar("T")


def media_type(content_type: str) -> str:
    """``"application/json"`` of ``"Application/JSON; charset=utf-8"``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


class BodyError(msgspec.Struct, frozen=True, omit_defaults=True):
    path: str
    message: str
    rule: str | None = None
    """A stable code for the broken rule, where the validator has one (edXML does)."""


class BodyInvalid(ValueError):
    """Every error a schema found in a body; ``error`` is the refusal the caller gets."""

    def __init__(self, errors: list[BodyError], *, error: type[RequestRejected] = RequestRejected):
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in errors))
        self.errors = errors
        self.error = error

    @property
    def code(self) -> str:
        return self.error.code

    def rejection(self, what: str = "the request body") -> RequestRejected:
        errors: list[dict[str, str]] = msgspec.to_builtins(self.errors)  # omits an absent rule
        return self.error(f"{len(errors)} error(s) in {what}", errors=errors)


class BodySchema(Protocol):
    """A schema a route names (``request.schema``): ``validate`` gives the decoded data (or
    None) or raises ``BodyInvalid``. A kind whose documents may also come in a JSON form (as
    edXML's do, for agency systems that cannot write XML) adds ``validate_json(body)``: the
    pipeline sends it a JSON body."""

    name: str
    media_type: str

    def validate(self, body: bytes) -> Any: ...


def decode_json(body: bytes) -> Any:
    """A JSON body as builtins, read the hardened way (``schemas.jsonsafe``: nesting depth,
    UTF-8, repeated keys); ``BodyInvalid`` (``malformed_body``) otherwise."""
    try:
        return jsonsafe.decode(body)
    except jsonsafe.UnsafeJson as exc:
        raise BodyInvalid([BodyError(exc.path, str(exc))], error=MalformedBody) from None
    except msgspec.DecodeError as exc:
        raise BodyInvalid([BodyError("$", f"not valid JSON: {exc}")], error=MalformedBody) from None


def parse_json(body: bytes) -> Any:
    """``decode_json`` for an adapter: what it refuses is a ``malformed_body`` rejection."""
    try:
        return decode_json(body)
    except BodyInvalid as exc:
        raise exc.rejection() from None


def json_body(request: GatewayRequest) -> Any:
    """The JSON body as builtins (the route's decoding when it validated one)."""
    if request.data is not None:
        return request.data
    return parse_json(request.body or b"null")


def convert(data: Any, kind: type[T], root: str = "$", what: str = "the request body") -> T:
    """``data`` as ``kind``, or a ``schema_invalid`` refusal listing every error with its path."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError:
        errors = [
            {"path": format_path(e.path, root), "message": e.message}
            for e in collect_errors(data, kind)
        ]
        raise RequestRejected(f"{len(errors)} error(s) in {what}", errors=errors) from None
