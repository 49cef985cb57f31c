"""OpenAPI 3.1, an interactive explorer and a plain docs page, from the configured routes.

This is what an agency developer reads to integrate: every route with its
path parameters, body schema (the same msgspec Structs that validate it), an
example body (from the schema's own examples) and, for canned-answer
upstreams, an example answer, and the problem codes it can answer with.

``/schema`` is Swagger UI, served from the ``swagger-ui-bundle-v2`` package
(no CDN: a provincial network may be closed), with "try it out" against this
gateway using an API key; ``/docs`` is the same description as plain HTML,
no script at all.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, Router, get

from adapters import registry
from adapters.stub import StubSettings
from gateway import __version__
from gateway.config.loader import UpstreamSpec
from gateway.config.model import Service
from gateway.exchange import REQUEST_ID_PATTERN
from gateway.problems import ERROR_SOURCE_HEADER, vocabulary
from gateway.runtime import CompiledRoute, Runtime
from gateway.validation import JsonBody

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# What any route may answer: refusals at the edge, identity, traffic control (a client's
# own rate limits apply on every route), admission, the message log.
_ALWAYS = (
    "duplicate_header",
    "path_invalid",
    "unauthenticated",
    "token_invalid",
    "token_expired",
    "forbidden",
    "rate_limited",
    "request_timeout",
    "overloaded",
    "upstream_circuit_open",
    "log_unavailable",
    "internal_error",
)
_WITH_BODY = ("payload_too_large", "unsupported_media_type", "malformed_body", "schema_invalid")
_POST = (
    "malformed_body",  # an Idempotency-Key too long
    "idempotency_conflict",
    "idempotency_in_progress",
    "idempotency_not_replayable",
)

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable and safe to branch on.",
    "required": ["type", "status", "title", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "upstream_status": {"type": "integer"},
    },
}


def _problem_schema() -> dict[str, Any]:
    """The problem document, its ``code`` listing every code of the gateway and its plugins."""
    code = {"type": "string", "enum": sorted(vocabulary())}
    properties = {**PROBLEM_SCHEMA["properties"], "code": code}
    return {**PROBLEM_SCHEMA, "properties": properties}


def openapi(runtime: Runtime) -> dict[str, Any]:
    """Built once per runtime: a reload brings a new runtime and so a new document."""
    spec: dict[str, Any] | None = runtime.derived.get("openapi")
    if spec is None:
        spec = runtime.derived["openapi"] = _build(
            runtime.loaded.digest, runtime.routes, runtime.loaded.upstreams
        )
    return spec


def _build(
    digest: str, routes: list[CompiledRoute], upstreams: dict[str, UpstreamSpec]
) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": _problem_schema()}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        match = route.config.match
        operation = _operation(route, components)
        answer = _canned_answer(route, upstreams.get(route.config.upstream))
        if answer is not None:
            operation["responses"]["200"]["content"] = {"application/json": {"example": answer}}
        paths.setdefault(match.path, {})[match.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LGSP gateway",
            "version": __version__,
            "description": f"Routes of configuration {digest[:12]}. Authenticate with X-API-Key.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{"apiKey": []}],
    }


def _operation(route: CompiledRoute, components: dict[str, Any]) -> dict[str, Any]:
    config = route.config
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(config.match.path)
    ]
    parameters.append(
        {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "description": "Your id for this request, echoed back in X-Request-ID. Absent, "
            "sent twice or not matching the pattern: the gateway makes one; holding an ID "
            "number: masked. Either way the answer says so in X-Request-ID-Replaced "
            "(`invalid`, `masked`).",
            "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
        }
    )
    codes = [*_ALWAYS, *registry.error_codes()]  # whatever the adapter may raise
    if config.match.method == "POST":
        codes += _POST
    if route.signatures is not None:
        codes.append("signature_invalid")
    if route.scopes:
        codes.append("insufficient_scope")
    operation: dict[str, Any] = {
        "operationId": config.id,
        "summary": config.summary or config.id,
        "description": config.description,
        "tags": config.tags or [config.upstream],
        "parameters": parameters,
        "x-lgsp-upstream": config.upstream,
    }
    schema = route.schema
    if isinstance(schema, JsonBody):
        body, found = schema.json_schema()
        components.update(found)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body, "example": example(body, components)}},
        }
        codes += _WITH_BODY
    elif schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/xml": {
                    "schema": {"type": "string", "description": f"validated against {schema.name}"}
                }
            },
        }
        codes += (*_WITH_BODY, "xml_forbidden")
    operation["responses"] = {"200": {"description": "The upstream's answer, passed through."}}
    if config.delivery == "async":
        operation["responses"]["202"] = {"description": "Queued for delivery (X-LGSP-Message-ID)."}
        codes.append("storage_unavailable")
    known = vocabulary()
    for status in sorted({known[c].status for c in codes}):
        names = ", ".join(sorted(c for c in codes if known[c].status == status))
        operation["responses"][str(status)] = {
            "description": f"Problem: {names}",
            "headers": {
                ERROR_SOURCE_HEADER: {
                    "description": "gateway or upstream: who failed",
                    "schema": {"type": "string"},
                }
            },
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    return operation


def example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A value of ``schema``, built from its own ``examples`` (then defaults, enums, formats).

    Objects get their required properties and those that have an example, so
    the example is what a minimal valid call looks like.
    """
    if depth > 8:
        return None
    if "$ref" in schema:
        return example(components[schema["$ref"].rsplit("/", 1)[1]], components, depth + 1)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return example(options[0], components, depth + 1)
    kind = schema.get("type")
    if kind == "object":
        required = set(schema.get("required", ()))
        properties = schema.get("properties", {})
        return {
            name: example(sub, components, depth + 1)
            for name, sub in properties.items()
            if name in required or "examples" in sub
        }
    if kind == "array":
        return [example(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return _FORMAT_EXAMPLES.get(schema.get("format", ""), "string")


_FORMAT_EXAMPLES = {"date": "2026-11-22", "date-time": "2026-11-22T08:00:00+07:00"}


def _canned_answer(route: CompiledRoute, upstream: UpstreamSpec | None) -> Any:
    """What a ``stub`` upstream answers this route's operation with, as the 200 example."""
    if upstream is None or not isinstance(upstream.settings, StubSettings):
        return None
    operation = upstream.settings.operations.get(route.config.operation)
    if operation is None or operation.reply.body is None:
        return None
    return operation.reply.body


# --- the explorer: Swagger UI from its Python package ---------------------------------

EXPLORER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>LGSP gateway API</title>
<link rel="stylesheet" href="/schema/swagger-ui.css">
</head>
<body>
<noscript>This explorer needs JavaScript; <a href="/docs">the same API as plain HTML</a>.</noscript>
<div id="swagger-ui"></div>
<script src="/schema/swagger-ui-bundle.js"></script>
<script src="/schema/explorer.js"></script>
</body>
</html>
"""

EXPLORER_SCRIPT = b"""// Swagger UI on this gateway's description; "Authorize" takes the API key.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""

_ASSET_TYPES = {".css": "text/css", ".js": "text/javascript"}


@cache
def _asset(name: str) -> bytes:
    import swagger_ui_bundle  # the package ships Swagger UI's built files

    return (Path(swagger_ui_bundle.swagger_ui_path) / name).read_bytes()


@get("/", media_type="text/html")
async def explorer() -> str:
    return EXPLORER_PAGE


@get(["/swagger-ui.css", "/swagger-ui-bundle.js", "/explorer.js"])
async def explorer_asset(request: Request[Any, Any, Any]) -> Response[bytes]:
    name = request.url.path.rsplit("/", 1)[1]
    content = EXPLORER_SCRIPT if name == "explorer.js" else _asset(name)
    return Response(
        content,
        media_type=_ASSET_TYPES[Path(name).suffix],
        headers={"cache-control": "public, max-age=86400"},
    )


explorer_router = Router(path="/schema", route_handlers=[explorer, explorer_asset])
"""``/schema`` and its assets; ``/schema/openapi.json`` and ``/docs`` are served beside them."""


def fragment(runtime: Runtime, route_ids: list[str]) -> dict[str, Any]:
    """The document cut to some routes (a catalogue service's), components kept whole."""
    spec = openapi(runtime)
    wanted = set(route_ids)
    paths: dict[str, dict[str, Any]] = {}
    for route in runtime.routes:
        if route.id in wanted:
            path, method = route.config.match.path, route.config.match.method.lower()
            paths.setdefault(path, {})[method] = spec["paths"][path][method]
    return {**spec, "paths": paths}


def _route_html(route: CompiledRoute, spec: dict[str, Any]) -> str:
    config = route.config
    clients = ", ".join(sorted(route.clients)) or "every client"
    body = spec["paths"][config.match.path][config.match.method.lower()].get("requestBody")
    schema_html = ""
    if body is not None:
        schema_html = (
            "<pre>"
            + html.escape(
                msgspec.json.format(msgspec.json.encode(body["content"]), indent=2).decode()
            )
            + "</pre>"
        )
    return (
        f"<section><h3><code>{config.match.method} {html.escape(config.match.path)}</code></h3>"
        f"<p><b>{html.escape(config.summary or config.id)}</b> "
        f"(route <code>{config.id}</code>, upstream <code>{config.upstream}</code>)</p>"
        f"<p>{html.escape(config.description)}</p><p>Clients: {html.escape(clients)}</p>"
        f"{schema_html}</section>"
    )


def _service_html(service: Service) -> str:
    """A catalogue entry's metadata, above its routes."""
    e = html.escape
    facts = [("Service", f"<code>{e(service.id)}</code> version {e(service.version)}")]
    if service.owner is not None:
        facts.append(("Owner", f"{e(service.owner.name)} ({e(service.owner.organ_id)})"))
    if service.classification is not None:
        facts.append(("Classification", e(service.classification)))
    if service.legal_basis:
        laws = "; ".join(
            " ".join(filter(None, (b.document, b.article))) for b in service.legal_basis
        )
        facts.append(("Legal basis", e(laws)))
    if service.sla is not None:
        level = (
            f"{service.sla.availability:g}% available, answers within {service.sla.response_time}"
        )
        facts.append(("Service level", e(f"{level}, {service.sla.hours}")))
    if service.contact is not None:
        who = ", ".join(
            filter(None, (service.contact.name, service.contact.email, service.contact.phone))
        )
        facts.append(("Contact", e(who)))
    if service.state == "deprecated":
        facts.append(
            (
                "State",
                f"<b>deprecated</b> since {service.deprecated_since}, sunset {service.sunset}",
            )
        )
    fields = "".join(
        f"<tr><td><code>{e(f.name)}</code></td><td>{e(f.meaning)}</td>"
        f"<td>{e(f.dictionary_code or '')}</td></tr>"
        for f in service.fields
    )
    return (
        f"<h2>{e(service.name)}</h2><p>{e(service.name_en)}</p>"
        f"<p>{e(service.description)}</p><p><i>{e(service.description_en)}</i></p><dl>"
        + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
        + "</dl>"
        + (
            "<table><tr><th>field</th><th>meaning</th><th>dictionary code</th></tr>"
            f"{fields}</table>"
            if fields
            else ""
        )
    )


def docs_page(runtime: Runtime) -> str:
    """A self-contained HTML page: no script, no CDN, works on a closed network. Routes are
    grouped by catalogue service, each with its metadata; the rest come last."""
    spec = openapi(runtime)
    by_id = {route.id: route for route in runtime.routes}
    rows = []
    grouped: set[str] = set()
    for service in runtime.loaded.config.services:
        rows.append(_service_html(service))
        rows += [_route_html(by_id[route], spec) for route in service.routes]
        grouped.update(service.routes)
    others = [route for route in runtime.routes if route.id not in grouped]
    if others and grouped:
        rows.append("<h2>Other routes</h2>")
    rows += [_route_html(route, spec) for route in others]
    codes = "".join(
        f"<tr><td><code>{e.code}</code></td><td>{e.status}</td><td>{html.escape(e.title)}</td></tr>"
        for e in sorted(vocabulary().values(), key=lambda e: e.code)
    )
    return (
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>LGSP gateway API</title>"
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}"
        "pre{background:#f4f4f4;padding:.5rem;overflow:auto}</style>"
        "<h1>LGSP gateway API</h1><p>Send <code>X-API-Key</code> on every call. "
        "Machine-readable: <a href='/schema/openapi.json'>openapi.json</a>; the service "
        "catalogue, and how to ask for access: <code>GET /v1/catalogue</code>.</p>"
        + "".join(rows)
        + "<h2>Error codes</h2><table><tr><th>code</th><th>status</th><th>title</th></tr>"
        + codes
        + "</table></html>"
    )
