"""``/v1/catalogue``: what services exist and how to get access, for any authenticated client.

Served by the data plane (``gateway.pipeline`` hands these paths here): litestar lets the
``/`` mount shadow fixed routes with path parameters, and the service is one.

    GET  /v1/catalogue                             services, their metadata, the caller's access
    GET  /v1/catalogue/export                      every shared service, for the national catalogue
    GET  /v1/catalogue/{service}                   one service, its OpenAPI fragment and examples
    GET  /v1/catalogue/{service}/access-requests   the caller's requests and their decisions
    POST /v1/catalogue/{service}/access-requests   ask for access
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from adapters.bodies import BodyInvalid
from gateway import __version__, openapi
from gateway.catalogue.access import AccessAgreements, AccessRequestBody, Filter, iso
from gateway.catalogue.index import CATALOGUE_PATH, catalogue_of, describe
from gateway.config.model import Service
from gateway.problems import Problem
from gateway.runtime import Runtime
from gateway.validation import JsonBody, body_problem

Answer = tuple[int, dict[str, str], bytes, str]
JSON = "application/json"
MAX_BODY = 64 * 1024
"""An access request is a few sentences."""
EXPORT_FORMAT = "lgsp-gateway-catalogue/1"
_REQUEST_BODY = JsonBody("AccessRequestBody", AccessRequestBody)


class CatalogueCall(msgspec.Struct, kw_only=True):
    runtime: Runtime
    access: AccessAgreements
    client: str
    method: str
    path: str
    request_id: str
    read_body: Callable[[], Awaitable[bytes]]


async def serve(call: CatalogueCall) -> Answer:
    rest = call.path.removeprefix(CATALOGUE_PATH).strip("/")
    parts = rest.split("/") if rest else []
    if not parts:
        _only(call, "GET")
        return _json(200, {"services": await _entries(call)})
    if parts == ["export"]:
        _only(call, "GET")
        headers = {"content-disposition": 'attachment; filename="catalogue.json"'}
        return 200, headers, msgspec.json.encode(export(call.runtime)), JSON
    service = catalogue_of(call.runtime).service(parts[0])
    if service is None:
        raise Problem("not_found", f"no service {parts[0]!r} in the catalogue")
    if len(parts) == 1:
        _only(call, "GET")
        return _json(200, await _detail(call, service))
    if parts[1:] == ["access-requests"]:
        if call.method == "POST":
            return _json(201, await _ask(call, service))
        _only(call, "GET", "POST")
        mine = await call.access.list(Filter(client=call.client, service=service.id))
        return _json(200, {"items": mine})
    raise Problem("route_not_found", f"no route serves {call.path}")


def _only(call: CatalogueCall, *methods: str) -> None:
    if call.method not in methods:
        allowed = ", ".join(methods)
        raise Problem(
            "method_not_allowed", f"{call.path} accepts {allowed}", headers={"allow": allowed}
        )


def _json(status: int, document: Any) -> Answer:
    return status, {}, msgspec.json.encode(document), JSON


def configured(runtime: Runtime, service: Service, client: str) -> bool:
    """Does the YAML (``routes[].clients``) let ``client`` call every route of ``service``?"""
    routes = {route.id: route for route in runtime.routes}
    return all(routes[route].allows(client) for route in service.routes)


async def _access(
    call: CatalogueCall, service: Service, latest: dict[str, Any] | None
) -> dict[str, Any]:
    grant = await call.access.grants.grant(call.client, service.id)
    if configured(call.runtime, service, call.client):
        via: str | None = "configuration"
    else:
        via = "agreement" if grant is not None else None
    return {
        "granted": via is not None,
        "via": via,
        "expires_at": None if grant is None or grant.expires_at is None else iso(grant.expires_at),
        "rate_limit": None if grant is None else grant.rate_limit,
        "latest_request": latest,
    }


async def _entries(call: CatalogueCall) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for request in await call.access.list(Filter(client=call.client)):  # newest first
        latest.setdefault(request["service"], request)
    return [
        {
            **describe(service, call.runtime),
            "access": await _access(call, service, latest.get(service.id)),
        }
        for service in catalogue_of(call.runtime).services.values()
    ]


async def _detail(call: CatalogueCall, service: Service) -> dict[str, Any]:
    mine = await call.access.list(Filter(client=call.client, service=service.id))
    return {
        **describe(service, call.runtime),
        "access": await _access(call, service, mine[0] if mine else None),
        "access_requests": mine,
        "examples": msgspec.to_builtins(service.examples),
        "openapi": openapi.fragment(call.runtime, service.routes),
    }


def export(runtime: Runtime) -> dict[str, Any]:
    """The shared services with their interfaces, caller-independent, for the national
    catalogue."""
    return {
        "format": EXPORT_FORMAT,
        "generated_at": iso(time.time()),
        "gateway_version": __version__,
        "config_digest": runtime.loaded.digest,
        "services": [
            {**describe(service, runtime), "openapi": openapi.fragment(runtime, service.routes)}
            for service in catalogue_of(runtime).services.values()
            if service.shared
        ],
    }


async def _ask(call: CatalogueCall, service: Service) -> dict[str, Any]:
    if configured(call.runtime, service, call.client):
        raise Problem(
            "access_request_conflict",
            f"{call.client} already has access to {service.id} through the configuration",
        )
    raw = await call.read_body()
    try:
        data = _REQUEST_BODY.validate(raw)
    except BodyInvalid as exc:
        raise body_problem(exc) from None
    body = msgspec.convert(data, AccessRequestBody)
    return await call.access.request(call.client, service.id, body, call.request_id)
