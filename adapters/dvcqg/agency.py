"""What an agency system sends (one record, or query filters) and gets back (clean JSON).

Routes usually validate bodies already; the adapter checks again because a
route may have no schema, and a bad request must end as a clear 4xx with
the path of every error, never as a portal error or a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec

from adapters.base import GatewayRequest, GatewayResponse, RequestRejected
from schemas.typecheck import collect_errors, format_path

T = TypeVar("T", bound=msgspec.Struct)


def decoded_body(request: GatewayRequest) -> Any:
    """The JSON body as builtins (the route's decoding when it validated one)."""
    if request.data is not None:
        return request.data
    try:
        return msgspec.json.decode(request.body or b"null")
    except msgspec.DecodeError as exc:
        raise RequestRejected(
            "malformed_body",
            "the body is not valid JSON",
            errors=[{"path": "$", "message": str(exc)}],
        ) from None


def convert(data: Any, kind: type[T], root: str = "$") -> T:
    """``data`` as ``kind``, or a ``schema_invalid`` refusal listing every error."""
    if not isinstance(data, dict):
        raise RequestRejected(
            "schema_invalid",
            f"expected one {kind.__name__} record (a JSON object)",
            errors=[{"path": root, "message": f"expected an object, not {type(data).__name__}"}],
        )
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError:
        errors = [
            {"path": format_path(e.path, root), "message": e.message}
            for e in collect_errors(data, kind)
        ]
        raise RequestRejected(
            "schema_invalid", f"{len(errors)} error(s) in the {kind.__name__} record", errors=errors
        ) from None


def query_filters(request: GatewayRequest, kind: type[T]) -> T:
    """The query string as ``kind`` (portal field names, e.g. ``?MaLinhVuc=G09``)."""
    return convert(dict(parse_qsl(request.query)), kind, root="$query")


def json_answer(document: Any) -> GatewayResponse:
    """The portal's result data as plain JSON, never the portal's envelope."""
    return GatewayResponse(body=msgspec.json.encode(document))
