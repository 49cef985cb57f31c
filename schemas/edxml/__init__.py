"""edXML (QCVN 102:2016): the electronic document message, and its status message.

Read::

    with schemas.edxml.parse(path_or_bytes_or_stream) as document:
        document.header.Subject, document.header.To[0].OrganId
        for attachment in document.attachments:   # decoded, spooled, hashed
            attachment.sha256, attachment.size, attachment.open()

Check without keeping anything: ``validate(source) -> list[EdxmlIssue]``.
Write: ``build(document, out)`` / ``build_bytes(document)``; a document comes
from ``parse``, ``from_json`` (the JSON form agency systems may POST) or
``EdxmlDocument(MessageHeader(...), attachments=[Attachment.from_path(...)])``.
Status messages: ``build_status``, ``parse_status``, ``status_reply``.

Every parse is hardened (``schemas.xmlsafe``) and bounded (``EdxmlLimits``);
attachments are streamed both ways. The rules, and where we are strict or
tolerant, are in ``schemas/edxml/README.md``; the XSDs next to this file say
the same for routes that validate XML bodies.
"""

from __future__ import annotations

from schemas.edxml.attachments import Attachment
from schemas.edxml.builder import build, build_bytes, build_status
from schemas.edxml.codes import BussinessDocType, Priority, ReceiverType, StatusCode
from schemas.edxml.document import EdxmlDocument
from schemas.edxml.errors import (
    EdxmlError,
    EdxmlInvalid,
    EdxmlIssue,
    EdxmlMalformed,
    EdxmlUnsafe,
)
from schemas.edxml.formats import (
    format_date,
    format_document_id,
    format_timestamp,
    is_organ_id,
    parse_date,
    parse_document_id,
    parse_timestamp,
)
from schemas.edxml.jsonform import JsonAttachment, JsonDocument, from_json
from schemas.edxml.limits import EdxmlLimits
from schemas.edxml.models import (
    DSIG_NS,
    EDXML_NS,
    AttachmentInfo,
    Bussiness,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusHeader,
    TraceHeader,
    TraceHeaderList,
)
from schemas.edxml.parser import Source, parse, validate
from schemas.edxml.rules import check, check_status
from schemas.edxml.status import StatusMessage, parse_status, status_reply, validate_status
from schemas.xmlsafe import UnsafeXml

__all__ = [
    "DSIG_NS",
    "EDXML_NS",
    "Attachment",
    "AttachmentInfo",
    "Bussiness",
    "BussinessDocType",
    "BussinessDocumentInfo",
    "Code",
    "DocumentType",
    "EdxmlDocument",
    "EdxmlError",
    "EdxmlInvalid",
    "EdxmlIssue",
    "EdxmlLimits",
    "EdxmlMalformed",
    "EdxmlUnsafe",
    "JsonAttachment",
    "JsonDocument",
    "MessageHeader",
    "Organization",
    "OtherInfo",
    "Priority",
    "PromulgationInfo",
    "Receiver",
    "ReceiverType",
    "Reference",
    "ReplacementInfo",
    "ResponseFor",
    "SignerInfo",
    "Source",
    "StaffInfo",
    "StatusCode",
    "StatusHeader",
    "StatusMessage",
    "TraceHeader",
    "TraceHeaderList",
    "UnsafeXml",
    "build",
    "build_bytes",
    "build_status",
    "check",
    "check_status",
    "format_date",
    "format_document_id",
    "format_timestamp",
    "from_json",
    "is_organ_id",
    "parse",
    "parse_date",
    "parse_document_id",
    "parse_status",
    "parse_timestamp",
    "status_reply",
    "validate",
    "validate_status",
]
