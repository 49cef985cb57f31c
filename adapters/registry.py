"""Adapter discovery: ``type:`` name -> adapter class, via Python entry points.

Built-in adapters are declared in our own ``pyproject.toml`` the same way a
third-party package declares its own, so there is exactly one mechanism.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from adapters.base import AdapterFactory

ENTRY_POINT_GROUP = "lgsp_gateway.adapters"


class UnknownAdapter(LookupError):
    pass


@cache
def available() -> dict[str, AdapterFactory]:
    """All adapters installed in this environment, by ``type`` name."""
    found: dict[str, AdapterFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.load()
    return dict(sorted(found.items()))


def get(type_name: str) -> AdapterFactory:
    try:
        return available()[type_name]
    except KeyError:
        known = ", ".join(available()) or "none installed"
        raise UnknownAdapter(f"unknown adapter type {type_name!r} (known: {known})") from None
