"""edXML bytes, files or streams -> typed messages, attachments streamed.

One pass over the input through ``schemas.xmlsafe.stream`` (no DTD, no
entities, no network, depth and size limits). The envelope and header, a few
KB, are built as a small lxml tree; the base64 text of each
``AttachmentEncoded/Attachment/ContentTransferEncoded`` never is: it goes
piece by piece into a ``Base64Decoder`` and a spool, and each ``Attachment``
element is dropped from the tree as soon as it ends. Peak memory is therefore
a few MB whatever the attachments weigh.

Why a parser target and not ``iterparse``: iterparse hands an element over
only once it ends, with its whole text in libxml2's memory and again as a
Python string, which for a 50 MB attachment is the very copy we must avoid.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pyexpat import ExpatError, ParserCreate
from pyexpat import errors as expat_errors
from typing import BinaryIO, Protocol, TypeVar, cast

import msgspec
from lxml import etree

from schemas import xmlsafe
from schemas.edxml import errors, rules
from schemas.edxml.attachments import Attachment, Base64Decoder, Spool
from schemas.edxml.document import EdxmlDocument
from schemas.edxml.errors import EdxmlIssue, EdxmlMalformed, EdxmlUnsafe
from schemas.edxml.limits import DEFAULT_LIMITS, EdxmlLimits
from schemas.edxml.mapping import (
    ATTACHMENTS_PATH,
    HEADER_PATH,
    MANIFEST_PATH,
    MESSAGE_HEADER_PATH,
    TRACE_PATH,
    Reader,
    empty,
    is_empty,
    qname,
    split,
)
from schemas.edxml.models import (
    DSIG_NS,
    EDXML_NS,
    AttachmentInfo,
    MessageHeader,
    Reference,
    TraceHeaderList,
)
from schemas.xmlsafe import UnsafeXml

Source = bytes | bytearray | str | os.PathLike[str] | BinaryIO
"""What the parse functions read: the XML as bytes, a file path, or a binary stream."""

H = TypeVar("H", bound=msgspec.Struct)

_ROOT = qname("edXML")
_ATTACHMENT_ENCODED = qname("AttachmentEncoded")
_ATTACHMENT = qname("Attachment")
_CONTENT = qname("ContentTransferEncoded")
_STREAMED = (_ROOT, _ATTACHMENT_ENCODED, _ATTACHMENT, _CONTENT)


@dataclass
class Parts:
    """A message as read, before it becomes a document or a status message."""

    header: msgspec.Struct
    trace: TraceHeaderList | None
    manifest: list[Reference]
    manifest_version: str | None
    infos: list[AttachmentInfo]
    attachments: list[Attachment]
    signature_xml: bytes | None
    issues: list[EdxmlIssue] = field(default_factory=list)


class _TreeBuilder(Protocol):
    """lxml's TreeBuilder as it behaves (its stubs lack ``nsmap`` and ``end``'s result)."""

    def start(
        self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str]
    ) -> etree._Element: ...

    def data(self, text: str) -> None: ...

    def end(self, tag: str) -> etree._Element: ...

    def close(self) -> etree._Element: ...


class _Handler:
    """Builds the small tree, streams attachment content (``xmlsafe.StreamHandler``)."""

    def __init__(self, limits: EdxmlLimits, *, with_attachments: bool, keep: bool) -> None:
        self._limits = limits
        self._with_attachments = with_attachments
        self._keep = keep
        self._builder = cast(_TreeBuilder, etree.TreeBuilder())
        self._tags: list[str] = []
        self.issues: list[EdxmlIssue] = []
        self.infos: list[AttachmentInfo] = []
        self.attachments: list[Attachment] = []
        self._count = 0
        self._contents = 0
        self._in_content = False
        self._decoder: Base64Decoder | None = None
        self._spool: Spool | None = None

    def _attachment_path(self) -> str:
        return f"{ATTACHMENTS_PATH}/Attachment[{self._count}]"

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str]) -> bool:
        self._tags.append(tag)
        self._builder.start(tag, attrib, nsmap)
        depth = len(self._tags)
        if not self._with_attachments or depth not in (3, 4):
            return False
        if tuple(self._tags) != _STREAMED[:depth]:
            return False
        if depth == 3:
            self._count += 1
            if self._count > self._limits.max_attachments:
                raise EdxmlUnsafe(
                    f"more than {self._limits.max_attachments} attachments", "too_many_attachments"
                )
            self._contents = 0
            self._decoder = None
            self._spool = None
            return False
        self._contents += 1
        self._in_content = True
        if self._contents == 1:  # a second ContentTransferEncoded is reported, not read
            self._spool = Spool(self._limits.spool_memory_bytes) if self._keep else None
            write = self._spool.write if self._spool is not None else None
            self._decoder = Base64Decoder(write, self._limits.max_attachment_bytes)
        return True

    def data(self, text: str) -> None:
        if self._in_content and len(self._tags) == 4:
            if self._decoder is not None and self._contents == 1:
                self._decoder.feed(text)
            return
        self._builder.data(text)

    def end(self, tag: str) -> None:
        element = self._builder.end(tag)
        depth = len(self._tags)
        if self._in_content and depth == 4:
            self._in_content = False
            if self._contents == 1 and self._decoder is not None:
                self._decoder.finish()
                if self._decoder.error is not None:
                    self.issues.append(
                        EdxmlIssue(
                            f"{self._attachment_path()}/ContentTransferEncoded",
                            errors.BAD_BASE64,
                            self._decoder.error,
                        )
                    )
        elif depth == 3 and self._with_attachments and tuple(self._tags) == _STREAMED[:3]:
            self._attachment_done(element)
        self._tags.pop()

    def _attachment_done(self, element: etree._Element) -> None:
        """Read the metadata, keep the spooled content, drop the element from the tree."""
        path = self._attachment_path()
        reader = Reader(self.issues)
        contents = [child for child in element if child.tag == _CONTENT]
        for index, content in enumerate(contents, 1):
            content_path = f"{path}/ContentTransferEncoded" + (f"[{index}]" if index > 1 else "")
            if index > 1:
                reader.issues.append(
                    EdxmlIssue(
                        content_path,
                        errors.DUPLICATE_ELEMENT,
                        "ContentTransferEncoded may appear only once here",
                    )
                )
            reader.leaf(content, content_path)  # child elements or attributes inside
            element.remove(content)
        if not contents:
            self.issues.append(
                EdxmlIssue(
                    f"{path}/ContentTransferEncoded",
                    errors.MISSING_ELEMENT,
                    "ContentTransferEncoded is required",
                )
            )
        info = reader.struct(element, AttachmentInfo, path)
        self.infos.append(info)
        if self._keep:
            self.attachments.append(
                Attachment.from_spool(info, self._spool or Spool(self._limits.spool_memory_bytes))
            )
        self._spool = None
        self._decoder = None
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)

    def finish(self) -> etree._Element:
        return self._builder.close()

    def discard(self) -> None:
        for attachment in self.attachments:
            attachment.close()
        if self._spool is not None:
            self._spool.close()


@contextmanager
def _opened(source: Source) -> Iterator[bytes | BinaryIO]:
    if isinstance(source, bytes | bytearray):
        yield bytes(source) if isinstance(source, bytearray) else source
    elif isinstance(source, str) and "<" in source:
        raise TypeError("a str is a file path; pass XML text as bytes (text.encode())")
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


class _NamespaceCheck:
    """The input as read by lxml, also fed to expat one chunk behind.

    lxml's streaming target parser lets an undeclared prefix through (``<edXML:To>`` with
    no ``xmlns:edXML`` arrives as ``To`` in no namespace, which would be reported as an
    unexpected element); XML with namespaces calls that not well-formed, and expat, with
    namespace processing, says so. Expat sees each chunk only after lxml has (so lxml's
    DOCTYPE and size guards come first); it has no handlers, so it keeps no text. Any
    other expat error is lxml's to report (expat knows fewer encodings): the check stops.
    """

    def __init__(self, source: bytes | BinaryIO) -> None:
        self._read = io.BytesIO(source).read if isinstance(source, bytes) else source.read
        self._expat = ParserCreate(namespace_separator=" ")
        self._pending = b""
        self._active = True

    def read(self, size: int = -1) -> bytes:
        chunk = self._read(size)
        self._check(self._pending, final=not chunk)
        self._pending = chunk
        return chunk

    def _check(self, data: bytes, *, final: bool) -> None:
        if not self._active:
            return
        try:
            self._expat.Parse(data, final)
        except ExpatError as exc:
            self._active = False
            if exc.code == expat_errors.codes[expat_errors.XML_ERROR_UNBOUND_PREFIX]:
                raise EdxmlMalformed(
                    "not well-formed XML: a namespace prefix is used but not declared "
                    f"(line {exc.lineno}, column {exc.offset + 1})",
                    exc.lineno,
                    exc.offset + 1,
                ) from None


def read_parts(
    source: Source,
    header_type: type[H],
    *,
    limits: EdxmlLimits,
    with_attachments: bool,
    keep: bool,
) -> Parts:
    """Read a message whose MessageHeader is ``header_type``; structural issues in ``issues``."""
    handler = _Handler(limits, with_attachments=with_attachments, keep=keep)
    try:
        try:
            with _opened(source) as stream:
                checked = cast(BinaryIO, _NamespaceCheck(stream))  # only read() is used
                xmlsafe.stream(checked, handler, limits=limits.xml())
        except EdxmlUnsafe:
            raise
        except UnsafeXml as exc:
            raise EdxmlUnsafe(str(exc), exc.reason) from None
        except etree.XMLSyntaxError as exc:
            line, column = exc.position
            raise EdxmlMalformed(f"not well-formed XML: {exc.msg}", line, column) from None
        parts = _Envelope(handler.issues).read(handler.finish(), header_type, with_attachments)
    except BaseException:
        handler.discard()  # no spooled file outlives a failed read
        raise
    parts.infos = handler.infos
    parts.attachments = handler.attachments
    return parts


class _Envelope:
    """The fixed frame around the header: edXML, edXMLEnvelope, edXMLHeader, edXMLBody."""

    def __init__(self, issues: list[EdxmlIssue]) -> None:
        self.issues = issues
        self.reader = Reader(issues)

    def read(self, root: etree._Element, header_type: type[H], with_attachments: bool) -> Parts:
        parts = Parts(empty(header_type), None, [], None, [], [], None, self.issues)
        if root.tag != _ROOT:
            namespace, name = split(root.tag)
            self.issues.append(
                EdxmlIssue(
                    f"/{name}",
                    errors.UNEXPECTED_ELEMENT,
                    f"the root element must be edXML in namespace {EDXML_NS}, "
                    f"not {name} in {namespace or 'no namespace'}",
                )
            )
            return parts
        slots = [("edXMLEnvelope", 1)] + ([("AttachmentEncoded", 0)] if with_attachments else [])
        top = self.sequence(root, "/edXML", slots)
        for encoded in top.get("AttachmentEncoded", []):
            # Attachments were read and removed while streaming; anything left is foreign.
            self.sequence(encoded, ATTACHMENTS_PATH, [])
        for envelope in top.get("edXMLEnvelope", []):
            inner = self.sequence(
                envelope, "/edXML/edXMLEnvelope", [("edXMLHeader", 1), ("edXMLBody", 0)]
            )
            for header in inner.get("edXMLHeader", []):
                self.header(header, header_type, parts)
            for body in inner.get("edXMLBody", []):
                self.body(body, parts, references=with_attachments)
        return parts

    def header(self, element: etree._Element, header_type: type[H], parts: Parts) -> None:
        found = self.sequence(
            element,
            HEADER_PATH,
            [
                ("MessageHeader", 1),
                ("TraceHeaderList", 0),
                ("Signature", 0),
                ("DigitalSignature", 0),
            ],
            signature=True,
        )
        for placeholder in found.get("DigitalSignature", []):
            # The .NET SDK's builder writes an empty <DigitalSignature/>: nothing, like absent.
            if not is_empty(placeholder):
                self.issues.append(
                    EdxmlIssue(
                        f"{HEADER_PATH}/DigitalSignature",
                        errors.UNEXPECTED_ELEMENT,
                        "DigitalSignature is read only when empty; a signature is an "
                        "XML-DSig Signature element",
                    )
                )
        for message_header in found.get("MessageHeader", []):
            parts.header = self.reader.struct(message_header, header_type, MESSAGE_HEADER_PATH)
        for trace in found.get("TraceHeaderList", []):
            parts.trace = self.reader.struct(trace, TraceHeaderList, TRACE_PATH)
        for signature in found.get("Signature", []):
            parts.signature_xml = etree.tostring(signature)

    def body(self, element: etree._Element, parts: Parts, *, references: bool) -> None:
        """The manifest; a status message's (``references`` False) must be empty."""
        found = self.sequence(element, "/edXML/edXMLEnvelope/edXMLBody", [("edXMLManifest", 0)])
        for manifest in found.get("edXMLManifest", []):
            self.reader.attributes(manifest, MANIFEST_PATH, frozenset({"version"}))
            self.reader.no_text(manifest, MANIFEST_PATH)
            parts.manifest_version = manifest.get("version")
            count = 0
            for child in Reader.children(manifest):
                namespace, name = split(child.tag)
                if not references or namespace != EDXML_NS or name != "Reference":
                    self.reader.unexpected(child, MANIFEST_PATH, 1)
                    continue
                count += 1
                path = f"{MANIFEST_PATH}/Reference[{count}]"
                parts.manifest.append(self.reader.struct(child, Reference, path))

    def sequence(
        self,
        element: etree._Element,
        path: str,
        slots: list[tuple[str, int]],
        *,
        signature: bool = False,
    ) -> dict[str, list[etree._Element]]:
        """Children that fill ``slots`` (name, minimum; each at most once), in that order.

        With ``signature``, the Signature slot takes the xmldsig namespace or,
        a known quirk, the edXML one.
        """
        self.reader.attributes(element, path)
        self.reader.no_text(element, path)
        order = {name: index for index, (name, _) in enumerate(slots)}
        found: dict[str, list[etree._Element]] = {}
        seen: Counter[str] = Counter()
        highest = -1
        for child in Reader.children(element):
            namespace, name = split(child.tag)
            seen[name] += 1
            allowed = {EDXML_NS, DSIG_NS} if signature and name == "Signature" else {EDXML_NS}
            if name not in order or namespace not in allowed:
                self.reader.unexpected(child, path, seen[name])
                continue
            if name in found:
                self.issues.append(
                    EdxmlIssue(
                        f"{path}/{name}[{seen[name]}]",
                        errors.DUPLICATE_ELEMENT,
                        f"{name} may appear only once here",
                    )
                )
                continue
            found[name] = [child]
            if order[name] < highest:
                later = ", ".join(n for n, i in order.items() if i > order[name])
                self.issues.append(
                    EdxmlIssue(
                        f"{path}/{name}",
                        errors.MISPLACED_ELEMENT,
                        f"{name} must come before {later}",
                    )
                )
            highest = max(highest, order[name])
        for name, minimum in slots:
            if minimum and name not in found:
                self.issues.append(
                    EdxmlIssue(f"{path}/{name}", errors.MISSING_ELEMENT, f"{name} is required")
                )
        return found


