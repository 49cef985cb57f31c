"""Hostile XML is refused quickly with a typed error: never a hang, a crash, or a file read."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from lxml import etree

import schemas.edxml as edxml
from schemas import xmlsafe
from schemas.edxml import EdxmlLimits, EdxmlMalformed, EdxmlUnsafe, UnsafeXml
from tests.fixtures.edxml import samples
from tests.fixtures.edxml.samples import raw

NS = samples.EDXML_NS


def laughs() -> bytes:
    """Billion laughs: ten entities, each ten of the one before: 10^9 'lol'."""
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE edXML [{entities}]><edXML xmlns="{NS}">&l9;</edXML>'.encode()


def quadratic() -> bytes:
    """Quadratic blowup: one 100 KB entity used 20,000 times (2 GB), no nesting to detect."""
    entity = "x" * 100_000
    return (
        f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "{entity}">]>'
        f'<edXML xmlns="{NS}">{"&a;" * 20_000}</edXML>'
    ).encode()


HOSTILE: dict[str, tuple[bytes, str]] = {
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + f'<edXML xmlns="{NS}">&x;</edXML>'.encode(),
        "doctype",
    ),
    "external DTD over the network": (
        b'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "http://203.0.113.7/edxml.dtd">'
        + f'<edXML xmlns="{NS}"/>'.encode(),
        "doctype",
    ),
    "parameter entities": (
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY % p SYSTEM "http://203.0.113.7/p.dtd">%p;]>'
        + f'<edXML xmlns="{NS}"/>'.encode(),
        "doctype",
    ),
    "billion laughs": (laughs(), "doctype"),
    "quadratic blowup": (quadratic(), "doctype"),
    "DOCTYPE in UTF-16": (
        (
            '<?xml version="1.0" encoding="UTF-16"?>'
            '<!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            f'<edXML xmlns="{NS}">&x;</edXML>'
        ).encode("utf-16"),
        "doctype",
    ),
    "DOCTYPE in UTF-16 without a byte order mark": (
        (
            '<?xml version="1.0" encoding="UTF-16LE"?>'
            '<!DOCTYPE edXML SYSTEM "file:///etc/passwd">'
            f'<edXML xmlns="{NS}"/>'
        ).encode("utf-16-le"),
        "doctype",
    ),
    "deep nesting": (
        f'<edXML xmlns="{NS}">'.encode() + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</edXML>",
        "too_deep",
    ),
    "100,000 attributes on one element (lxml's attrib.items() is quadratic)": (
        f'<edXML xmlns="{NS}" '.encode()
        + b" ".join(b'a%d="x"' % i for i in range(100_000))
        + b"/>",
        "too_many_attributes",
    ),
    "100,000 namespace declarations (lxml's TreeBuilder is quadratic)": (
        f'<edXML xmlns="{NS}" '.encode()
        + b" ".join(b'xmlns:p%d="urn:p%d"' % (i, i) for i in range(100_000))
        + b"/>",
        "too_many_attributes",
    ),
    "millions of elements": (
        f'<edXML xmlns="{NS}">'.encode() + b"<a/>" * 3_000_000 + b"</edXML>",
        "too_many_elements",
    ),
}

ReadFunction = Callable[[bytes], object]
READERS: dict[str, ReadFunction] = {
    "schemas.edxml.parse": edxml.parse,
    "schemas.edxml.validate": edxml.validate,
    "schemas.edxml.parse_status": edxml.parse_status,
    "schemas.xmlsafe.parse (route bodies)": xmlsafe.parse,
    "schemas.xmlsafe.refuse_hostile": xmlsafe.refuse_hostile,
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_xml_is_refused(case: str, reader: str) -> None:
    document, reason = HOSTILE[case]
    started = time.monotonic()
    with pytest.raises(UnsafeXml) as caught:
        READERS[reader](document)
    assert time.monotonic() - started < 3
    assert caught.value.reason == reason
    assert "root:" not in str(caught.value)  # /etc/passwd was never read
    if reader.startswith("schemas.edxml"):
        assert isinstance(caught.value, EdxmlUnsafe)
        assert isinstance(caught.value, edxml.EdxmlError)
    if reason == "doctype":
        assert "DOCTYPE" in str(caught.value)


def test_huge_text_in_the_header_is_refused() -> None:
    document = raw(
        f"<From><OrganId>000.00.11.H53</OrganId></From><Subject>{'x' * 2_000_000}</Subject>"
    )
    with pytest.raises(EdxmlUnsafe) as caught:
        edxml.validate(document)
    assert caught.value.reason == "text_too_long"


def test_header_text_in_total_is_bounded() -> None:
    many = "".join(f"<Place>{'Lưu ' * 30}</Place>" for _ in range(1000))
    document = raw(f"<From><OrganId>000.00.11.H53</OrganId></From><ToPlaces>{many}</ToPlaces>")
    with pytest.raises(EdxmlUnsafe) as caught:
        edxml.validate(document, limits=EdxmlLimits(max_header_chars=100_000))
    assert caught.value.reason == "too_large"


def test_document_size_limit() -> None:
    document = samples.FULL.read_bytes()
    with pytest.raises(EdxmlUnsafe) as caught:
        edxml.parse(document, limits=EdxmlLimits(max_document_bytes=4096))
    assert caught.value.reason == "too_large"


def test_attachment_size_and_count_limits() -> None:
    with pytest.raises(EdxmlUnsafe) as caught:
        edxml.parse(samples.FULL, limits=EdxmlLimits(max_attachment_bytes=1000))
    assert caught.value.reason == "attachment_too_large"
    with pytest.raises(EdxmlUnsafe) as caught:
        edxml.validate(samples.FULL, limits=EdxmlLimits(max_attachments=1))
    assert caught.value.reason == "too_many_attachments"


@pytest.mark.parametrize(
    ("document", "line"),
    [
        (b"", None),
        (b"not XML at all", 1),
        (f'<edXML xmlns="{NS}"><edXMLEnvelope>'.encode(), 1),
        (f'<edXML xmlns="{NS}">\n<Subject>&nbsp;</Subject></edXML>'.encode(), 2),
        (f'<edXML xmlns="{NS}"><a></b></edXML>'.encode(), 1),
    ],
    ids=["empty", "not-xml", "truncated", "undeclared-entity", "mismatched-tags"],
)
def test_malformed_xml_is_a_typed_error_with_its_line(document: bytes, line: int | None) -> None:
    with pytest.raises(EdxmlMalformed) as caught:
        edxml.validate(document)
    assert str(caught.value).startswith("not well-formed XML")
    if line is not None:
        assert caught.value.line == line
    with pytest.raises(etree.XMLSyntaxError):
        xmlsafe.parse(document)


def test_xinclude_and_schema_locations_are_not_followed() -> None:
    document = (
        f'<edXML xmlns="{NS}" xmlns:xi="http://www.w3.org/2001/XInclude" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://203.0.113.7/edxml.xsd">'
        '<xi:include href="file:///etc/passwd" parse="text"/></edXML>'
    ).encode()
    issues = edxml.validate(document)
    assert ("/edXML/include", "unexpected_element") in {(i.path, i.rule) for i in issues}
    assert "root:" not in repr(issues)


def test_a_failed_parse_leaves_no_temp_file_open() -> None:
    import os

    before = len(os.listdir("/proc/self/fd"))
    broken = samples.FULL.read_bytes().replace(b"<Subject>", b"<Subject>" + b"x" * 600, 1)
    with pytest.raises(edxml.EdxmlInvalid):
        edxml.parse(broken, limits=EdxmlLimits(spool_memory_bytes=16))
    with pytest.raises(EdxmlUnsafe):
        edxml.parse(
            samples.FULL, limits=EdxmlLimits(spool_memory_bytes=16, max_attachment_bytes=2000)
        )
    assert len(os.listdir("/proc/self/fd")) == before
