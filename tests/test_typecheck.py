"""schemas/typecheck.py: every error of a value against a msgspec type, each at its path."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import pytest

from schemas.typecheck import FieldError, FieldsInvalid, collect_errors, format_path

CitizenId = Annotated[str, msgspec.Meta(pattern=r"^\d{12}$", description="a 12-digit ID number")]


class Address(msgspec.Struct, forbid_unknown_fields=True):
    province: str
    ward: str | None = None


class Person(msgspec.Struct, forbid_unknown_fields=True):
    id_number: CitizenId
    birth_year: int
    address: Address
    phones: list[str] = []
    gender: Literal["nam", "nu"] = "nam"
    extra: dict[str, int] = {}


class Period(msgspec.Struct):
    """A check across fields that blames the field at fault (``FieldsInvalid``)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise FieldsInvalid([FieldError(("end",), "must not be before start")])


class Booking(msgspec.Struct):
    periods: list[Period]


class Whole(msgspec.Struct):
    """A check across fields with a plain ``ValueError``: blamed on the Struct itself."""

    a: int
    b: int

    def __post_init__(self) -> None:
        if self.a == self.b:
            raise ValueError("a and b must differ")


GOOD = {"id_number": "001099012345", "birth_year": 1999, "address": {"province": "Ha Giang"}}


def errors(value: object, tp: object) -> dict[str, str]:
    return {format_path(e.path): e.message for e in collect_errors(value, tp)}


def test_a_valid_value_has_no_errors() -> None:
    assert collect_errors(GOOD, Person) == []
    assert collect_errors([{"start": 1, "end": 2}], list[Period]) == []


def test_every_error_is_reported_each_at_its_path_not_only_the_first() -> None:
    value = {
        "id_number": "12-34",
        "birth_year": "1999",
        "address": {"ward": 7, "street": "Tran Phu"},
        "phones": ["0912345678", 912345678],
        "gender": "other",
        "extra": {"ok": 1, "bad": "x"},
        "nickname": "An",
    }
    assert errors(value, Person) == {
        "$.nickname": (
            "unknown key (expected one of: address, birth_year, extra, gender, id_number, phones)"
        ),
        "$.id_number": "expected a 12-digit ID number",
        "$.birth_year": "Expected `int`, got `str`",
        "$.address.street": "unknown key (expected one of: province, ward)",
        "$.address.province": "required key is missing",
        "$.address.ward": "Expected `str | null`, got `int`",
        "$.phones[1]": "Expected `str`, got `int`",
        "$.gender": "'other' is not one of: nam, nu",
        "$.extra.bad": "Expected `int`, got `str`",
    }


def test_paths_start_where_the_caller_says() -> None:
    (error,) = collect_errors({"province": 1}, Address, ("upstreams", "population", "address"))
    assert error == FieldError(
        ("upstreams", "population", "address", "province"), "Expected `str`, got `int`"
    )


def test_optional_struct_is_checked_inside_and_other_unions_as_a_whole() -> None:
    assert errors({"province": 1}, Address | None) == {"$.province": "Expected `str`, got `int`"}
    assert errors(["x"], int | str) == {"$": "Expected `int | str`, got `array`"}
    assert errors(None, Address | None) == {}


def test_fields_invalid_from_post_init_blames_the_field_under_the_structs_path() -> None:
    value = {"periods": [{"start": 1, "end": 2}, {"start": 5, "end": 3}, {"start": "x", "end": 1}]}
    assert errors(value, Booking) == {
        "$.periods[1].end": "must not be before start",
        "$.periods[2].start": "Expected `int`, got `str`",  # and the other errors too
    }
    assert errors({"start": 5, "end": 3}, Period) == {"$.end": "must not be before start"}


def test_plain_value_error_from_post_init_is_reported_at_the_struct() -> None:
    (error,) = collect_errors({"a": 1, "b": 1}, Whole, ("pair",))
    assert error.path == ("pair",)
    assert "a and b must differ" in error.message


@pytest.mark.parametrize(
    ("path", "root", "text"),
    [
        (("routes", 2, "timeout"), "$", "$.routes[2].timeout"),
        (("upstreams", "so-tttt.qlvb", "base_url"), "$", "$.upstreams['so-tttt.qlvb'].base_url"),
        (("routes", 0), "", "routes[0]"),
        ((), "", "(top level)"),
        ((), "$", "$"),
    ],
)
def test_format_path(path: tuple[str | int, ...], root: str, text: str) -> None:
    assert format_path(path, root) == text