def parse(
    source: Source, *, limits: EdxmlLimits | None = None, strict: bool = True
) -> EdxmlDocument:
    """Read a document message; its attachments are decoded into spooled files.

    Raises ``EdxmlMalformed`` (not XML), ``EdxmlUnsafe`` (DOCTYPE, limits;
    also an ``UnsafeXml``) and, when ``strict``, ``EdxmlInvalid`` listing
    every broken rule. With ``strict=False`` the document comes back anyway,
    its problems in ``document.issues``. Close the document (or use ``with``)
    to release the spooled files.
    """
    limits = limits or DEFAULT_LIMITS
    parts = read_parts(source, MessageHeader, limits=limits, with_attachments=True, keep=True)
    header = cast(MessageHeader, parts.header)
    issues = rules.merge(
        parts.issues,
        rules.check_parts(header, parts.trace, parts.manifest, parts.infos, limits),
    )
    document = EdxmlDocument(
        header,
        trace=parts.trace.TraceHeader if parts.trace else (),
        bussiness=parts.trace.Bussiness if parts.trace else None,
        manifest=parts.manifest,
        manifest_version=parts.manifest_version,
        attachments=parts.attachments,
        signature_xml=parts.signature_xml,
        issues=issues,
    )
    if strict and issues:
        document.close()
        raise errors.EdxmlInvalid(issues)
    return document


def validate(source: Source, *, limits: EdxmlLimits | None = None) -> list[EdxmlIssue]:
    """Every broken rule of a document message; [] when it is valid.

    Attachments are decoded to check them, then discarded (nothing spooled).
    Raises only when the input cannot be read: ``EdxmlMalformed``, ``EdxmlUnsafe``.
    """
    limits = limits or DEFAULT_LIMITS
    parts = read_parts(source, MessageHeader, limits=limits, with_attachments=True, keep=False)
    header = cast(MessageHeader, parts.header)
    return rules.merge(
        parts.issues,
        rules.check_parts(header, parts.trace, parts.manifest, parts.infos, limits),
    )
