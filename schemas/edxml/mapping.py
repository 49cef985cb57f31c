"""edXML elements <-> Structs, driven by the Structs' own fields.

One description (``models.py``) serves reading, writing and checking, so the
three cannot drift apart. Reading is lenient and thorough: every deviation
(unknown, repeated, misplaced element; stray text or attribute; a number that
is not one) becomes an ``EdxmlIssue`` and reading goes on, so a sender learns
every problem at once.

Paths: ``/edXML/.../MessageHeader/To[2]/OrganId``. An element that may repeat
always carries its 1-based position; one that may not carries it only when it
does repeat (``Subject[2]``, the duplicate).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Protocol, TypeVar, cast

import msgspec
from lxml import etree

from schemas.edxml import errors
from schemas.edxml.errors import EdxmlIssue
from schemas.edxml.formats import canonical_date, canonical_timestamp
from schemas.edxml.models import (
    EDXML_NS,
    WRAPPED_ITEMS,
    XLINK_NS,
    MessageHeader,
    Reference,
    TraceHeaderList,
)
from schemas.xmlsafe import is_xsi

S = TypeVar("S", bound=msgspec.Struct)

HEADER_PATH = "/edXML/edXMLEnvelope/edXMLHeader"
MESSAGE_HEADER_PATH = f"{HEADER_PATH}/MessageHeader"
TRACE_PATH = f"{HEADER_PATH}/TraceHeaderList"
MANIFEST_PATH = "/edXML/edXMLEnvelope/edXMLBody/edXMLManifest"
ATTACHMENTS_PATH = "/edXML/AttachmentEncoded"

_INTEGER = re.compile(r"[0-9]{1,9}")


def qname(local: str) -> str:
    """``{edXML namespace}local``, as lxml spells a tag."""
    return f"{{{EDXML_NS}}}{local}"


def split(tag: str) -> tuple[str | None, str]:
    """(namespace, local name) of an lxml tag."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


@dataclass(frozen=True)
class FieldPlan:
    """How one Struct field maps to XML."""

    name: str
    kind: Literal["text", "int", "struct"]
    struct: type[msgspec.Struct] | None
    many: bool
    """A list: repeated elements, or items inside a wrapper (``item``)."""
    item: str | None
    required: bool
    format: Literal["date", "timestamp"] | None = None
    """Dates and timestamps: read in any form in service, kept and written canonical."""


_CANONICAL = {"date": canonical_date, "timestamp": canonical_timestamp}


@cache
def plan(cls: type[msgspec.Struct]) -> tuple[FieldPlan, ...]:
    """The fields of an edXML Struct in element order (computed once per class)."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = []
    for field in info.fields:
        kind_type = field.type
        text_format = None
        many = False
        while True:  # unwrap Optional, list and documented aliases (Metadata), noting formats
            if isinstance(kind_type, msgspec.inspect.Metadata):
                text_format = (kind_type.extra or {}).get("edxml_format", text_format)
                kind_type = kind_type.type
            elif isinstance(kind_type, msgspec.inspect.UnionType):
                (kind_type,) = (
                    t for t in kind_type.types if not isinstance(t, msgspec.inspect.NoneType)
                )
            elif isinstance(kind_type, msgspec.inspect.ListType):
                many, kind_type = True, kind_type.item_type
            else:
                break
        kind: Literal["text", "int", "struct"]
        struct: type[msgspec.Struct] | None = None
        if isinstance(kind_type, msgspec.inspect.StrType):
            kind = "text"
        elif isinstance(kind_type, msgspec.inspect.IntType):
            kind = "int"
        elif isinstance(kind_type, msgspec.inspect.StructType):
            kind, struct = "struct", kind_type.cls
        else:  # pragma: no cover - a models.py mistake, caught by the tests
            raise TypeError(f"{cls.__name__}.{field.name}: unsupported type {kind_type}")
        item = WRAPPED_ITEMS.get(field.name) if many else None
        fields.append(FieldPlan(field.name, kind, struct, many, item, field.required, text_format))
    return tuple(fields)


ORDER: dict[type[msgspec.Struct], dict[str, int]] = {
    MessageHeader: {"From": 0, "To": 1},  # then the rest, in any order (samples differ)
}
"""Structs whose children have a fixed order; unlisted fields come after, in any order.

Not TraceHeaderList: the SDK builders write ``Bussiness`` before ``TraceHeader`` and
their parsers read either order.
"""

ALIASES: dict[type[msgspec.Struct], dict[str, str]] = {
    TraceHeaderList: {"Business": "Bussiness"},
}
"""Other spellings read as the standard's element (which is the one written)."""

_SOAP_NS = frozenset(
    {"http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"}
)
_TRACE_ATTRIBUTES = frozenset({"id", "version", "mustUnderstand", "actor"})


