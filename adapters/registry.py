"""Discovery through Python entry points: adapter classes and what their packages bring.

Built-in adapters are declared in our own ``pyproject.toml`` the same way a
third-party package declares its own, so there is exactly one mechanism:
``lgsp_gateway.adapters`` maps a ``type:`` name to an adapter class (imported
on first use, so one broken package fails only the configs that use it);
``lgsp_gateway.plugins`` maps a package to its ``Plugin`` (mocks, error
codes, personal fields, body-schema kinds), all loaded together since the
gateway needs their union.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from adapters.base import AdapterFactory
from adapters.errors import SDK_ERRORS, ErrorCode
from adapters.plugin import MockSystem, Plugin

ADAPTERS_GROUP = "lgsp_gateway.adapters"
PLUGINS_GROUP = "lgsp_gateway.plugins"


class UnknownAdapter(LookupError):
    pass


class PluginError(RuntimeError):
    """A plugin cannot be loaded, or contradicts another one."""


@cache
def _declared() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ADAPTERS_GROUP)}


def available() -> dict[str, AdapterFactory]:
    """All adapters installed in this environment, by ``type`` name."""
    return {name: get(name) for name in sorted(_declared())}


@cache
def get(type_name: str) -> AdapterFactory:
    """The adapter class of ``type_name``, imported on first use."""
    entry = _declared().get(type_name)
    if entry is None:
        known = ", ".join(sorted(_declared())) or "none installed"
        raise UnknownAdapter(f"unknown adapter type {type_name!r} (known: {known})")
    factory: AdapterFactory = entry.load()
    return factory


@cache
def plugins() -> dict[str, Plugin]:
    """Every installed plugin, by name."""
    found: dict[str, Plugin] = {}
    for entry in sorted(entry_points(group=PLUGINS_GROUP), key=lambda e: e.name):
        try:
            plugin = entry.load()
        except Exception as exc:  # name the package, not a bare traceback
            raise PluginError(
                f"plugin {entry.name!r} ({entry.value}) fails to load: {exc}"
            ) from exc
        if not isinstance(plugin, Plugin):
            raise PluginError(f"plugin {entry.name!r} ({entry.value}) is not an adapters.Plugin")
        if plugin.name in found:
            raise PluginError(f"two plugins are named {plugin.name!r}")
        found[plugin.name] = plugin
    return found


def mock_systems() -> dict[str, MockSystem]:
    return {name: p.mock for name, p in plugins().items() if p.mock is not None}


def load(reference: str) -> Any:
    """The object named by ``"module:attribute"``."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@cache
def error_codes() -> dict[str, ErrorCode]:
    """Codes adapters may raise: the SDK's and every plugin's. A code that two packages give
    different statuses or titles is a ``PluginError``: callers could not rely on it."""
    codes: dict[str, ErrorCode] = {}
    owners: dict[str, str] = {}
    for owner, classes in [("adapters", SDK_ERRORS)] + [
        (name, plugin.errors) for name, plugin in plugins().items()
    ]:
        for error in classes:
            entry = error.error_code()
            if entry.code in codes and codes[entry.code] != entry:
                raise PluginError(
                    f"error code {entry.code!r} of {owner} differs from {owners[entry.code]}'s"
                )
            codes[entry.code] = entry
            owners.setdefault(entry.code, owner)
    return codes


@cache
def personal_fields() -> tuple[str, ...]:
    fields = {f for plugin in plugins().values() for f in plugin.personal_fields}
    return tuple(sorted(fields))


@cache
def usage_counters() -> dict[str, str]:
    """Operation -> usage counter, from every plugin (``Plugin.usage``)."""
    return {op: counter for plugin in plugins().values() for op, counter in plugin.usage.items()}


@cache
def body_schemas() -> dict[str, str]:
    """Schema kind -> ``"module:Class"``, from every plugin."""
    kinds: dict[str, str] = {}
    for name, plugin in plugins().items():
        for kind, reference in plugin.body_schemas.items():
            if kind in kinds:
                raise PluginError(f"schema kind {kind!r} is declared twice (again by {name})")
            kinds[kind] = reference
    return kinds
