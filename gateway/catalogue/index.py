"""The catalogue of one configuration: services by id, the service of each route, and the
lifecycle headers its routes answer with. Built once per runtime (``catalogue_of``)."""

from __future__ import annotations

import calendar
import datetime as dt
from email.utils import formatdate
from typing import Any

import msgspec

from gateway.config.model import Service
from gateway.runtime import Runtime

CATALOGUE_PATH = "/v1/catalogue"


class Catalogue:
    def __init__(self, services: list[Service]) -> None:
        self.services = {service.id: service for service in services}
        self.service_of_route = {route: s.id for s in services for route in s.routes}
        self.route_headers: dict[str, dict[str, str]] = {}
        """Route id -> ``Deprecation``, ``Sunset`` and ``Link`` of its deprecated service."""
        for service in services:
            headers = lifecycle_headers(service)
            if headers:
                for route in service.routes:
                    self.route_headers[route] = headers

    def service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)


def catalogue_of(runtime: Runtime) -> Catalogue:
    catalogue = runtime.derived.get("catalogue")
    if catalogue is None:
        catalogue = runtime.derived["catalogue"] = Catalogue(runtime.loaded.config.services)
    assert isinstance(catalogue, Catalogue)
    return catalogue


def _midnight(day: dt.date) -> int:
    """The day's start in Vietnam (UTC+07:00), as Unix seconds."""
    return calendar.timegm(day.timetuple()) - 7 * 3600


def lifecycle_headers(service: Service) -> dict[str, str]:
    """RFC 9745 ``Deprecation: @<seconds>``, RFC 8594 ``Sunset: <HTTP-date>``, and a link to the
    catalogue entry (and to the successor, if any); nothing for an active service."""
    if service.state != "deprecated" or service.deprecated_since is None or service.sunset is None:
        return {}
    links = [f'<{CATALOGUE_PATH}/{service.id}>; rel="deprecation"; type="application/json"']
    if service.successor is not None:
        links.append(f'<{CATALOGUE_PATH}/{service.successor}>; rel="successor-version"')
    return {
        "deprecation": f"@{_midnight(service.deprecated_since)}",
        "sunset": formatdate(_midnight(service.sunset), usegmt=True),
        "link": ", ".join(links),
    }


def describe(service: Service, runtime: Runtime) -> dict[str, Any]:
    """The service's metadata as the catalogue shows and exports it."""
    entry: dict[str, Any] = msgspec.to_builtins(service)
    entry.pop("examples", None)
    by_id = {route.id: route for route in runtime.routes}
    entry["routes"] = [
        {
            "id": route_id,
            "method": by_id[route_id].config.match.method,
            "path": by_id[route_id].config.match.path,
            "summary": by_id[route_id].config.summary,
        }
        for route_id in service.routes
    ]
    return entry
