"""``schema: edxml``: the body-schema kind this package brings to routes (see its plugin).

The edXML rules of ``schemas.edxml``, streamed, every issue coded. A JSON
body is the document's JSON form (``schemas.edxml.jsonform``): agency systems
that cannot write XML send that, and it must meet the same rules.
"""

from __future__ import annotations

from typing import Any

import schemas.edxml as edxml
from adapters.bodies import BodyError, BodyInvalid, decode_json
from adapters.errors import MalformedBody, PayloadTooLarge, XmlForbidden

# Refusals for size, not for shape: the caller should send less, not fix syntax.
_TOO_BIG = frozenset({"too_large", "too_many_elements", "text_too_long"})


class EdxmlBody:
    name = "edxml"
    media_type = "application/xml"

    def validate(self, body: bytes) -> Any:
        try:
            issues = edxml.validate(body)
        except edxml.EdxmlError as exc:
            raise edxml_invalid(exc) from None
        if issues:
            raise edxml_invalid(edxml.EdxmlInvalid(issues))
        return None

    def validate_json(self, body: bytes) -> Any:
        """The JSON form: its shape (JSON paths), then the edXML rules (edXML paths)."""
        data = decode_json(body)
        try:
            document = edxml.from_json(data)
        except edxml.EdxmlInvalid as exc:
            raise edxml_invalid(exc) from None
        with document:
            issues = edxml.check(document)
        if issues:
            raise edxml_invalid(edxml.EdxmlInvalid(issues))
        return None  # not the decoded JSON: the request would carry the attachments twice


def edxml_invalid(exc: edxml.EdxmlError) -> BodyInvalid:
    """An ``EdxmlError`` as the caller sees it: a code, and every issue with its path and rule."""
    if isinstance(exc, edxml.EdxmlUnsafe):
        unsafe = PayloadTooLarge if exc.reason in _TOO_BIG else XmlForbidden
        return BodyInvalid([BodyError("/", str(exc), exc.reason)], error=unsafe)
    if isinstance(exc, edxml.EdxmlInvalid):
        return BodyInvalid([BodyError(i.path, i.message, i.rule) for i in exc.errors])
    return BodyInvalid([BodyError("/", str(exc))], error=MalformedBody)  # EdxmlMalformed
