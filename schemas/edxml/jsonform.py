"""The JSON form of a document: what an agency system may POST instead of edXML.

The shape is the XML's, with the standard's names, minus the envelope: the
MessageHeader, the TraceHeaderList, and the attachments with their base64
content. The manifest is not sent; it is made from the attachments. Example::

    {"MessageHeader": {
       "From": {"OrganId": "000.00.11.H53", "OrganName": "UBND tỉnh Tuyên Quang"},
       "To": [{"OrganId": "000.00.00.G22", "OrganName": "Văn phòng Chính phủ"}],
       "DocumentId": "000.00.11.H53,2026/11/22,1234/UBND-VP",
       "Subject": "V/v triển khai nền tảng tích hợp, chia sẻ dữ liệu"},
     "Attachments": [{"AttachmentName": "1234-UBND-VP.pdf",
                      "ContentType": "application/pdf",
                      "ContentTransferEncoded": "JVBERi0xLjcK..."}]}

``JsonDocument`` can be a route's request schema
(``schemas.edxml.jsonform:JsonDocument``); ``from_json`` turns the JSON into
an ``EdxmlDocument`` that ``build`` writes as edXML (and checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from schemas.edxml import errors
from schemas.edxml.attachments import Attachment, Base64Decoder, Spool, guess_content_type
from schemas.edxml.document import EdxmlDocument
from schemas.edxml.errors import EdxmlInvalid, EdxmlIssue
from schemas.edxml.limits import DEFAULT_LIMITS, EdxmlLimits
from schemas.edxml.models import AttachmentInfo, Element, MessageHeader, TraceHeaderList
from schemas.typecheck import collect_errors, format_path


class JsonAttachment(Element):
    AttachmentName: str
    ContentTransferEncoded: str
    """The file, base64 (line breaks allowed)."""
    ContentType: str | None = None
    """Guessed from AttachmentName when absent."""
    Description: str | None = None
    ContentId: str | None = None
    """``cid:1``, ``cid:2``... in order when absent."""


class JsonDocument(Element):
    MessageHeader: MessageHeader
    TraceHeaderList: TraceHeaderList | None = None
    Attachments: list[JsonAttachment] = []


def from_json(
    data: Mapping[str, Any] | bytes | str, *, limits: EdxmlLimits | None = None
) -> EdxmlDocument:
    """An ``EdxmlDocument`` from the JSON form (decoded, or as JSON text).

    Raises ``EdxmlInvalid`` with JSON paths (``$.MessageHeader.To[0]``) when
    the shape is wrong or an attachment is not base64. The edXML rules
    (receivers, lengths, ids) are checked by ``build``, or ``check``, with
    edXML paths.
    """
    limits = limits or DEFAULT_LIMITS
    try:
        raw = msgspec.json.decode(data) if isinstance(data, bytes | str) else data
    except msgspec.DecodeError as exc:
        raise EdxmlInvalid([EdxmlIssue("$", errors.JSON_SHAPE, f"not valid JSON: {exc}")]) from None
    try:
        document = msgspec.convert(raw, JsonDocument)
    except msgspec.ValidationError:
        issues = [
            EdxmlIssue(format_path(e.path), errors.JSON_SHAPE, e.message)
            for e in collect_errors(raw, JsonDocument)
        ]
        raise EdxmlInvalid(issues) from None
    attachments: list[Attachment] = []
    issues = []
    try:
        for index, item in enumerate(document.Attachments):
            spool = Spool(limits.spool_memory_bytes)
            info = AttachmentInfo(
                ContentId=item.ContentId or "",
                AttachmentName=item.AttachmentName,
                Description=item.Description,
                ContentType=item.ContentType or guess_content_type(item.AttachmentName),
            )
            attachments.append(Attachment.from_spool(info, spool))
            decoder = Base64Decoder(spool.write, limits.max_attachment_bytes)
            decoder.feed(item.ContentTransferEncoded)
            decoder.finish()
            if decoder.error is not None:
                path = f"$.Attachments[{index}].ContentTransferEncoded"
                issues.append(EdxmlIssue(path, errors.BAD_BASE64, decoder.error))
        if issues:
            raise EdxmlInvalid(issues)
    except BaseException:
        for attachment in attachments:
            attachment.close()
        raise
    trace = document.TraceHeaderList
    return EdxmlDocument(
        document.MessageHeader,
        trace=trace.TraceHeader if trace else (),
        bussiness=trace.Bussiness if trace else None,
        attachments=attachments,
    )
