"""A loaded config compiled for serving, and the holder that swaps it on reload.

``Runtime`` is immutable once built: requests take a reference to the current
one and keep it until they finish, so a reload never changes a request midway.
``RuntimeHolder.reload()`` builds a complete new runtime first and swaps one
reference; the old one retires once its in-flight requests are done.
Adapters of upstreams whose settings did not change are carried over, so
their connection pools stay warm.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

import msgspec

from adapters import registry
from adapters.base import Adapter, AdapterContext
from adapters.logs import get_logger
from adapters.units import seconds, size_bytes
from gateway.auth import KeyRing
from gateway.config.loader import (
    ConfigInvalid,
    ConfigIssue,
    LoadedConfig,
    UpstreamSpec,
    load_config,
)
from gateway.config.model import Client, Route
from gateway.routing import Router
from gateway.signatures.policy import SignaturePolicy
from gateway.signatures.revocation import RevocationChecker
from gateway.signatures.trust import TrustStore
from gateway.validation import SCHEMAS_DIR, BodySchema, resolve_schema

if TYPE_CHECKING:
    from gateway.services import Services

START_ONLY_SECTIONS = ("server", "storage", "message_log", "delivery", "idempotency", "mocks")
"""Settings of the process, not of routing: a reload cannot change them."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETIRE_GRACE_SECONDS = 60.0

log = get_logger(__name__)


class Retry(msgspec.Struct, frozen=True):
    attempts: int
    on: frozenset[str]
    backoff: float
    max_backoff: float
    attempt_timeout: float | None


class CompiledRoute(msgspec.Struct, frozen=True):
    config: Route
    adapter: Adapter
    schema: BodySchema | None
    timeout: float
    max_body_size: int
    retry: Retry
    idempotent: bool
    signatures: SignaturePolicy | None
    """The route's signature policy; None when it does not verify."""
    clients: frozenset[str]
    """Allowed client ids; empty means every client (``"*"``)."""

    @property
    def id(self) -> str:
        return self.config.id

    def allows(self, client_id: str) -> bool:
        return not self.clients or client_id in self.clients


class Runtime:
    def __init__(
        self,
        loaded: LoadedConfig,
        adapters: dict[str, Adapter],
        routes: list[CompiledRoute],
        trust: Trust | None = None,
    ) -> None:
        config = loaded.config
        self.loaded = loaded
        self.adapters = adapters
        self.trust = trust
        """Trust store and revocation checker, when the config has a ``trust`` section."""
        self.routes = routes
        self.router: Router[CompiledRoute] = Router()
        for route in routes:
            self.router.add(route.config.match.method, route.config.match.path, route)
        self.clients: KeyRing[Client] = KeyRing(
            (key, client) for client in config.clients if client.enabled for key in client.api_keys
        )
        self.admin: KeyRing[str] = KeyRing((key, "admin") for key in config.admin.api_keys)
        self.inflight = 0
        self._by_id = {route.id: route for route in routes}
        self.derived: dict[str, Any] = {}
        """Artefacts computed from this config on first use (e.g. the OpenAPI document)."""

    def delivery_target(self, route_id: str, upstream: str) -> tuple[Adapter, float] | None:
        """Where a queued message of ``route_id`` goes now: its adapter and timeout."""
        adapter = self.adapters.get(upstream)
        if adapter is None:
            return None
        route = self._by_id.get(route_id)
        timeout = route.timeout if route else seconds(self.loaded.config.limits.timeout)
        return adapter, timeout

    async def retire(self, successor: Runtime) -> None:
        """Close adapters not carried into ``successor``, after in-flight requests end."""
        deadline = time.monotonic() + RETIRE_GRACE_SECONDS
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        carried = {id(adapter) for adapter in successor.adapters.values()}
        for name, adapter in self.adapters.items():
            if id(adapter) not in carried:
                await _close(name, adapter)
        if self.trust is not None and self.trust is not successor.trust:
            await self.trust.revocation.aclose()

    async def close(self) -> None:
        for name, adapter in self.adapters.items():
            await _close(name, adapter)
        if self.trust is not None:
            await self.trust.revocation.aclose()


async def _close(name: str, adapter: Adapter) -> None:
    try:
        await adapter.aclose()
    except Exception:
        log.exception("adapter_close_failed", upstream=name)


def build_runtime(loaded: LoadedConfig, previous: Runtime | None = None) -> Runtime:
    """Compile routes and build adapters. ``ConfigInvalid`` if an adapter refuses its settings."""
    config = loaded.config
    config_dir = os.path.dirname(loaded.path)
    context = AdapterContext(config_dir=config_dir, schemas_dir=SCHEMAS_DIR)
    adapters: dict[str, Adapter] = {}
    issues: list[ConfigIssue] = []
    for name, spec in loaded.upstreams.items():
        reused = _reusable(previous, name, spec)
        if reused is not None:
            adapters[name] = reused
            continue
        try:
            adapters[name] = registry.get(spec.type)(name, spec.settings, context)
        except (OSError, ValueError) as exc:
            issues.append(loaded.issue(("upstreams", name), f"cannot start: {exc}"))
    trust = _trust(loaded, previous, config_dir, issues)
    if issues:
        raise ConfigInvalid(issues)
    limits = config.limits
    routes = [
        _compile(route, adapters[route.upstream], config_dir, limits.timeout, limits.max_body_size)
        for route in config.routes
    ]
    return Runtime(loaded, adapters, routes, trust)


