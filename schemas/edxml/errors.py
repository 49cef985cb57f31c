"""What can go wrong with an edXML message, as types and stable rule codes.

Three kinds of failure, because callers answer them differently: XML that is
not well-formed (``EdxmlMalformed``), XML refused for safety or size
(``EdxmlUnsafe``, also a ``schemas.xmlsafe.UnsafeXml``), and a well-formed
message that breaks edXML rules (``EdxmlInvalid``, listing every
``EdxmlIssue``). All are ``EdxmlError``.
"""

from __future__ import annotations

import msgspec

from schemas.xmlsafe import UnsafeXml

# Rule codes of EdxmlIssue: part of the API, never renamed.
MISSING_RECEIVER = "missing_receiver"
"""No ``To`` in the MessageHeader."""
DUPLICATE_RECEIVER = "duplicate_receiver"
"""Two ``To`` with the same OrganId."""
TOO_LONG = "too_long"
"""A text over its length limit (``EdxmlLimits``)."""
BAD_ORGAN_ID = "bad_organ_id"
"""An OrganId not shaped ``000.00.11.H53``."""
BAD_DOCUMENT_ID = "bad_document_id"
"""A DocumentId not shaped ``<OrganId>,<YYYY/MM/DD>,<Number>/<Notation>``."""
BAD_DATE = "bad_date"
"""A date or timestamp not in a documented format, or not a real date."""
BAD_INTEGER = "bad_integer"
"""Not a non-negative integer where the standard has a number."""
BAD_CODE = "bad_code"
"""A value outside its code table (Priority, StatusCode, ...)."""
BAD_CHARACTER = "bad_character"
"""A character XML 1.0 cannot carry (a control character)."""
BAD_BASE64 = "bad_base64"
"""Attachment content that is not base64."""
MISSING_ELEMENT = "missing_element"
"""A required element is absent or empty."""
UNEXPECTED_ELEMENT = "unexpected_element"
"""An element the standard does not have there (or in another namespace)."""
DUPLICATE_ELEMENT = "duplicate_element"
"""An element that may appear once appears again."""
MISPLACED_ELEMENT = "misplaced_element"
"""An element out of the order the standard fixes."""
UNEXPECTED_ATTRIBUTE = "unexpected_attribute"
"""An attribute the standard does not have."""
UNEXPECTED_TEXT = "unexpected_text"
"""Text between the child elements of a container element."""
DUPLICATE_CONTENT_ID = "duplicate_content_id"
"""Two attachments, or two manifest references, with one ContentId."""
MISSING_ATTACHMENT = "missing_attachment"
"""A manifest Reference whose attachment is not in the message."""
UNREFERENCED_ATTACHMENT = "unreferenced_attachment"
"""An attachment that the manifest does not list."""
JSON_SHAPE = "json_shape"
"""The JSON form does not have the expected shape (see ``jsonform``)."""


class EdxmlIssue(msgspec.Struct, frozen=True):
    """One broken rule: where (an XPath-like path), which rule (a code), and why."""

    path: str
    """``/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId``; ``$.x`` for JSON."""
    rule: str
    message: str


class EdxmlError(Exception):
    """Any failure to read or write an edXML message."""


class EdxmlMalformed(EdxmlError):
    """Not well-formed XML: the message cannot be read at all."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class EdxmlUnsafe(EdxmlError, UnsafeXml):
    """Refused for safety or size before it was read; ``reason`` says which limit.

    Besides ``schemas.xmlsafe``'s codes: ``attachment_too_large``,
    ``too_many_attachments``.
    """


class EdxmlInvalid(EdxmlError):
    """A readable message that breaks edXML rules; ``errors`` lists every one."""

    def __init__(self, errors: list[EdxmlIssue]) -> None:
        shown = "; ".join(f"{e.path}: {e.message}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} edXML error(s): {shown}{more}")
        self.errors = errors
