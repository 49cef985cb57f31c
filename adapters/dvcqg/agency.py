"""What an agency system sends (one record, or query filters) and gets back (clean JSON).

Routes usually validate bodies already; the adapter checks again because a
route may have no schema, and a bad request must end as a clear 4xx with
the path of every error, never as a portal error or a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec

from adapters import bodies
from adapters.base import GatewayRequest, GatewayResponse

T = TypeVar("T", bound=msgspec.Struct)


def convert(data: Any, kind: type[T], root: str = "$") -> T:
    """``data`` as one ``kind`` record, or a ``schema_invalid`` refusal listing every error."""
    return bodies.convert(data, kind, root, what=f"the {kind.__name__} record")


def query_filters(request: GatewayRequest, kind: type[T]) -> T:
    """The query string as ``kind`` (portal field names, e.g. ``?MaLinhVuc=G09``)."""
    return convert(dict(parse_qsl(request.query)), kind, root="$query")


def json_answer(document: Any) -> GatewayResponse:
    """The portal's result data as plain JSON, never the portal's envelope."""
    return GatewayResponse(body=msgspec.json.encode(document))
