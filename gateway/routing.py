"""Match a method and path to a configured route.

Static paths are one dict lookup; templated paths (``/v1/x/{id}``) are
compiled to regular expressions and tried in configuration order, after
static ones. Two routes that could match the same request are a config error,
so the order of routes in YAML never changes behaviour.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

T = TypeVar("T")

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class RouteConflict(ValueError):
    pass


class NoRoute(LookupError):
    pass


class MethodNotAllowed(LookupError):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


class _Templated(Generic[T]):
    def __init__(self, template: str) -> None:
        self.template = template
        self.shape = _PARAM.sub("{}", template)
        pattern = _PARAM.sub(
            lambda m: f"(?P<{m[1]}>[^/]+)",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        self.regex = re.compile(f"^{pattern}$")
        self.methods: dict[str, T] = {}


class Router(Generic[T]):
    def __init__(self) -> None:
        self._static: dict[str, dict[str, T]] = {}
        self._templated: list[_Templated[T]] = []

    def add(self, method: str, template: str, target: T) -> None:
        if "{" not in template:
            methods = self._static.setdefault(template, {})
            self._check_free(methods, method, template)
            methods[method] = target
            return
        shape = _PARAM.sub("{}", template)
        entry = next((t for t in self._templated if t.shape == shape), None)
        if entry is None:
            entry = _Templated(template)
            self._templated.append(entry)
        self._check_free(entry.methods, method, entry.template)
        entry.methods[method] = target

    def lookup(self, method: str, path: str) -> tuple[T, dict[str, str]]:
        """The route and its path parameters; ``NoRoute`` or ``MethodNotAllowed`` otherwise."""
        methods = self._static.get(path)
        params: dict[str, str] = {}
        if methods is None:
            for entry in self._templated:
                match = entry.regex.match(path)
                if match is not None:
                    methods, params = entry.methods, match.groupdict()
                    break
            else:
                raise NoRoute(path)
        target = methods.get(method)
        if target is None:
            raise MethodNotAllowed(sorted(methods))
        return target, params

    @staticmethod
    def _check_free(methods: dict[str, T], method: str, template: str) -> None:
        if method in methods:
            raise RouteConflict(
                f"{method} {template} is already served by route {methods[method]!r}"
            )
