"""gateway/routing.py: method + path template matching, 404 vs 405, conflicting routes."""

from __future__ import annotations

import pytest

from gateway.routing import MethodNotAllowed, NoRoute, RouteConflict, Router


def router(*routes: tuple[str, str, str]) -> Router[str]:
    built: Router[str] = Router()
    for method, template, target in routes:
        built.add(method, template, target)
    return built


def test_static_path_matches_exactly_with_no_params() -> None:
    r = router(("POST", "/v1/citizens/lookup", "lookup"))
    assert r.lookup("POST", "/v1/citizens/lookup") == ("lookup", {})
    for other in ("/v1/citizens/lookup/", "/v1/citizens", "/v1/citizens/lookup/x"):
        with pytest.raises(NoRoute):
            r.lookup("POST", other)


def test_template_captures_each_param_within_one_segment() -> None:
    r = router(("GET", "/v1/agencies/{organ_id}/documents/{doc_id}", "get"))
    target, params = r.lookup("GET", "/v1/agencies/000.00.11.H53/documents/abc-1")
    assert target == "get"
    assert params == {"organ_id": "000.00.11.H53", "doc_id": "abc-1"}
    with pytest.raises(NoRoute):  # a parameter never spans a slash
        r.lookup("GET", "/v1/agencies/a/b/documents/abc")
    with pytest.raises(NoRoute):  # nor is it empty
        r.lookup("GET", "/v1/agencies//documents/abc")


def test_regex_characters_in_a_template_are_literal() -> None:
    r = router(("GET", "/v1/files/{name}.pdf", "pdf"))
    assert r.lookup("GET", "/v1/files/quyet-dinh.pdf") == ("pdf", {"name": "quyet-dinh"})
    with pytest.raises(NoRoute):  # "." is not "any character"
        r.lookup("GET", "/v1/files/quyet-dinhXpdf")


def test_static_path_wins_over_a_template_that_also_matches() -> None:
    r = router(
        ("GET", "/v1/dossiers/{code}", "one"),
        ("GET", "/v1/dossiers/search", "search"),
    )
    assert r.lookup("GET", "/v1/dossiers/search") == ("search", {})
    assert r.lookup("GET", "/v1/dossiers/H53-001") == ("one", {"code": "H53-001"})


def test_unknown_path_is_no_route_and_known_path_with_other_method_lists_allowed() -> None:
    r = router(
        ("PUT", "/v1/dossiers/{code}", "put"),
        ("GET", "/v1/dossiers/{code}", "get"),
        ("POST", "/v1/dossiers", "create"),
    )
    with pytest.raises(NoRoute):
        r.lookup("GET", "/v1/payments")
    with pytest.raises(MethodNotAllowed) as templated:
        r.lookup("DELETE", "/v1/dossiers/H53-001")
    assert templated.value.allowed == ["GET", "PUT"]  # sorted, whatever the config order
    with pytest.raises(MethodNotAllowed) as static:
        r.lookup("GET", "/v1/dossiers")
    assert static.value.allowed == ["POST"]


def test_methods_on_one_template_share_it_whatever_the_param_names() -> None:
    r = router(
        ("GET", "/v1/dossiers/{code}", "get"),
        ("PUT", "/v1/dossiers/{id}", "put"),  # same shape: the first template's names apply
    )
    assert r.lookup("PUT", "/v1/dossiers/7") == ("put", {"code": "7"})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/v1/citizens/lookup", "/v1/citizens/lookup"),
        ("/v1/dossiers/{code}", "/v1/dossiers/{other_name}"),
    ],
)
def test_same_method_on_the_same_path_shape_is_a_conflict_naming_the_first_route(
    first: str, second: str
) -> None:
    r = router(("GET", first, "first-route"))
    with pytest.raises(RouteConflict, match="first-route"):
        r.add("GET", second, "second-route")
    assert r.lookup("GET", first.replace("{code}", "x"))[0] == "first-route"  # unchanged
