"""Adapter discovery: ``type:`` name -> adapter class, via Python entry points.

Built-in adapters are declared in our own ``pyproject.toml`` the same way a
third-party package declares its own, so there is exactly one mechanism.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from adapters.base import AdapterFactory

ENTRY_POINT_GROUP = "lgsp_gateway.adapters"


class UnknownAdapter(LookupError):
    pass


@cache
def _declared() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, AdapterFactory]:
    """All adapters installed in this environment, by ``type`` name."""
    return {name: get(name) for name in sorted(_declared())}


@cache
def get(type_name: str) -> AdapterFactory:
    """The adapter class of ``type_name``, imported on first use (one broken package
    then fails only the configs that use it)."""
    entry = _declared().get(type_name)
    if entry is None:
        known = ", ".join(sorted(_declared())) or "none installed"
        raise UnknownAdapter(f"unknown adapter type {type_name!r} (known: {known})")
    factory: AdapterFactory = entry.load()
    return factory
