"""Read, merge and check a whole configuration before anything is applied.

Three passes, each collecting every issue it finds: the YAML itself (syntax,
duplicate keys, missing environment variables), the shape against
``GatewayConfig`` and each adapter's settings, then cross-references (ids
unique, routes pointing at existing clients, upstreams and schemas).
"""

from __future__ import annotations

import glob
import hashlib
import ipaddress
import os
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec

from adapters import registry
from adapters.base import AdapterSettings, ConfiguredNames
from adapters.units import seconds
from gateway.config.model import (
    INCLUDABLE_SECTIONS,
    UPSTREAM_TRAFFIC_KEYS,
    GatewayConfig,
    Service,
    UpstreamTraffic,
    key_hash,
)
from gateway.config.source import Document, SourceIssue, read_yaml
from gateway.problems import vocabulary
from gateway.routing import RouteConflict, Router
from gateway.validation import SchemaNotFound, resolve_schema
from schemas.typecheck import Path, collect_errors, format_path


class ConfigIssue(msgspec.Struct, frozen=True):
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigInvalid(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__(f"{len(issues)} configuration error(s)")
        self.issues = issues


class UpstreamSpec(msgspec.Struct, frozen=True):
    name: str
    type: str
    settings: AdapterSettings
    traffic: UpstreamTraffic = msgspec.field(default_factory=UpstreamTraffic)
    """The gateway's own keys of the entry: circuit breaker, calls in flight."""


class LoadedConfig(msgspec.Struct, frozen=True):
    """A configuration that passed every check, with what it was made from."""

    path: str
    config: GatewayConfig
    upstreams: dict[str, UpstreamSpec]
    files: list[str]
    digest: str
    """SHA-256 of every file read, in order: tells which config a gateway runs."""
    loaded_at: float
    locations: dict[Path, tuple[str, int]]

    def issue(self, path: Path, message: str) -> ConfigIssue:
        """An issue found after loading (e.g. an adapter refusing its settings)."""
        return _Merged({}, self.locations).issue(path, message)


def load_config(path: str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    path = os.path.abspath(path)
    docs = _read_all(path, environ)
    merged = _Merged.of(docs)
    issues = [_from_source(i) for doc in docs for i in doc.issues]
    if any(doc.data is None for doc in docs):
        raise ConfigInvalid(issues)

    issues += [merged.issue(e.path, e.message) for e in collect_errors(merged.data, GatewayConfig)]
    upstreams, upstream_issues = _check_upstreams(merged)
    issues += upstream_issues
    if issues:
        raise ConfigInvalid(_sorted(issues))

    config = msgspec.convert(merged.data, GatewayConfig)
    issues = _check_references(config, merged, upstreams)
    if issues:
        raise ConfigInvalid(_sorted(issues))
    digest = hashlib.sha256()
    for doc in docs:
        with open(doc.file, "rb") as handle:
            digest.update(handle.read())
    return LoadedConfig(
        path=path,
        config=config,
        upstreams=upstreams,
        files=[doc.file for doc in docs],
        digest=digest.hexdigest(),
        loaded_at=time.time(),
        locations=merged.locations,
    )


def _read_all(path: str, environ: Mapping[str, str] | None) -> list[Document]:
    main = read_yaml(path, environ)
    docs = [main]
    if not isinstance(main.data, dict):
        if not main.issues:  # a scalar, a list, or null: nothing to load, and it says why
            main.issues.append(SourceIssue(path, 1, (), "the file must be a mapping of sections"))
        main.data = None
        return docs
    includes = main.data.get("include", [])
    if not isinstance(includes, list):
        return docs  # the shape check reports it
    base = os.path.dirname(path)
    for index, pattern in enumerate(includes):
        if not isinstance(pattern, str):
            continue
        matches = sorted(glob.glob(os.path.join(base, pattern)))
        if not matches:
            file, line = main.locations[("include", index)]
            main.issues.append(
                SourceIssue(file, line, ("include", index), f"{pattern!r} matches no file")
            )
        for match in matches:
            docs.append(_read_included(match, environ))
    return docs


def _read_included(file: str, environ: Mapping[str, str] | None) -> Document:
    doc = read_yaml(file, environ)
    if not isinstance(doc.data, dict):
        if not doc.issues:
            doc.issues.append(SourceIssue(file, 1, (), "an included file must be a mapping"))
        doc.data = None
    sections: dict[str, Any] = doc.data or {}
    for key in list(sections):
        if key not in INCLUDABLE_SECTIONS:
            _, line = doc.locations[(key,)]
            allowed = ", ".join(INCLUDABLE_SECTIONS)
            doc.issues.append(
                SourceIssue(file, line, (key,), f"an included file may only hold: {allowed}")
            )
            del sections[key]
    return doc


class _Merged:
    """The main document with included sections appended, locations re-keyed to match."""

    def __init__(self, data: dict[str, Any], locations: dict[Path, tuple[str, int]]) -> None:
        self.data = data
        self.locations = locations

    @classmethod
    def of(cls, docs: list[Document]) -> _Merged:
        main = docs[0]
        data: dict[str, Any] = dict(main.data) if isinstance(main.data, dict) else {}
        locations = dict(main.locations)
        for doc in docs[1:]:
            for section, value in (doc.data or {}).items():
                cls._merge_section(data, locations, doc, section, value)
        return cls(data, locations)

    @staticmethod
    def _merge_section(
        data: dict[str, Any],
        locations: dict[Path, tuple[str, int]],
        doc: Document,
        section: str,
        value: Any,
    ) -> None:
        current = data.get(section)
        if isinstance(value, list) and isinstance(current, list | None):
            offset = len(current or [])
            data[section] = [*(current or []), *value]
            for path, where in doc.locations.items():
                if len(path) >= 2 and path[0] == section and isinstance(path[1], int):
                    locations[(section, offset + path[1], *path[2:])] = where
        elif isinstance(value, dict) and isinstance(current, dict | None):
            merged = dict(current or {})
            for key, item in value.items():
                if key in merged:
                    _, line = doc.locations[(section, key)]
                    doc.issues.append(
                        SourceIssue(doc.file, line, (section, key), "already defined elsewhere")
                    )
                    continue
                merged[key] = item
                for path, where in doc.locations.items():
                    if path[:2] == (section, key):
                        locations[path] = where
            data[section] = merged
        else:
            _, line = doc.locations[(section,)]
            doc.issues.append(
                SourceIssue(doc.file, line, (section,), "type differs from the main file's section")
            )

    def where(self, path: Path) -> tuple[str, int]:
        for end in range(len(path), -1, -1):
            found = self.locations.get(path[:end])
            if found is not None:
                return found
        return ("", 0)

    def issue(self, path: Path, message: str) -> ConfigIssue:
        file, line = self.where(path)
        return ConfigIssue(file, line, format_path(path, ""), message)


def _check_upstreams(merged: _Merged) -> tuple[dict[str, UpstreamSpec], list[ConfigIssue]]:
    specs: dict[str, UpstreamSpec] = {}
    issues: list[ConfigIssue] = []
    upstreams = merged.data.get("upstreams")
    if not isinstance(upstreams, dict):
        return specs, issues
    for name, raw in upstreams.items():
        if not isinstance(raw, dict):
            continue  # reported by the shape check
        path: Path = ("upstreams", name)
        own = ("type", *UPSTREAM_TRAFFIC_KEYS)
        settings = {k: v for k, v in raw.items() if k not in own}
        traffic = {k: v for k, v in raw.items() if k in UPSTREAM_TRAFFIC_KEYS}
        traffic_errors = collect_errors(traffic, UpstreamTraffic, path)
        issues += [merged.issue(e.path, e.message) for e in traffic_errors]
        type_name = raw.get("type")
        if not isinstance(type_name, str):
            issues.append(merged.issue((*path, "type"), "required: the adapter type, e.g. http"))
            continue
        try:
            factory = registry.get(type_name)
        except registry.UnknownAdapter as exc:
            issues.append(merged.issue((*path, "type"), str(exc)))
            continue
        errors = collect_errors(settings, factory.Settings, path)
        issues += [merged.issue(e.path, e.message) for e in errors]
        if not errors and not traffic_errors:
            converted = msgspec.convert(settings, factory.Settings)
            gateway_side = msgspec.convert(traffic, UpstreamTraffic)
            specs[name] = UpstreamSpec(name, type_name, converted, gateway_side)
    return specs, issues


def _check_references(
    config: GatewayConfig, merged: _Merged, upstreams: dict[str, UpstreamSpec]
) -> list[ConfigIssue]:
    issues = _check_plugins(config, merged)
    issues += _duplicates(merged, "clients", [c.id for c in config.clients], "client id")
    issues += _duplicates(merged, "routes", [r.id for r in config.routes], "route id")
    owners: dict[str, str] = {}
    for i, client in enumerate(config.clients):
        for j, spec in enumerate(client.api_keys):
            other = owners.setdefault(key_hash(spec), client.id)
            if other != client.id:
                issues.append(
                    merged.issue(("clients", i, "api_keys", j), f"same key as client {other!r}")
                )
    issues += _check_identity(config, merged)
    client_ids = {c.id for c in config.clients}
    names = ConfiguredNames(upstreams=config.upstreams.keys(), clients=client_ids)
    for name, upstream in upstreams.items():
        for path, message in upstream.settings.issues(names):
            issues.append(merged.issue(("upstreams", name, *path), message))
    router: Router[str] = Router()
    for i, route in enumerate(config.routes):
        if route.upstream not in config.upstreams:
            issues.append(merged.issue(("routes", i, "upstream"), "no such upstream"))
        for j, allowed in enumerate(route.clients):
            if allowed != "*" and allowed not in client_ids:
                issues.append(merged.issue(("routes", i, "clients", j), "no such client"))
        if route.request is not None:
            try:
                resolve_schema(route.request.schema, os.path.dirname(merged.where(())[0]))
            except SchemaNotFound as exc:
                issues.append(merged.issue(("routes", i, "request", "schema"), str(exc)))
        rule = route.verify_signatures
        if config.trust is None and (rule if isinstance(rule, str) else rule.mode) != "off":
            issues.append(
                merged.issue(
                    ("routes", i, "verify_signatures"),
                    "verifying signatures needs a `trust` section (the anchors to trust)",
                )
            )
        timeout = seconds(route.timeout or config.limits.timeout)
        if route.delivery == "async" and timeout >= seconds(config.delivery.lease):
            issues.append(
                merged.issue(
                    ("routes", i, "timeout"),
                    f"an async route's timeout ({timeout:g}s) must be shorter than "
                    f"delivery.lease ({config.delivery.lease}): a delivery still running when "
                    "its lease expires would be sent a second time",
                )
            )
        reserved = next((p for p in RESERVED_PATHS if _under(route.match.path, p)), None)
        if reserved is not None:
            issues.append(
                merged.issue(("routes", i, "match", "path"), f"{reserved} is the gateway's own")
            )
        try:
            router.add(route.match.method, route.match.path, route.id)
        except RouteConflict as exc:
            issues.append(merged.issue(("routes", i, "match"), str(exc)))
    return issues + _check_services(config, merged)


SHARED_REQUIRES = (
    "description",
    "description_en",
    "owner",
    "classification",
    "fields",
    "legal_basis",
    "sla",
    "contact",
)
"""What a shared service must say (Decree 278/2025/NĐ-CP: a catalogue entry tied to the
data dictionary, its owner, legal basis and service level)."""
RESERVED_SERVICE_IDS = frozenset({"export"})
"""Names under ``/v1/catalogue/`` that are the catalogue's own."""


def _check_services(config: GatewayConfig, merged: _Merged) -> list[ConfigIssue]:
    issues = _duplicates(merged, "services", [s.id for s in config.services], "service id")
    route_ids = {r.id for r in config.routes}
    service_ids = {s.id for s in config.services}
    owner_of: dict[str, str] = {}
    for i, service in enumerate(config.services):
        at: Path = ("services", i)
        if service.id in RESERVED_SERVICE_IDS:
            issues.append(merged.issue((*at, "id"), f"{service.id!r} is the catalogue's own"))
        for j, route in enumerate(service.routes):
            other = owner_of.setdefault(route, service.id)
            if route not in route_ids:
                issues.append(merged.issue((*at, "routes", j), "no such route"))
            elif other != service.id:
                issues.append(merged.issue((*at, "routes", j), f"already in service {other!r}"))
        for j, example in enumerate(service.examples):
            if example.route not in service.routes:
                issues.append(
                    merged.issue((*at, "examples", j, "route"), "not a route of this service")
                )
        if service.successor is not None and (
            service.successor not in service_ids or service.successor == service.id
        ):
            issues.append(merged.issue((*at, "successor"), "no such other service"))
        issues += [merged.issue((*at, *path), message) for path, message in _lifecycle(service)]
        if service.shared:
            issues += [
                merged.issue((*at, name), "required for a shared service (shared: true)")
                for name in SHARED_REQUIRES
                if not getattr(service, name)
            ]
            if service.classification == "confidential":
                issues.append(
                    merged.issue(
                        (*at, "classification"),
                        "confidential data is not shared through the catalogue (shared: false)",
                    )
                )
    return issues


def _check_identity(config: GatewayConfig, merged: _Merged) -> list[ConfigIssue]:
    """Certificate matches name one thing each and no two clients; proxies are addresses;
    the TLS files exist."""
    issues: list[ConfigIssue] = []
    owners: dict[tuple[str, str], str] = {}
    for i, client in enumerate(config.clients):
        for j, match in enumerate(client.certificates):
            path = ("clients", i, "certificates", j)
            given = [(k, v) for k in ("fingerprint", "subject", "san") if (v := getattr(match, k))]
            if len(given) != 1:
                issues.append(merged.issue(path, "give exactly one of fingerprint, subject, san"))
                continue
            other = owners.setdefault(given[0], client.id)
            if other != client.id:
                issues.append(merged.issue(path, f"same certificate as client {other!r}"))
        if client.require_certificate and not client.certificates:
            issues.append(
                merged.issue(
                    ("clients", i, "require_certificate"), "the client has no certificates"
                )
            )
    tls = config.server.tls
    base = os.path.dirname(merged.where(())[0])
    for field in ("certificate", "key", "client_ca") if tls else ():
        name = getattr(tls, field)
        if name is not None and not os.path.isfile(os.path.join(base, name)):
            issues.append(merged.issue(("server", "tls", field), f"no such file: {name}"))
    forwarded = config.identity.forwarded_certificate
    for j, proxy in enumerate(forwarded.trusted_proxies if forwarded else []):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            where = ("identity", "forwarded_certificate", "trusted_proxies", j)
            issues.append(merged.issue(where, f"{proxy!r} is not an address or CIDR block"))
    tokens = config.identity.tokens
    for i, route in enumerate(config.routes):
        if route.scopes and tokens is None:
            issues.append(
                merged.issue(("routes", i, "scopes"), "scopes need `identity.tokens` (an issuer)")
            )
    return issues


def _lifecycle(service: Service) -> list[tuple[Path, str]]:
    """A deprecated service says since when and until when; an active one says neither."""
    if service.state == "active":
        return [
            ((name,), "only a deprecated service has this (state: deprecated)")
            for name in ("deprecated_since", "sunset")
            if getattr(service, name) is not None
        ]
    found: list[tuple[Path, str]] = [
        ((name,), "required for a deprecated service")
        for name in ("deprecated_since", "sunset")
        if getattr(service, name) is None
    ]
    since, sunset = service.deprecated_since, service.sunset
    if since is not None and sunset is not None and sunset <= since:
        found.append((("sunset",), f"must be after deprecated_since ({since})"))
    return found


def _check_plugins(config: GatewayConfig, merged: _Merged) -> list[ConfigIssue]:
    """Installed plugins are part of every config: one that fails to load, or whose error
    codes contradict another's, is reported like any config error."""
    try:
        vocabulary()
        registry.body_schemas()
        systems = registry.mock_systems()
    except registry.PluginError as exc:
        return [merged.issue((), str(exc))]
    known = ", ".join(systems) or "none installed"
    return [
        merged.issue(("mocks", name), f"no mock national system {name!r} (installed: {known})")
        for name in config.mocks
        if name not in systems
    ]


RESERVED_PATHS = ("/health", "/admin", "/schema", "/docs", "/v1/messages", "/v1/catalogue")
"""Paths the gateway serves itself; no configured route may use them."""


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _duplicates(merged: _Merged, section: str, ids: list[str], what: str) -> list[ConfigIssue]:
    counts = Counter(ids)
    seen: set[str] = set()
    issues = []
    for index, value in enumerate(ids):
        if counts[value] > 1 and value in seen:
            issues.append(merged.issue((section, index, "id"), f"duplicate {what} {value!r}"))
        seen.add(value)
    return issues


def _from_source(issue: SourceIssue) -> ConfigIssue:
    return ConfigIssue(issue.file, issue.line, format_path(issue.path, ""), issue.message)


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda i: (i.file, i.line, i.path))