def tolerated_attribute(cls: type[msgspec.Struct], name: str) -> bool:
    """Attributes SDK builders write that carry nothing edXML reads: read past, never kept.

    ``xlink:href``/``type``/``role`` on Reference (the .NET SDK's builder) and SOAP-header
    style ``id``, ``version``, ``mustUnderstand``, ``actor`` on TraceHeaderList.
    """
    namespace, local = split(name)
    if cls is Reference:
        return namespace == XLINK_NS
    if cls is TraceHeaderList:
        return local in _TRACE_ATTRIBUTES and (namespace is None or namespace in _SOAP_NS)
    return False


def is_empty(element: etree._Element) -> bool:
    """``<DueDate></DueDate>``, ``<ResponseFor/>``: no text, no child, no attribute."""
    return (
        not (element.text or "").strip()
        and not any(isinstance(child.tag, str) for child in element)
        and not any(not is_xsi(cast(str, key)) for key in element.attrib)
    )


def empty(cls: type[S]) -> S:
    """A placeholder with every required text "" (a missing part of a broken message)."""
    values: dict[str, Any] = {}
    for field in plan(cls):
        if field.required:
            values[field.name] = empty(field.struct) if field.struct is not None else ""
    return cls(**values)


def issue(issues: list[EdxmlIssue], path: str, rule: str, message: str) -> None:
    issues.append(EdxmlIssue(path, rule, message))


class Reader:
    """Reads Structs out of lxml elements, appending every deviation to ``issues``."""

    def __init__(self, issues: list[EdxmlIssue]) -> None:
        self.issues = issues

    def struct(self, element: etree._Element, cls: type[S], path: str) -> S:
        """A Struct from ``element``; an empty optional child counts as absent."""
        self.attributes(element, path, cls=cls)
        self.no_text(element, path)
        fields = {field.name: field for field in plan(cls)}
        ranks = ORDER.get(cls)
        aliases = ALIASES.get(cls, {})
        values: dict[str, Any] = {}
        seen: Counter[str] = Counter()
        highest = -1
        for child in self.children(element):
            namespace, written = split(child.tag)
            name = aliases.get(written, written)
            seen[name] += 1
            field = fields.get(name) if namespace == EDXML_NS else None
            if field is None:
                self.unexpected(child, path, seen[name])
                continue
            if not field.required and is_empty(child):
                continue
            path_name = written
            if ranks is not None:
                rank = ranks.get(name, len(ranks))
                if rank < highest:
                    issue(
                        self.issues,
                        indexed(path, path_name, seen[name], field.many and field.item is None),
                        errors.MISPLACED_ELEMENT,
                        f"{name} must come before {_after(ranks, rank)}",
                    )
                highest = max(highest, rank)
            if field.many and field.item is None:
                child_path = f"{path}/{path_name}[{seen[name]}]"
                values.setdefault(name, []).append(self.value(child, field, child_path))
            elif name in values:
                issue(
                    self.issues,
                    f"{path}/{path_name}[{seen[name]}]",
                    errors.DUPLICATE_ELEMENT,
                    f"{name} may appear only once here",
                )
            elif field.many:
                values[name] = self.items(child, field, f"{path}/{path_name}")
            else:
                values[name] = self.value(child, field, f"{path}/{path_name}")
        for field in fields.values():
            if field.required and field.name not in values:
                if field.struct is not None:
                    issue(
                        self.issues,
                        f"{path}/{field.name}",
                        errors.MISSING_ELEMENT,
                        f"{field.name} is required",
                    )
                    values[field.name] = empty(field.struct)
                else:
                    values[field.name] = ""  # rules report it, for XML and JSON alike
        return cls(**values)

    def value(self, element: etree._Element, field: FieldPlan, path: str) -> Any:
        if field.struct is not None:
            return self.struct(element, field.struct, path)
        text = self.leaf(element, path)
        if field.format is not None:
            return _CANONICAL[field.format](text)
        if field.kind == "int":
            if _INTEGER.fullmatch(text):
                return int(text)
            issue(
                self.issues,
                path,
                errors.BAD_INTEGER,
                f"expected a non-negative integer, not {text[:40]!r}",
            )
            return None
        return text

    def items(self, element: etree._Element, field: FieldPlan, path: str) -> list[Any]:
        """The items of a wrapper element (``ToPlaces/Place``)."""
        assert field.item is not None
        self.attributes(element, path)
        self.no_text(element, path)
        values = []
        seen: Counter[str] = Counter()
        for child in self.children(element):
            namespace, name = split(child.tag)
            seen[name] += 1
            if namespace != EDXML_NS or name != field.item:
                self.unexpected(child, path, seen[name])
                continue
            if is_empty(child):  # <Appendixes><Appendix></Appendix></Appendixes>: no item
                continue
            values.append(self.value(child, field, f"{path}/{name}[{seen[name]}]"))
        return values

    def leaf(self, element: etree._Element, path: str) -> str:
        """The text of an element that holds only text (surrounding blanks dropped)."""
        self.attributes(element, path)
        seen: Counter[str] = Counter()
        for child in self.children(element):
            seen[split(child.tag)[1]] += 1
            self.unexpected(child, path, seen[split(child.tag)[1]])
        return (element.text or "").strip()

    def attributes(
        self,
        element: etree._Element,
        path: str,
        allowed: frozenset[str] = frozenset(),
        *,
        cls: type[msgspec.Struct] | None = None,
    ) -> None:
        for key in element.attrib:
            name = cast(str, key)  # bytes only in the stubs
            if is_xsi(name) or name in allowed:
                continue
            if cls is None or not tolerated_attribute(cls, name):
                issue(
                    self.issues,
                    f"{path}/@{split(name)[1]}",
                    errors.UNEXPECTED_ATTRIBUTE,
                    f"attribute {split(name)[1]} is not part of edXML here",
                )

    def no_text(self, element: etree._Element, path: str) -> None:
        stray = (element.text or "").strip() or any((child.tail or "").strip() for child in element)
        if stray:
            issue(self.issues, path, errors.UNEXPECTED_TEXT, "text between elements")

    def unexpected(self, element: etree._Element, path: str, count: int) -> None:
        namespace, name = split(element.tag)
        where = "" if namespace == EDXML_NS else f" (namespace {namespace or 'none'})"
        issue(
            self.issues,
            indexed(path, name, count, False),
            errors.UNEXPECTED_ELEMENT,
            f"{name}{where} is not part of edXML here",
        )

    @staticmethod
    def children(element: etree._Element) -> Iterator[etree._Element]:
        """Child elements (comments and processing instructions are not parsed at all)."""
        for child in element:
            if isinstance(child.tag, str):
                yield child


