"""The error vocabulary: core codes, the adapter SDK's, and every plugin's; never a KeyError."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import msgspec
import pytest

from adapters import registry
from adapters.errors import ErrorCode, RequestRejected, UpstreamTimeout
from adapters.plugin import Plugin
from gateway import problems
from gateway.problems import Problem, vocabulary
from tests.support.config import ROOT


class ShelfEmpty(RequestRejected):
    """An adapter's own code that no plugin declares."""

    code = "shelf_empty"
    status = 409
    title = "Nothing left on the shelf"


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    for cached in (registry.plugins, registry.error_codes, vocabulary):
        cached.cache_clear()
    yield
    for cached in (registry.plugins, registry.error_codes, vocabulary):
        cached.cache_clear()


def test_the_vocabulary_joins_core_sdk_and_plugin_codes() -> None:
    known = vocabulary()
    assert known["unauthenticated"] == ErrorCode("unauthenticated", 401, "Authentication required")
    assert known["upstream_timeout"].status == 504  # the SDK's class says so
    assert known["checksum_invalid"] == ErrorCode(  # the portal package's plugin says so
        "checksum_invalid", 403, "Message checksum does not verify"
    )
    assert known["dossier_status_regression"].status == 409


def test_an_adapter_error_renders_from_its_class_even_when_no_plugin_declares_it() -> None:
    problem = Problem.of(ShelfEmpty("nothing for 2026", errors=[{"path": "$.x", "message": "m"}]))
    assert (problem.status, problem.code, problem.title) == (409, "shelf_empty", ShelfEmpty.title)
    document = msgspec.json.decode(problem.body("req-1"))
    assert document["errors"] == [{"path": "$.x", "message": "m"}]
    assert document["request_id"] == "req-1" and document["type"].endswith(":shelf_empty")
    assert problem.response_headers()["x-lgsp-error-source"] == "gateway"


def test_an_upstream_error_is_marked_upstream() -> None:
    problem = Problem.of(UpstreamTimeout("slow"), extra={"upstream_status": 504})
    assert problem.status == 504 and problem.source == "upstream"
    assert msgspec.json.decode(problem.body("r"))["upstream_status"] == 504


def test_a_plugin_contradicting_a_core_code_is_refused(
    fresh_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Impostor(RequestRejected):
        code = "unauthenticated"
        status = 400
        title = "Something else"

    monkeypatch.setattr(
        registry, "plugins", lambda: {"bad": Plugin(name="bad", errors=(Impostor,))}
    )
    with pytest.raises(registry.PluginError, match="unauthenticated"):
        vocabulary()


def test_two_plugins_disagreeing_on_a_code_are_refused(
    fresh_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Louder(ShelfEmpty):
        status = 410

    plugins = {"a": Plugin(name="a", errors=(ShelfEmpty,)), "b": Plugin(name="b", errors=(Louder,))}
    monkeypatch.setattr(registry, "plugins", lambda: plugins)
    with pytest.raises(registry.PluginError, match="shelf_empty"):
        registry.error_codes()


def test_every_code_the_core_raises_is_in_the_vocabulary() -> None:
    """``Problem("...")`` with a literal code anywhere under gateway/ must resolve."""
    raised = {
        node.args[0].value
        for path in (ROOT / "gateway").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Problem"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert len(raised) > 10
    assert raised <= set(vocabulary()), raised - set(vocabulary())


def test_core_codes_are_not_declared_twice() -> None:
    """A code has one home, the core table or an error class; ``forbidden`` is the core's, and
    the document axis raises it with the same status and title."""
    assert {code for code in problems.CODES if code in registry.error_codes()} == {"forbidden"}
