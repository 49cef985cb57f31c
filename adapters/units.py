"""Durations (``250ms``, ``5s``) and sizes (``20MiB``) as admins write them.

They stay strings in the config model (so the JSON Schema shows them as
admins type them) and are parsed once, when the config is compiled.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated

import msgspec

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|KiB|MiB|GiB)$"

Duration = Annotated[
    str,
    msgspec.Meta(
        pattern=DURATION_PATTERN, description="a duration such as 250ms, 5s, 2m, 1h or 30d"
    ),
]
Size = Annotated[
    str,
    msgspec.Meta(pattern=SIZE_PATTERN, description="a size such as 512KiB, 20MiB or 1GB"),
]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_SPLIT = re.compile(r"^([0-9.]+)([A-Za-z]+)$")


@cache  # adapters call these on hot paths with a handful of distinct values
def seconds(value: str) -> float:
    number, unit = _split(value)
    return number * _DURATION_UNITS[unit]


@cache
def size_bytes(value: str) -> int:
    number, unit = _split(value)
    return int(number * _SIZE_UNITS[unit])


def _split(value: str) -> tuple[float, str]:
    match = _SPLIT.match(value)
    if match is None:  # the config model's pattern makes this unreachable for checked input
        raise ValueError(f"not a duration or size: {value!r}")
    return float(match[1]), match[2]