def indexed(path: str, name: str, count: int, repeatable: bool) -> str:
    return f"{path}/{name}[{count}]" if repeatable or count > 1 else f"{path}/{name}"


def _after(ranks: dict[str, int], rank: int) -> str:
    later = [name for name, r in ranks.items() if r > rank]
    return " and ".join(later) if later else "the other elements"


class XmlWriter(Protocol):
    """What we use of lxml's incremental writer (``etree.xmlfile``)."""

    def element(
        self,
        tag: str,
        attrib: dict[str, str] | None = None,
        nsmap: dict[str | None, str] | None = None,
    ) -> AbstractContextManager[None]: ...

    def write(self, *content: str | etree._Element) -> None: ...

    def flush(self) -> None: ...


def write_struct(out: XmlWriter, value: msgspec.Struct, tag: str) -> None:
    """``value`` as the element ``tag`` (in the edXML namespace), fields in model order."""
    with out.element(qname(tag)):
        write_fields(out, value)


def write_fields(out: XmlWriter, value: msgspec.Struct) -> None:
    """The fields of ``value`` as child elements; None and empty lists are left out."""
    for field in plan(type(value)):
        field_value = getattr(value, field.name)
        if field_value is None or (field.many and not field_value):
            continue
        if not field.many:
            _write_value(out, field, field.name, field_value)
        elif field.item is None:
            for item in field_value:
                _write_value(out, field, field.name, item)
        else:
            with out.element(qname(field.name)):
                for item in field_value:
                    _write_value(out, field, field.item, item)


def _write_value(out: XmlWriter, field: FieldPlan, tag: str, value: Any) -> None:
    if field.struct is not None:
        write_struct(out, value, tag)
    else:
        text = _CANONICAL[field.format](value) if field.format is not None else str(value)
        with out.element(qname(tag)):
            out.write(text)


def leaves(value: msgspec.Struct, path: str) -> Iterator[tuple[str, FieldPlan, Any]]:
    """(path, field, value) of every text and number in ``value``, at any depth.

    Required fields come even when empty; optional ones only when present.
    """
    for field in plan(type(value)):
        field_value = getattr(value, field.name)
        if field_value is None:
            continue
        if not field.many:
            yield from _leaf(field, f"{path}/{field.name}", field_value)
            continue
        for index, item in enumerate(field_value, 1):
            item_path = (
                f"{path}/{field.name}[{index}]"
                if field.item is None
                else f"{path}/{field.name}/{field.item}[{index}]"
            )
            yield from _leaf(field, item_path, item)


def _leaf(field: FieldPlan, path: str, value: Any) -> Iterator[tuple[str, FieldPlan, Any]]:
    if field.struct is not None:
        yield from leaves(value, path)
    else:
        yield path, field, value
