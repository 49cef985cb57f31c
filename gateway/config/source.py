"""YAML text -> plain data, remembering where every key came from.

PyYAML's composer gives nodes with line marks; we build the data ourselves
so that every value's key path maps to ``(file, line)``, duplicate keys are
refused (meaning must not depend on which one wins), and ``${VAR}`` /
``${VAR:-default}`` are substituted in scalar values only, never in keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

from schemas.typecheck import Path

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class SourceIssue(msgspec.Struct, frozen=True):
    file: str
    line: int
    path: Path
    message: str


class Document(msgspec.Struct):
    file: str
    data: Any
    locations: dict[Path, tuple[str, int]]
    issues: list[SourceIssue]


def read_yaml(file: str, environ: Mapping[str, str] | None = None) -> Document:
    env = os.environ if environ is None else environ
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return Document(file, None, {}, [SourceIssue(file, 0, (), f"cannot read: {exc.strerror}")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        return Document(file, None, {}, [SourceIssue(file, line, (), f"not valid YAML: {problem}")])
    builder = _Builder(file, env)
    data = builder.build(node, ()) if node is not None else {}
    return Document(file, data, builder.locations, builder.issues)


class _Builder:
    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self.locations: dict[Path, tuple[str, int]] = {}
        self.issues: list[SourceIssue] = []
        self._loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.locations[path] = (self.file, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self._issue(line, path, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            if key in out:
                self._issue(line, (*path, key), "duplicate key (each key may appear once)")
                continue
            out[key] = self.build(value_node, (*path, key))
            self.locations[(*path, key)] = (self.file, line)
        return out

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        assert isinstance(node, yaml.ScalarNode)
        if "${" in node.value:
            value = self._interpolate(node.value, node.start_mark.line + 1, path)
            if node.style is not None:  # quoted: stays a string
                return value
            tag = self._loader.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
            node = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark)
        try:
            return self._loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:  # an unknown tag (!x), a bad !!binary or date
            problem = getattr(exc, "problem", None) or str(exc)
            self._issue(node.start_mark.line + 1, path, f"cannot read this value: {problem}")
            return None

    def _interpolate(self, text: str, line: int, path: Path) -> str:
        def substitute(match: re.Match[str]) -> str:
            name, default = match[1], match[2]
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self._issue(line, path, f"environment variable {name} is not set (no default given)")
            return ""

        return _ENV.sub(substitute, text)

    def _issue(self, line: int, path: Path, message: str) -> None:
        self.issues.append(SourceIssue(self.file, line, path, message))
