"""The portal's JSON as its public client writes and reads it (OpenCPS), kept in one place.

The source is OpenCPS's ``DVCQGIntegrationActionImpl`` (``VietOpenCPS/opencps-v2``,
``modules/backend-dossiermgt``):

Out (what we send):

- a synced record carries every field the client sends, as **strings**:
  ``TrangThaiHoSo: "4"``, ``LoaiDoiTuong: "1"``, ``HinhThuc: "0"``; a value
  the agency did not give is ``""`` (as OpenCPS writes an empty date) and a
  list ``[]``; ``SoBienNhan`` only when given (OpenCPS leaves it out);
- ``isUpdating`` is ``"True"``/``"False"`` (``DongBoHoSoMC`` only).

In (what we read, tolerantly): answer keys are matched to our field names
case-insensitively (``MATTHC`` -> ``MaTTHC``) or through ``ANSWER_KEYS``
(``MADONVI`` -> ``MaCoQuan``); keys we do not know are ignored; ``""`` and
``null`` mean absent; a number where we keep text is read as text, and text
digits where we keep a number as that number.

Assumptions (no public client shows them): booleans inside records
(``IsDeleted``) are written like ``isUpdating``; records of ``DongBoHoiDap``
follow the dossier records' rules.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)

ANSWER_KEYS: Mapping[str, str] = {
    # LayDanhMucCoQuan, and the agency of a question
    "MADONVI": "MaCoQuan",
    "TENDONVI": "TenCoQuan",
    "CAPDONVI": "CapCoQuan",
    # LayDanhSachHoiDapGuiTuDVCQG
    "HOIDAPID": "MaCauHoi",
    "NOIDUNG": "NoiDungCauHoi",
    # LayThuTuc
    "LINHVUCTHUCHIEN": "LinhVucThucHien",
}
"""Portal answer keys (upper case) whose field has another name on our JSON face."""

SENT_ONLY_WHEN_GIVEN = frozenset({"SoBienNhan"})
"""Record fields OpenCPS does not send: left out rather than sent empty."""


def flag(value: bool) -> str:
    """A boolean as the portal's clients write it (``isUpdating``)."""
    return "True" if value else "False"


def record(value: msgspec.Struct) -> dict[str, Any]:
    """One record as OpenCPS would send it: every field, each value a string (or list)."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(value):
        item = getattr(value, field.name)
        if item is None and field.encode_name in SENT_ONLY_WHEN_GIVEN:
            continue
        out[field.encode_name] = _text(item)
    return out


def _text(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return record(value)
    if isinstance(value, list):
        return [_text(item) for item in value]
    if isinstance(value, dict):
        return {key: _text(item) for key, item in value.items()}
    if value is None:
        return ""
    if isinstance(value, bool):
        return flag(value)
    return str(value)


def read(items: list[Any], kind: type[T]) -> list[T]:
    """The portal's records as ``kind``, read tolerantly; a record we cannot read raises.

    Raises ``msgspec.ValidationError`` (with the path) for a record that lacks a
    required field or holds a value of the wrong kind even after that tolerance.
    """
    return [msgspec.convert(_fields(item, kind), kind, strict=False) for item in items]


def _fields(item: Any, kind: type[msgspec.Struct]) -> Any:
    if not isinstance(item, dict):
        return item  # msgspec names what is wrong
    fields = {f.encode_name.casefold(): f for f in msgspec.structs.fields(kind)}
    data: dict[str, Any] = {}
    for key, value in item.items():
        field = fields.get(ANSWER_KEYS.get(str(key).upper(), str(key)).casefold())
        if field is None or value is None or value == "" or field.encode_name in data:
            continue
        data[field.encode_name] = _value(value, field.type)
    _first_field_of_procedure(item, data, fields)
    return data


def _value(value: Any, tp: Any) -> Any:
    nested = _list_of_struct(tp)
    if nested is not None and isinstance(value, list):
        return [_fields(item, nested) for item in value]
    if _is_text(tp) and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _first_field_of_procedure(
    item: dict[Any, Any], data: dict[str, Any], fields: Mapping[str, Any]
) -> None:
    """A procedure's field from the first of ``LINHVUCTHUCHIEN`` when it has no ``MALINHVUC``."""
    if "malinhvuc" not in fields or "MaLinhVuc" in data:
        return
    listed = next((v for k, v in item.items() if str(k).upper() == "LINHVUCTHUCHIEN"), None)
    if isinstance(listed, list) and listed and isinstance(listed[0], dict):
        first = {str(k).upper(): v for k, v in listed[0].items()}
        for ours, theirs in (("MaLinhVuc", "MALINHVUC"), ("TenLinhVuc", "TENLINHVUC")):
            if first.get(theirs) not in (None, ""):
                data[ours] = _value(first[theirs], str)


def _is_text(tp: Any) -> bool:
    if tp is str:
        return True
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return str in typing.get_args(tp)
    return False


def _list_of_struct(tp: Any) -> type[msgspec.Struct] | None:
    if typing.get_origin(tp) is not list:
        return None
    (item,) = typing.get_args(tp)
    return item if isinstance(item, type) and issubclass(item, msgspec.Struct) else None
