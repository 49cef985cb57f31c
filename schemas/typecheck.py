"""Every way a value fails a msgspec type, not only the first.

msgspec stops at the first error, which is right for speed and wrong for
people: an administrator fixing a config, or an agency developer fixing a
request, wants the whole list. The fast path stays msgspec's own; this walk
runs only once a value is already known to be invalid.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union

import msgspec

from schemas.xmlsafe import XML_TEXT_PATTERN

Path = tuple[str | int, ...]


class FieldError(msgspec.Struct, frozen=True):
    path: Path
    message: str


class FieldsInvalid(ValueError):
    """Raised by a Struct's ``__post_init__`` to blame particular fields (checks across fields).

    A plain ``ValueError`` there is reported at the Struct's own path; this one
    puts each message at the path of the field at fault (relative to the Struct).
    """

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


_AT_SUFFIX = re.compile(r" - at `\$[^`]*`$")


def collect_errors(value: Any, tp: Any, path: Path = ()) -> list[FieldError]:
    """All errors of ``value`` against ``tp``; empty when it converts cleanly."""
    try:
        msgspec.convert(value, tp)
        return []
    except msgspec.ValidationError as exc:
        first = str(exc)
        # Raised by ``tp`` itself (no "- at" path): its fields are at fault. From a nested
        # Struct, the walk below reaches that Struct and puts the errors under its path.
        if isinstance(exc.__cause__, FieldsInvalid) and not _AT_SUFFIX.search(first):
            return [FieldError((*path, *e.path), e.message) for e in exc.__cause__.errors]
    base, meta = _unwrap(tp)
    errors: list[FieldError] = []
    if _is_struct(base) and isinstance(value, dict):
        errors = _struct_errors(value, base, path)
    elif typing.get_origin(base) is list and isinstance(value, list):
        (item_type,) = typing.get_args(base) or (Any,)
        for index, item in enumerate(value):
            errors += collect_errors(item, item_type, (*path, index))
    elif typing.get_origin(base) is dict and isinstance(value, dict):
        key_type, value_type = typing.get_args(base) or (Any, Any)
        for key, item in value.items():
            errors += collect_errors(key, key_type, (*path, str(key)))
            errors += collect_errors(item, value_type, (*path, str(key)))
    if errors:
        return errors
    if typing.get_origin(base) is typing.Literal:
        choices = ", ".join(str(choice) for choice in typing.get_args(base))
        return [FieldError(path, f"{value!r} is not one of: {choices}")]
    return [FieldError(path, _describe(first, meta))]


def format_path(path: Path, root: str = "$") -> str:
    """``("routes", 2, "timeout")`` -> ``$.routes[2].timeout``; with ``root=""``, no ``$``."""
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(top level)"


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _struct_errors(value: dict[Any, Any], tp: type, path: Path) -> list[FieldError]:
    fields = {f.encode_name: f for f in msgspec.structs.fields(tp)}
    hints = typing.get_type_hints(tp, include_extras=True)
    errors: list[FieldError] = []
    config = getattr(tp, "__struct_config__", None)
    if config is not None and config.forbid_unknown_fields:
        for key in value:
            if key not in fields:
                hint = ", ".join(sorted(fields))
                errors.append(
                    FieldError((*path, str(key)), f"unknown key (expected one of: {hint})")
                )
    for name, field in fields.items():
        if name in value:
            errors += collect_errors(value[name], hints.get(field.name, field.type), (*path, name))
        elif field.required:
            errors.append(FieldError((*path, name), "required key is missing"))
    return errors


def _unwrap(tp: Any) -> tuple[Any, msgspec.Meta | None]:
    """Strip ``Annotated`` (and ``Optional``) to the type a container check needs."""
    meta = None
    if typing.get_origin(tp) is typing.Annotated:
        tp, *extras = typing.get_args(tp)
        meta = next((m for m in extras if isinstance(m, msgspec.Meta)), None)
    if typing.get_origin(tp) in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return tp, meta


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _describe(message: str, meta: msgspec.Meta | None) -> str:
    """msgspec's message without its path, with the field's own description when it has one."""
    message = _AT_SUFFIX.sub("", message)
    if meta is not None and meta.pattern == XML_TEXT_PATTERN and "regex" in message:
        return "holds a character XML cannot carry (a control character, U+FFFE, U+FFFF)"
    if meta is not None and meta.description and "regex" in message:
        return f"expected {meta.description}"
    return message
