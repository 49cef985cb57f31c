"""The axis's JSON answers read as they arrive, for ``getEdoc``'s document in ``data``.

``getEdoc`` answers ``{"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "data":
"<base64 edXML>"}``: for a 20 MB document that is a 27 MB JSON string.
``AnswerReader`` decodes ``data`` into a file chunk by chunk (in whatever
order the members come) and keeps the other, small, members, so the adapter
never holds the answer or the document in memory.
"""

from __future__ import annotations

import binascii
import re
from typing import Any, Protocol

import msgspec

MAX_MEMBER = 1 << 20
"""Bytes kept of a member other than ``data``: an axis answer's fields are short."""
_SPECIAL = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"
_ESCAPES = {ord("/"): b"/", ord("n"): b"", ord("r"): b""}
"""JSON escapes that may appear inside base64 text (``\\/`` from PHP-like encoders, escaped
line breaks of MIME-style base64); any other escape is not base64."""


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class AnswerError(Exception):
    """The answer is not a JSON object, or its ``data`` is not base64."""


class AnswerReader:
    """Feed the answer's bytes; ``finish`` returns its members but ``data`` (decoded to sink)."""

    def __init__(self, sink: Sink, key: str = "data") -> None:
        self.sink = sink
        self.key = key.encode()
        self.decoded = False
        """Whether ``data`` was a string, decoded into the sink."""
        self.members: dict[str, Any] = {}
        self._state = self._start
        self._token = bytearray()  # the key or value being read
        self._name = b""
        self._pending = bytearray()  # base64 text not yet decoded (under 4 characters, or a chunk)
        self._escape = b""  # an escape sequence cut by a chunk boundary
        self._depth = 0
        self._in_string = False
        self._escaped = False

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        position = 0
        while position < len(view):
            position = self._state(view, position)

    def finish(self) -> dict[str, Any]:
        if self._state == self._other and self._depth == 0 and not self._in_string:
            self._end_other()  # a scalar as the last bytes (a broken answer, caught below)
        if self._state != self._end:
            raise AnswerError("the answer ends before its JSON object does")
        return self.members

    # One method per state: each reads from ``position`` and returns where it stopped.

    def _skip(self, view: memoryview, position: int) -> int:
        while position < len(view) and view[position] in _WHITESPACE:
            position += 1
        return position

    def _start(self, view: memoryview, position: int) -> int:
        position = self._skip(view, position)
        if position < len(view):
            self._expect(view[position], b"{")
            self._state = self._member
            position += 1
        return position

    def _member(self, view: memoryview, position: int) -> int:
        position = self._skip(view, position)
        if position < len(view):
            byte = view[position]
            if byte == ord("}") and not self.members and not self.decoded:
                self._state = self._end
            else:
                self._expect(byte, b'"')
                self._state = self._key
                self._token.clear()
                self._escaped = False
            position += 1
        return position

    def _key(self, view: memoryview, position: int) -> int:
        while position < len(view):
            byte = view[position]
            position += 1
            if byte == ord('"') and not self._escaped:
                self._name = bytes(self._token)
                self._state = self._colon
                return position
            self._escaped = byte == ord("\\") and not self._escaped
            self._token.append(byte)
            if len(self._token) > MAX_MEMBER:
                raise AnswerError("a member name is too long")
        return position

    def _colon(self, view: memoryview, position: int) -> int:
        position = self._skip(view, position)
        if position < len(view):
            self._expect(view[position], b":")
            self._state = self._value
            position += 1
        return position

    def _value(self, view: memoryview, position: int) -> int:
        position = self._skip(view, position)
        if position < len(view):
            if self._name == self.key and view[position] == ord('"'):
                self._state = self._data
                return position + 1
            self._token.clear()
            self._depth, self._in_string, self._escaped = 0, False, False
            self._state = self._other
        return position

    def _data(self, view: memoryview, position: int) -> int:
        """Inside ``data``: base64 text in bulk, up to a quote or a backslash."""
        if self._escape:
            return self._escape_sequence(view, position)
        found = _SPECIAL.search(view, position)
        stop = len(view) if found is None else found.start()
        self._pending += view[position:stop]
        self._decode()
        if found is None:
            return stop
        if view[stop] == ord('"'):
            self._decode(final=True)
            self.decoded = True
            self._state = self._after
            return stop + 1
        self._escape = b"\\"
        return self._escape_sequence(view, stop + 1)

    def _escape_sequence(self, view: memoryview, position: int) -> int:
        while position < len(view) and not self._escape_complete():
            self._escape += bytes(view[position : position + 1])
            position += 1
        if self._escape_complete():
            code = self._escape[1]
            if code == ord("u"):
                char = chr(int(self._escape[2:], 16))
                if not (char.isascii() and (char.isalnum() or char in "+/=")):
                    raise AnswerError("data is not base64")
                self._pending += char.encode()
            elif code in _ESCAPES:
                self._pending += _ESCAPES[code]
            else:
                raise AnswerError("data is not base64")
            self._escape = b""
        return position

    def _escape_complete(self) -> bool:
        if len(self._escape) < 2:
            return False
        return self._escape[1] != ord("u") or len(self._escape) == 6

    def _decode(self, *, final: bool = False) -> None:
        usable = len(self._pending) if final else len(self._pending) // 4 * 4
        if usable == 0 or (not final and usable < (1 << 16)):
            return  # decode in large pieces: fewer calls, same result
        text = bytes(self._pending[:usable])
        del self._pending[:usable]
        if final:
            text += b"=" * (-len(text) % 4)
        try:
            self.sink.write(binascii.a2b_base64(text, strict_mode=True))
        except binascii.Error:
            raise AnswerError("data is not base64") from None

    def _other(self, view: memoryview, position: int) -> int:
        """Any other value: kept whole (it is small), then decoded as JSON."""
        while position < len(view):
            byte = view[position]
            if self._in_string:
                escaped, self._escaped = self._escaped, byte == ord("\\") and not self._escaped
                self._in_string = byte != ord('"') or escaped
            elif byte == ord('"'):
                self._in_string = True
            elif byte in b"[{":
                self._depth += 1
            elif byte in b"]}" and self._depth:
                self._depth -= 1
            elif self._depth == 0 and byte in b",}" + _WHITESPACE:
                self._end_other()
                return position
            self._token.append(byte)
            if len(self._token) > MAX_MEMBER:
                raise AnswerError("a member of the answer is too long")
            position += 1
        return position

    def _end_other(self) -> None:
        try:
            name = msgspec.json.decode(b'"' + self._name + b'"')
            self.members[name] = msgspec.json.decode(bytes(self._token))
        except msgspec.DecodeError:
            raise AnswerError("the answer is not JSON") from None
        self._state = self._after

    def _after(self, view: memoryview, position: int) -> int:
        position = self._skip(view, position)
        if position < len(view):
            byte = view[position]
            if byte == ord(","):
                self._state = self._member
            else:
                self._expect(byte, b"}")
                self._state = self._end
            position += 1
        return position

    def _end(self, view: memoryview, position: int) -> int:
        position = self._skip(view, position)
        if position < len(view):
            raise AnswerError("more after the answer's JSON object")
        return position

    @staticmethod
    def _expect(byte: int, wanted: bytes) -> None:
        if byte != wanted[0]:
            raise AnswerError(f"the answer is not a JSON object (found {chr(byte)!r})")
