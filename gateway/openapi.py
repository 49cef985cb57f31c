"""OpenAPI 3.1 and a readable docs page, generated from the configured routes.

This is what an agency developer reads to integrate: every route with its
path parameters, body schema (the same msgspec Structs that validate it) and
the problem codes it can answer with.
"""

from __future__ import annotations

import html
import re
from typing import Any

import msgspec

from adapters import registry
from gateway import __version__
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
        spec = runtime.derived["openapi"] = _build(runtime.loaded.digest, runtime.routes)
    return spec


def _build(digest: str, routes: list[CompiledRoute]) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": _problem_schema()}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        match = route.config.match
        paths.setdefault(match.path, {})[match.method.lower()] = _operation(route, components)
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
            "content": {"application/json": {"schema": body}},
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
