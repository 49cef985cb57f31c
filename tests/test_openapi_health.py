"""What an agency developer and an operator read: OpenAPI, the docs page, health."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from gateway.config.loader import load_config
from tests.support.config import ADMIN_KEY, DEFAULT_CONFIG


def resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def test_openapi_describes_every_route(default_client: TestClient) -> None:  # type: ignore[type-arg]
    spec = default_client.get("/schema/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    lookup = spec["paths"]["/v1/population/citizens/lookup"]["post"]
    assert lookup["operationId"] == "population-citizen-lookup"
    body = lookup["requestBody"]["content"]["application/json"]["schema"]
    schema = resolve(spec, body["$ref"])
    assert schema["required"] == ["so_dinh_danh"]
    assert schema["properties"]["so_dinh_danh"]["pattern"].startswith("^(001|002|004")
    assert set(lookup["responses"]) >= {"200", "401", "403", "413", "422", "502", "504"}
    problem = lookup["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert "schema_invalid" in resolve(spec, problem["$ref"])["properties"]["code"]["enum"]
    dossier = spec["paths"]["/v1/dvcqg/dossiers/{ma_ho_so}"]["get"]
    assert dossier["parameters"][0] == {
        "name": "ma_ho_so",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    document = spec["paths"]["/v1/documents"]["post"]["requestBody"]["content"]
    assert "application/xml" in document
    # Every $ref in the document resolves.
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert refs
    for ref in refs:
        resolve(spec, ref)


def test_every_json_body_has_an_example(default_client: TestClient) -> None:  # type: ignore[type-arg]
    spec = default_client.get("/schema/openapi.json").json()
    lookup = spec["paths"]["/v1/population/citizens/lookup"]["post"]["requestBody"]
    assert lookup["content"]["application/json"]["example"] == {"so_dinh_danh": "001203012345"}
    for methods in spec["paths"].values():
        for operation in methods.values():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                assert isinstance(content["application/json"]["example"], dict)


def test_explorer_is_served_from_the_gateway(default_client: TestClient) -> None:  # type: ignore[type-arg]
    page = default_client.get("/schema").text
    assert "https://" not in page and "http://" not in page  # no CDN: closed networks
    for asset in ("/schema/swagger-ui.css", "/schema/swagger-ui-bundle.js", "/schema/explorer.js"):
        assert asset in page
        answer = default_client.get(asset)
        assert answer.status_code == 200, asset
    assert "SwaggerUIBundle" in default_client.get("/schema/swagger-ui-bundle.js").text


def test_docs_page_lists_routes(default_client: TestClient) -> None:  # type: ignore[type-arg]
    page = default_client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "POST /v1/population/citizens/lookup" in page.text
    assert "Tra cứu thông tin công dân" in page.text
    assert "<script" not in page.text


def test_health(default_client: TestClient) -> None:  # type: ignore[type-arg]
    assert default_client.get("/health/live").json()["status"] == "live"
    assert default_client.get("/health/ready").json() == {"status": "ready"}
    ready = default_client.get("/health/ready", headers={"X-API-Key": ADMIN_KEY}).json()
    assert ready["status"] == "ready"
    config = load_config(str(DEFAULT_CONFIG)).config
    assert ready["config"]["routes"] == len(config.routes)
    assert set(ready["upstreams"]) == set(config.upstreams)
    assert ready["upstreams"]["population"]["state"] in ("up", "unknown")
