"""One hardened way to read JSON that came from outside (``xmlsafe``'s twin).

Refused before any value is built: bytes that are not UTF-8, and nesting
deeper than ``MAX_DEPTH`` (decoders recurse; 8000 ``[`` exhaust Python's
stack in whatever walks the result). Refused after decoding: an object that
names a key twice, which parsers resolve differently (the first wins here,
the last there) and so lets two readers of one body see two requests.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

MAX_DEPTH = 64
"""Arrays and objects inside one another; our bodies need under 10."""

_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_OPENING = frozenset(b"[{")


class UnsafeJson(ValueError):
    """A body refused before or while decoding; ``path`` says where, as far as known."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path


def check_depth(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``UnsafeJson`` if arrays and objects nest deeper than ``max_depth``; builds nothing.

    A body with no more brackets than the limit cannot pass it, whatever their
    order: that count is the common case, and costs two C scans.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return
    depth = 0
    for token in _STRUCTURE.finditer(body):
        first = token[0][0]
        if first in _OPENING:
            depth += 1
            if depth > max_depth:
                raise UnsafeJson(f"arrays and objects are nested deeper than {max_depth} levels")
        elif first != ord('"'):
            depth -= 1


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise UnsafeJson(f"the key {repeated!r} appears more than once in one object")
    return data


def decode(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``body`` as builtins; ``UnsafeJson`` for what the module refuses, ``msgspec.DecodeError``
    for what is not JSON at all."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeJson(f"not valid UTF-8 (byte {exc.start})") from None
    check_depth(body, max_depth)
    data = msgspec.json.decode(body)
    if body.count(b":") > 1:  # two keys at least: one could be repeated
        try:
            json.loads(text, object_pairs_hook=_unique)
        except UnsafeJson:
            raise
        except ValueError:  # a number of over 4300 digits, which msgspec read: no key is lost
            pass
    return data
