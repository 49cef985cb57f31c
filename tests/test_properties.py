"""Property tests of the readers that face the outside: whatever bytes come, each one
answers with its own refusal or a value, never anything else.

Deterministic (``derandomize``): the same examples every run, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.config.loader import ConfigInvalid, load_config
from schemas import jsonsafe, xmlsafe
from schemas.population import CitizenLookupRequest
from schemas.population.ids import (
    ID_PATTERN,
    PROVINCES,
    Gender,
    century_gender_digit,
    disagreements,
)

GENDERS: list[Gender] = ["nam", "nu"]

PROPERTIES = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


# --- JSON ---


@PROPERTIES
@given(json_values)
def test_json_reads_what_the_standard_library_writes(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    try:
        encoded = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8, refused as such
        encoded = text.encode("utf-8", "surrogatepass")
        with pytest.raises(jsonsafe.UnsafeJson):
            jsonsafe.decode(encoded)
        return
    assert jsonsafe.decode(encoded) == value


@PROPERTIES
@given(st.binary(max_size=300))
def test_json_refuses_any_bytes_with_its_own_errors_only(body: bytes) -> None:
    with contextlib.suppress(jsonsafe.UnsafeJson, msgspec.DecodeError):
        jsonsafe.decode(body)


@PROPERTIES
@given(st.integers(min_value=1, max_value=300), st.sampled_from("[{"))
def test_json_depth_is_bounded_whatever_the_brackets(depth: int, opening: str) -> None:
    body = _nested(depth, opening)
    if depth <= jsonsafe.MAX_DEPTH:
        jsonsafe.decode(body)
    else:
        with pytest.raises(jsonsafe.UnsafeJson, match="nested deeper"):
            jsonsafe.decode(body)


def _nested(depth: int, opening: str) -> bytes:
    """``depth`` arrays or objects one inside the other, with brackets in strings as decoys."""
    if opening == "[":
        return ("[" * (depth - 1) + '["[{"]' + "]" * (depth - 1)).encode()
    return ('{"k{[":' * depth + "1" + "}" * depth).encode()


@PROPERTIES
@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), min_size=1, max_size=5))
def test_json_refuses_a_key_named_twice(value: dict[str, int]) -> None:
    key = next(iter(value))
    body = json.dumps(value)[:-1] + f", {json.dumps(key)}: 0}}"
    with pytest.raises(jsonsafe.UnsafeJson, match="more than once"):
        jsonsafe.decode(body.encode())


# --- XML ---


@PROPERTIES
@given(st.binary(max_size=300))
def test_xml_refuses_any_bytes_with_its_own_errors_only(body: bytes) -> None:
    with contextlib.suppress(xmlsafe.UnsafeXml, etree.XMLSyntaxError):
        xmlsafe.parse(body)


@PROPERTIES
@given(st.integers(min_value=1, max_value=200))
def test_xml_depth_is_bounded(depth: int) -> None:
    body = ("<a>" * depth + "</a>" * depth).encode()
    if depth <= xmlsafe.DEFAULT_LIMITS.max_depth:
        xmlsafe.parse(body)
    else:
        with pytest.raises(xmlsafe.UnsafeXml):
            xmlsafe.parse(body)


@PROPERTIES
@given(st.text(max_size=30))
def test_text_xml_refuses_is_text_the_pattern_refuses(text: str) -> None:
    """The schema's pattern and the SOAP adapter's check agree with lxml itself."""
    try:
        etree.Element("a").text = text
        lxml_takes = True
    except ValueError:
        lxml_takes = False
    found = list(xmlsafe.unencodable({"x": [text]}))
    assert (re.match(xmlsafe.XML_TEXT_PATTERN, text) is not None) == (not found)
    if lxml_takes:
        assert not found
    else:
        assert found and found[0][0] == "$.x[0]"


# --- the personal ID pre-check ---


@PROPERTIES
@given(st.text(max_size=14))
def test_id_shape_refuses_through_the_schema_only(text: str) -> None:
    with contextlib.suppress(msgspec.ValidationError):
        msgspec.convert({"so_dinh_danh": text}, CitizenLookupRequest)


@PROPERTIES
@given(
    st.sampled_from(sorted(PROVINCES)),
    st.integers(min_value=1900, max_value=2099),
    st.sampled_from(GENDERS),
    st.integers(min_value=0, max_value=999_999),
)
def test_an_id_made_for_a_person_agrees_with_them(
    province: str, year: int, gender: Gender, serial: int
) -> None:
    digit = century_gender_digit(year, gender)
    personal_id = f"{province}{digit}{year % 100:02d}{serial:06d}"
    assert re.match(ID_PATTERN, personal_id)
    assert disagreements(personal_id, f"{year}-01-01", gender) == []
    other = "nu" if gender == "nam" else "nam"
    assert [f for f, _ in disagreements(personal_id, str(year + 1), other)] == [
        "ngay_sinh",
        "gioi_tinh",
    ]


# --- the config loader ---

yaml_text = st.text(
    alphabet=st.sampled_from(list("abcdeilmnoprstuv_-:{}[],'\"#&*!|>%@` \n\t0123456789.")),
    max_size=200,
)


@PROPERTIES
@given(yaml_text)
def test_any_config_text_loads_or_is_refused_with_issues(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(str(path), environ={})
    except ConfigInvalid as exc:
        assert exc.issues, text
