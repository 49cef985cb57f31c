"""Masking personal data: ID numbers anywhere, and named personal fields in JSON bodies.

One rule for both ordinary logs and stored message bodies: ID numbers keep
their first and last three digits (as the population database rules ask),
other personal values keep only their first character. Which JSON fields are
personal is said by each adapter package's plugin (``registry.personal_fields``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

# 12-digit personal ID (CCCD) and 9-digit old ID card (CMND), not inside longer numbers.
_ID_NUMBER = re.compile(r"(?<![0-9])([0-9]{3})([0-9]{3}|[0-9]{6})([0-9]{3})(?![0-9])")


def mask_id_numbers(text: str) -> str:
    return _ID_NUMBER.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], text)


PUBLIC_DETAIL_LIMIT = 200
_CREDENTIAL = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|user(?:name)?|uid|login)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s;,&]+)"
)
# A URL, or a connection string with credentials (``jdbc:oracle:thin:user/pass@host``).
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+|[^\s\"'<>]*[:/][^\s@]*@[^\s\"'<>]+")
_ADDRESS = re.compile(r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]+)?\b")


def public_detail(text: str) -> str:
    """An upstream's own words as a caller may read them: cut, ID numbers masked, and
    credentials, URLs and IP addresses (its insides, not the caller's business) removed."""
    text = _CREDENTIAL.sub(lambda m: f"{m[1]}{m[2]}[hidden]", mask_id_numbers(text))
    text = _ADDRESS.sub("[address]", _URL.sub("[url]", text))
    if len(text) > PUBLIC_DETAIL_LIMIT:
        text = text[: PUBLIC_DETAIL_LIMIT - 1] + "…"
    return text


def mask_value(value: Any) -> Any:
    """Every string inside ``value`` with its ID numbers masked."""
    if isinstance(value, str):
        return mask_id_numbers(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def _hide(value: Any) -> Any:
    if isinstance(value, str):
        masked = mask_id_numbers(value)
        return masked if masked != value else (value[:1] + "***" if value else value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "***"
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return value


def _mask_fields(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _hide(v) if k in fields else _mask_fields(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_fields(v, fields) for v in value]
    return mask_value(value)


def mask_body(body: bytes, media_type: str, fields: frozenset[str]) -> bytes:
    """A copy of ``body`` safe to keep: personal fields hidden (JSON), ID numbers masked (text)."""
    if not body:
        return body
    if "json" in media_type:
        try:
            data = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):  # a refused body is kept too: as text
            pass
        else:
            return msgspec.json.encode(_mask_fields(data, fields))
    if "xml" in media_type or media_type.startswith("text/") or "json" in media_type:
        return mask_id_numbers(body.decode("utf-8", "replace")).encode()
    return body  # binary (a PDF, an image): nothing we can mask, kept only if the route says so
