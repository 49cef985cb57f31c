"""One hardened way to parse XML that came from outside.

No DTD at all (so no external entities and no entity expansion bombs), no
network access, and limits of our own on nesting depth, size, text runs and
attributes. A document that declares a DOCTYPE is refused: by a byte scan
when the encoding is ASCII-compatible, and by the parser itself otherwise (a
DOCTYPE in UTF-16 hides from the byte scan, not from libxml2).

Entry points:

- ``parse(body)``: the whole document as an lxml tree (request bodies validated
  against an XSD). libxml2's own text limits stay on (``huge_tree`` off).
- ``refuse_hostile(body)``: the checks alone, for a parser with other settings.
- ``stream(source, handler)``: SAX-like events to a handler, fed in chunks, for
  documents too large to hold as a tree (edXML with tens of MB of base64).
  ``huge_tree`` is on there, because one base64 text node easily passes
  libxml2's 10 MB cap; our own limits replace it, and the handler can claim an
  element's text as bulk data that it consumes as it arrives.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO, Protocol, cast

import msgspec
from lxml import etree

_DOCTYPE_MESSAGE = "DOCTYPE and entity declarations are not accepted"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"

# Regex escapes, not the characters: a lone surrogate in the text breaks JSON (OpenAPI).
_NOT_XML_CHARS = r"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
XML_TEXT_PATTERN = f"^[^{_NOT_XML_CHARS}]*$"
"""A string XML 1.0 can carry (its ``Char`` production): for schemas of values sent as XML."""
_NOT_XML_CHAR = re.compile(f"[{_NOT_XML_CHARS}]")


def unencodable(value: object, path: str = "$") -> Iterator[tuple[str, str]]:
    """(path, message) for each string in ``value`` holding a character XML cannot carry.

    lxml refuses such a string only while building a document, as a
    ``ValueError`` far from the field: whoever turns caller data into XML
    asks here first, and refuses with the path.
    """
    if isinstance(value, str):
        found = _NOT_XML_CHAR.search(value)
        if found is not None:
            yield path, f"character U+{ord(found[0]):04X} cannot be carried in XML"
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from unencodable(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from unencodable(item, f"{path}[{index}]")


class UnsafeXml(ValueError):
    """XML refused for safety, not for syntax. ``reason`` is a stable code.

    Codes: ``doctype``, ``too_deep``, ``too_large``, ``text_too_long``,
    ``too_many_attributes``, ``too_many_elements`` (subclasses add their own).
    """

    def __init__(self, message: str, reason: str = "doctype") -> None:
        super().__init__(message)
        self.reason = reason


class XmlLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on what a parse may cost; every one is checked as the parse goes."""

    max_depth: int = 64
    """Element nesting; edXML needs about 10, XML-DSig adds a few."""
    max_bytes: int | None = None
    """The whole document, as bytes on the wire; None: the caller bounds it."""
    max_text_chars: int = 10_000_000
    """One run of text (libxml2's own cap without huge_tree), bulk text excepted."""
    max_attributes: int = 64
    """Attributes and namespace declarations on one element."""
    max_elements: int | None = 200_000
    """Elements in the document: a tree costs some 100 bytes per element, whatever its size."""
    max_total_text_chars: int | None = None
    """All text and attribute values together, bulk text excepted; None: ``max_bytes`` bounds it."""


DEFAULT_LIMITS = XmlLimits()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def _scan(head: bytes) -> None:
    """The fast refusal: a DOCTYPE written in an ASCII-compatible encoding."""
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise UnsafeXml(_DOCTYPE_MESSAGE)


def _refuse_doctype(tree: etree._ElementTree) -> None:
    docinfo = tree.docinfo
    doctype = docinfo.doctype  # type: ignore[attr-defined]
    dtds = (docinfo.internalDTD, docinfo.externalDTD)
    if doctype or any(dtd is not None for dtd in dtds):
        raise UnsafeXml(_DOCTYPE_MESSAGE)


def _too_deep(limit: int) -> UnsafeXml:
    return UnsafeXml(f"elements are nested deeper than {limit} levels", "too_deep")


def _too_large(limit: int) -> UnsafeXml:
    return UnsafeXml(f"the document is larger than {limit} bytes", "too_large")


def _text_too_long(limit: int) -> UnsafeXml:
    return UnsafeXml(
        f"a text or attribute value is longer than {limit} characters", "text_too_long"
    )


def _check_attributes(count: int, values: Iterable[str], limits: XmlLimits) -> None:
    if count > limits.max_attributes:
        raise UnsafeXml(
            f"an element has more than {limits.max_attributes} attributes", "too_many_attributes"
        )
    for value in values:
        if len(value) > limits.max_text_chars:
            raise _text_too_long(limits.max_text_chars)


def refuse_hostile(body: bytes, *, limits: XmlLimits | None = None) -> None:
    """Raise ``UnsafeXml`` for a hostile document, building nothing; a syntax error raises too.

    One streaming pass checks DOCTYPE (any encoding), depth, attributes,
    element count and text. For parsers with other settings (keeping
    processing instructions, say) to call before building their own tree:
    a tree with an element of 100,000 attributes is a trap for whoever reads
    it, because lxml's ``attrib.items()`` is quadratic (20,000 take 1.3 s).
    """
    limits = limits or DEFAULT_LIMITS
    if limits.max_bytes is not None and len(body) > limits.max_bytes:
        raise _too_large(limits.max_bytes)
    _scan(body)
    stream(body, _Inspector(), limits=limits)


