"""edXML as the adapter needs it: who sends to whom, and the bytes to send.

Documents are read streamed and hardened (``schemas.edxml``); attachments are
decoded to check them, then dropped, so a 20 MB document costs no more than
its bytes. The JSON forms are built into a spooled file, hashed as written.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from typing import Any, BinaryIO, cast

import msgspec

import schemas.edxml as edxml
from adapters.bodies import is_json, parse_json
from adapters.document_axis.client import HashingWriter, Payload
from adapters.document_axis.schema import edxml_invalid
from adapters.errors import RequestRejected
from schemas.edxml import rules
from schemas.edxml.formats import VIETNAM
from schemas.edxml.limits import DEFAULT_LIMITS
from schemas.edxml.parser import Source, read_parts
from schemas.typecheck import collect_errors, format_path

SPOOL_MEMORY = 1 << 20
"""Bodies up to this size stay in memory; larger ones go to a temp file."""


class Addressing(msgspec.Struct, frozen=True):
    """Who a message is from and for, as its header says."""

    sender: str
    receivers: list[str]
    document_id: str = ""
    """The edXML DocumentId of a document, or of the document a status answers."""
    status_code: str = ""
    """A status message's StatusCode."""
    business: int = 0
    """A document's BussinessDocType: 0 new, 1 recall, 2 update, 3 replace."""
    original: str = ""
    """A recall, update or replace: the DocumentId of the document it changes (its
    Bussiness/DocumentId, else its own DocumentId: the same document, sent again)."""


def read_document_header(source: Source) -> tuple[edxml.MessageHeader, list[edxml.EdxmlIssue]]:
    """A document's header as far as it can be read, and every rule it breaks.

    Raises only for what cannot be read at all (not well-formed, unsafe).
    """
    header, _, issues = _read_document(source)
    return header, issues


def _read_document(
    source: Source,
) -> tuple[edxml.MessageHeader, edxml.Bussiness | None, list[edxml.EdxmlIssue]]:
    parts = read_parts(
        source, edxml.MessageHeader, limits=DEFAULT_LIMITS, with_attachments=True, keep=False
    )
    header = cast(edxml.MessageHeader, parts.header)
    issues = rules.merge(
        parts.issues,
        rules.check_parts(header, parts.trace, parts.manifest, parts.infos, DEFAULT_LIMITS),
    )
    return header, parts.trace.Bussiness if parts.trace else None, issues


def rejected(exc: edxml.EdxmlError) -> RequestRejected:
    """The caller's message is not what the axis takes: the same answer a route schema gives."""
    return edxml_invalid(exc).rejection("the message")


def outbound_document(body: bytes, content_type: str) -> tuple[Addressing, Payload]:
    """A document from an agency: edXML sent as is, or its JSON form built into edXML."""
    try:
        if not is_json(content_type):
            header, business, issues = _read_document(body)
            if issues:
                raise edxml.EdxmlInvalid(issues)
            return _addressing(header, business), Payload.of_bytes(body)
        with edxml.from_json(_json(body)) as document:
            spool = temp_spool()
            sink = HashingWriter(spool)
            try:
                edxml.build(document, cast(BinaryIO, sink))
            except BaseException:
                spool.close()
                raise
            addressing = _addressing(document.header, document.bussiness)
            return addressing, Payload(spool, sink.size, sink.digest.digest())
    except edxml.EdxmlError as exc:
        raise rejected(exc) from None


def outbound_status(body: bytes, content_type: str) -> tuple[Addressing, Payload]:
    """A status from an agency: an edXML status message, or its JSON form (``StatusHeader``).

    The JSON form may leave out Timestamp (now, Vietnam time).
    """
    try:
        if not is_json(content_type):
            header = edxml.parse_status(body).header
        else:
            header = _status_header(_json(body))
            body = edxml.build_status(header)
    except edxml.EdxmlError as exc:
        raise rejected(exc) from None
    addressing = Addressing(
        header.From.OrganId,
        [header.ResponseFor.OrganId],
        document_id=header.ResponseFor.DocumentId or "",
        status_code=header.StatusCode,
    )
    return addressing, Payload.of_bytes(body)


def _status_header(data: Any) -> edxml.StatusHeader:
    if isinstance(data, dict) and "Timestamp" not in data:
        data = {**data, "Timestamp": edxml.format_timestamp(datetime.now(VIETNAM))}
    try:
        return msgspec.convert(data, edxml.StatusHeader)
    except msgspec.ValidationError:
        issues = [
            edxml.EdxmlIssue(format_path(e.path), "json_shape", e.message)
            for e in collect_errors(data, edxml.StatusHeader)
        ]
        raise edxml.EdxmlInvalid(issues) from None


def _json(body: bytes) -> Any:
    return parse_json(body)


def _addressing(header: edxml.MessageHeader, business: edxml.Bussiness | None) -> Addressing:
    document_id = header.DocumentId or ""
    kind = (business.BussinessDocType if business else None) or 0
    return Addressing(
        header.From.OrganId,
        [to.OrganId for to in header.To],
        document_id=document_id,
        business=kind,
        original=((business.DocumentId if business else None) or document_id) if kind else "",
    )


def temp_spool() -> BinaryIO:
    """A file for one message: in memory while small, on disk once large."""
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY))
