"""The architecture, checked: layers point one way, no import cycles, the core names no
national system (a national system is one package under adapters/, found by entry point)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.support.config import ROOT

NATIONAL = re.compile(r"dvcqg|population|document[_-]axis|dancu|vdxp|paygov", re.IGNORECASE)


def test_import_contracts_are_kept() -> None:
    """pyproject.toml [tool.importlinter]: gateway -> adapters -> schemas, acyclic."""
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def _code_strings_and_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Every identifier and string of a module's code, with its line; docstrings (of modules,
    classes, functions and attributes: any string standing alone as a statement) are prose."""
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.Name | ast.arg):
            found.append((node.lineno, node.id if isinstance(node, ast.Name) else node.arg))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.alias):
            found.append((node.lineno, node.name))
    return found


def test_the_core_names_no_national_system() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        for line, text in _code_strings_and_names(ast.parse(path.read_text(encoding="utf-8")))
        if NATIONAL.search(text)
    ]
    assert offences == []


def test_the_check_itself_sees_a_national_name() -> None:
    source = 'def f(x):\n    """dvcqg in a docstring is fine."""\n    return x["dvcqg"]\n'
    assert [t for _, t in _code_strings_and_names(ast.parse(source)) if NATIONAL.search(t)] == [
        "dvcqg"
    ]


def test_adapters_and_schemas_never_import_the_core() -> None:
    """The same rule as the layers contract, readable without import-linter's report."""
    for package in ("adapters", "schemas"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                for name in names:
                    assert not name.startswith("gateway"), f"{path}: imports {name}"
                    if package == "schemas":
                        assert not name.startswith("adapters"), f"{path}: imports {name}"


def test_source_tree_has_no_stray_build_output() -> None:
    assert not list(Path(ROOT, "tests", "thirdparty").rglob("*.egg-info"))