def parse(body: bytes, *, limits: XmlLimits | None = None) -> etree._ElementTree:
    """Parse untrusted XML; ``UnsafeXml`` for DTDs and limits, ``etree.XMLSyntaxError`` for syntax.

    Two passes: ``refuse_hostile`` first, so that no tree is built for a
    hostile document; then the tree, which keeps source lines for XSD messages.
    """
    refuse_hostile(body, limits=limits)
    tree = etree.ElementTree(etree.fromstring(body, _parser()))
    _refuse_doctype(tree)
    return tree


class _Inspector:
    """A handler that keeps nothing: ``stream`` alone enforces the limits."""

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str]) -> bool:
        return False

    def data(self, text: str) -> None:
        return None

    def end(self, tag: str) -> None:
        return None


def parse_file(path: str) -> etree._ElementTree:
    """Parse a trusted local file (an XSD we ship) with the same restrictions."""
    return etree.parse(path, _parser())


class StreamHandler(Protocol):
    """What ``stream`` calls; the shape of an lxml parser target."""

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str]) -> bool:
        """An element opens (``{namespace}local`` tag).

        Return True to claim its text as bulk data: it then goes to ``data``
        in pieces, uncounted by ``max_text_chars`` (the handler bounds it).
        """
        ...

    def data(self, text: str) -> None:
        """A piece of text; one text node may come in many pieces."""
        ...

    def end(self, tag: str) -> None:
        """The element opened last closes."""
        ...


class _Guard:
    """The parser target: enforces the limits, then passes events on."""

    def __init__(self, handler: StreamHandler, limits: XmlLimits) -> None:
        self._handler = handler
        self._limits = limits
        self._bulk: list[bool] = []
        self._text = 0
        self._elements = 0
        self._total = 0

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str]) -> None:
        if len(self._bulk) >= self._limits.max_depth:
            raise _too_deep(self._limits.max_depth)
        self._elements += 1
        if self._limits.max_elements is not None and self._elements > self._limits.max_elements:
            raise UnsafeXml(
                f"the document has more than {self._limits.max_elements} elements",
                "too_many_elements",
            )
        self._text = 0
        attributes: dict[str, str] = {}
        namespaces: dict[str | None, str] = {}
        if attrib or nsmap:  # most elements have neither: skip the work
            # Namespace declarations count: lxml's TreeBuilder is quadratic in them (30,000: 4 s).
            _check_attributes(len(attrib) + len(nsmap), attrib.values(), self._limits)
            self._count_total(sum(len(value) for value in attrib.values()))
            attributes = dict(attrib)
            # lxml names the default namespace '' here; elsewhere (TreeBuilder too) it is None.
            namespaces = {prefix or None: uri for prefix, uri in nsmap.items()}
        self._bulk.append(bool(self._handler.start(tag, attributes, namespaces)))

    def end(self, tag: str) -> None:
        self._bulk.pop()
        self._text = 0
        self._handler.end(tag)

    def data(self, text: str) -> None:
        if not (self._bulk and self._bulk[-1]):
            self._text += len(text)
            if self._text > self._limits.max_text_chars:
                raise _text_too_long(self._limits.max_text_chars)
            self._count_total(len(text))
        self._handler.data(text)

    def _count_total(self, chars: int) -> None:
        self._total += chars
        limit = self._limits.max_total_text_chars
        if limit is not None and self._total > limit:
            raise UnsafeXml(f"the document has more than {limit} characters of text", "too_large")

    def doctype(self, name: str | None, public_id: str | None, system_url: str | None) -> None:
        raise UnsafeXml(_DOCTYPE_MESSAGE)

    def close(self) -> None:
        return None


def stream(
    source: bytes | BinaryIO,
    handler: StreamHandler,
    *,
    limits: XmlLimits | None = None,
    chunk_size: int = 64 * 1024,
) -> None:
    """Parse untrusted XML as events, reading ``source`` in chunks.

    Memory stays bounded by the chunk size and what the handler keeps. Raises
    ``UnsafeXml`` (DTDs, limits), ``etree.XMLSyntaxError`` (syntax), or what
    the handler raised.
    """
    limits = limits or DEFAULT_LIMITS
    read = io.BytesIO(source).read if isinstance(source, bytes | bytearray) else source.read
    parser = etree.XMLParser(
        target=cast("etree.ParserTarget", _Guard(handler, limits)),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_pis=True,
        remove_comments=True,
    )
    total = 0
    while chunk := read(chunk_size):
        if total == 0:
            _scan(chunk)
        total += len(chunk)
        if limits.max_bytes is not None and total > limits.max_bytes:
            raise _too_large(limits.max_bytes)
        parser.feed(chunk)
    parser.close()  # an empty document is a syntax error here


def is_xsi(name: str) -> bool:
    """Attributes in the XML Schema instance namespace (``xsi:schemaLocation``)."""
    return name.startswith("{" + _XSI + "}")