class Trust(msgspec.Struct):
    store: TrustStore
    revocation: RevocationChecker
    """Shared by every request of a runtime; its OCSP/CRL cache survives reloads that keep trust."""


def _trust(
    loaded: LoadedConfig, previous: Runtime | None, config_dir: str, issues: list[ConfigIssue]
) -> Trust | None:
    settings = loaded.config.trust
    if settings is None:
        return None
    if previous is not None and previous.trust and previous.loaded.config.trust == settings:
        return previous.trust
    try:
        store = TrustStore.load(settings, base_dir=config_dir)
    except OSError as exc:
        issues.append(loaded.issue(("trust", "anchors"), f"cannot read: {exc}"))
        return None
    for problem in store.problems:
        log.warning("trust_store_problem", problem=problem)
    return Trust(store, RevocationChecker(settings))


def _reusable(previous: Runtime | None, name: str, spec: UpstreamSpec) -> Adapter | None:
    if previous is None or previous.loaded.upstreams.get(name) != spec:
        return None
    return previous.adapters.get(name)


def _compile(
    route: Route, adapter: Adapter, config_dir: str, timeout: str, max_body: str
) -> CompiledRoute:
    retry = route.retry
    return CompiledRoute(
        config=route,
        adapter=adapter,
        schema=resolve_schema(route.request.schema, config_dir) if route.request else None,
        timeout=seconds(route.timeout or timeout),
        max_body_size=size_bytes(route.max_body_size or max_body),
        retry=Retry(
            attempts=retry.attempts if retry else 1,
            on=frozenset(retry.on if retry else ()),
            backoff=seconds(retry.backoff) if retry else 0.0,
            max_backoff=seconds(retry.max_backoff) if retry else 0.0,
            attempt_timeout=seconds(retry.attempt_timeout)
            if retry and retry.attempt_timeout
            else None,
        ),
        idempotent=route.idempotent
        if route.idempotent is not None
        else route.match.method in IDEMPOTENT_METHODS,
        signatures=_signature_policy(route),
        clients=frozenset() if "*" in route.clients else frozenset(route.clients),
    )


def _signature_policy(route: Route) -> SignaturePolicy | None:
    rule = route.verify_signatures
    policy = rule if isinstance(rule, SignaturePolicy) else SignaturePolicy(mode=rule)
    return None if policy.mode == "off" else policy


class ReloadResult(msgspec.Struct):
    ok: bool
    digest: str
    issues: list[ConfigIssue] = []


class RuntimeHolder:
    """Owns the current runtime; ``reload()`` is serialized and all-or-nothing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._current: Runtime | None = None
        self.services: Services | None = None
        """Process-level: the store and what works on it (set by the app at startup)."""
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[Any]] = set()

    @property
    def current(self) -> Runtime:
        if self._current is None:
            raise RuntimeError("gateway runtime not started")
        return self._current

    @property
    def started(self) -> bool:
        return self._current is not None

    def start(self, loaded: LoadedConfig | None = None) -> None:
        self._current = build_runtime(loaded or load_config(self.path))

    async def reload(self) -> ReloadResult:
        async with self._lock:
            old = self.current
            try:
                loaded = load_config(self.path)
                new = build_runtime(loaded, previous=old)
            except ConfigInvalid as exc:
                log.error(
                    "config_reload_rejected",
                    config=self.path,
                    errors=[str(i) for i in exc.issues],
                    kept=old.loaded.digest[:12],
                )
                return ReloadResult(ok=False, digest=old.loaded.digest, issues=exc.issues)
            try:
                await self._start_hosted(new.adapters, already=old.adapters)
            except Exception as exc:
                log.exception("config_reload_rejected", config=self.path)
                await new.retire(successor=old)  # closes what was built for it alone
                issue = loaded.issue(("upstreams",), f"an adapter could not start: {exc}")
                return ReloadResult(ok=False, digest=old.loaded.digest, issues=[issue])
            self._current = new
            fixed = [
                name
                for name in START_ONLY_SECTIONS
                if getattr(old.loaded.config, name) != getattr(loaded.config, name)
            ]
            if fixed:
                log.warning("restart_needed", sections=fixed, reason="read only at start")
            task = asyncio.create_task(old.retire(successor=new))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            log.info("config_reloaded", config=self.path, digest=loaded.digest[:12])
            return ReloadResult(ok=True, digest=loaded.digest)

    async def start_hosted(self) -> None:
        """Start the current runtime's hosted adapters (once the services exist)."""
        await self._start_hosted(self.current.adapters)

    async def _start_hosted(
        self, adapters: dict[str, Adapter], already: dict[str, Adapter] | None = None
    ) -> None:
        from gateway.hosting import start_hosted

        assert self.services is not None, "services start before adapters are hosted"
        await start_hosted(adapters, self.services, lambda: self.current, already)

    async def close(self) -> None:
        for task in list(self._retiring):
            await task
        if self._current is not None:
            await self._current.close()
            self._current = None
