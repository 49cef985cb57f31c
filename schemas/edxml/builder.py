"""Typed messages -> edXML, written as a stream.

lxml's incremental writer (``etree.xmlfile``) writes the envelope as it goes
and each attachment as base64 in chunks of 48 KiB read from
``Attachment.open()``: building a 50 MB document holds about one chunk, never
the file. Elements come out in the standard's order, in the edXML default
namespace, UTF-8.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import BinaryIO

import msgspec
from lxml import etree

from schemas import xmlsafe
from schemas.edxml import rules
from schemas.edxml.attachments import Attachment
from schemas.edxml.document import EdxmlDocument
from schemas.edxml.errors import EdxmlInvalid
from schemas.edxml.limits import EdxmlLimits
from schemas.edxml.mapping import XmlWriter, qname, split, write_fields, write_struct
from schemas.edxml.models import (
    DSIG_NS,
    EDXML_NS,
    StatusHeader,
    TraceHeader,
    TraceHeaderList,
)

CHUNK = 48 * 1024
"""Bytes of attachment read at a time; a multiple of 3, so the base64 pieces join."""


def build(
    document: EdxmlDocument,
    out: BinaryIO,
    *,
    limits: EdxmlLimits | None = None,
    check: bool = True,
    signature: bytes | None = None,
) -> None:
    """Write ``document`` as edXML to ``out``.

    With ``check`` (the default), a document that breaks a rule raises
    ``EdxmlInvalid`` before anything is written. ``signature``: a serialized
    XML-DSig ``Signature`` element to put at the end of edXMLHeader (sign the
    document built without it, then build again with it). A parsed
    document's own ``signature_xml`` is not written: rebuilt bytes are not
    the bytes that were signed.
    """
    if check:
        issues = rules.check(document, limits=limits)
        if issues:
            raise EdxmlInvalid(issues)
    signature_element = _signature(signature) if signature is not None else None
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(qname("edXML"), nsmap={None: EDXML_NS}):
            with xf.element(qname("edXMLEnvelope")):
                _write_header(xf, document.header, document.trace_header_list, signature_element)
                with xf.element(qname("edXMLBody")):
                    version = document.manifest_version
                    attrib = {"version": version} if version is not None else {}
                    with xf.element(qname("edXMLManifest"), attrib):
                        for reference in document.manifest:
                            write_struct(xf, reference, "Reference")
            if document.attachments:
                with xf.element(qname("AttachmentEncoded")):
                    for attachment in document.attachments:
                        _write_attachment(xf, attachment)
                        xf.flush()


def build_bytes(
    document: EdxmlDocument,
    *,
    limits: EdxmlLimits | None = None,
    check: bool = True,
    signature: bytes | None = None,
) -> bytes:
    """``build`` into memory: for small documents and tests."""
    out = io.BytesIO()
    build(document, out, limits=limits, check=check, signature=signature)
    return out.getvalue()


def build_status(
    status: StatusHeader,
    *,
    trace: Sequence[TraceHeader] = (),
    limits: EdxmlLimits | None = None,
    check: bool = True,
    signature: bytes | None = None,
) -> bytes:
    """A status message (same envelope, the status header, no body) as edXML bytes."""
    trace_list = TraceHeaderList(TraceHeader=list(trace)) if trace else None
    if check:
        issues = rules.check_status(status, trace_list, limits)
        if issues:
            raise EdxmlInvalid(issues)
    signature_element = _signature(signature) if signature is not None else None
    out = io.BytesIO()
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        root = xf.element(qname("edXML"), nsmap={None: EDXML_NS})
        with root, xf.element(qname("edXMLEnvelope")):
            _write_header(xf, status, trace_list, signature_element)
    return out.getvalue()


def _write_header(
    xf: XmlWriter,
    header: msgspec.Struct,
    trace: TraceHeaderList | None,
    signature: etree._Element | None,
) -> None:
    with xf.element(qname("edXMLHeader")):
        write_struct(xf, header, "MessageHeader")
        if trace is not None:
            write_struct(xf, trace, "TraceHeaderList")
        if signature is not None:
            xf.write(signature)


def _write_attachment(xf: XmlWriter, attachment: Attachment) -> None:
    with xf.element(qname("Attachment")):
        write_fields(xf, attachment.info)
        with xf.element(qname("ContentTransferEncoded")), attachment.open() as stream:
            while chunk := _read_full(stream, CHUNK):
                xf.write(base64.b64encode(chunk).decode("ascii"))
                xf.flush()


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes unless the stream ends first (raw streams may return less)."""
    data = stream.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing and (more := stream.read(missing)):
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def _signature(signature: bytes) -> etree._Element:
    """The caller's Signature element, parsed as hardened as any input."""
    element = xmlsafe.parse(signature).getroot()
    namespace, name = split(element.tag)
    if name != "Signature" or namespace not in (DSIG_NS, EDXML_NS):
        raise ValueError(f"expected an XML-DSig Signature element, not {name} in {namespace}")
    return element
