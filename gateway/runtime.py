"""A loaded config compiled for serving.

``Runtime`` is immutable once built: requests take a reference to the current
one and keep it until they finish, so a reload never changes a request midway
(``gateway.reloading`` swaps them). Adapters of upstreams whose settings did
not change are carried over from the previous runtime, so their connection
pools stay warm.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

import msgspec

from adapters import registry
from adapters.base import Adapter, AdapterContext
from adapters.bodies import BodySchema, media_type
from adapters.logs import get_logger
from adapters.units import seconds, size_bytes
from gateway.config.loader import (
    ConfigInvalid,
    ConfigIssue,
    LoadedConfig,
    UpstreamSpec,
)
from gateway.config.model import Route
from gateway.identity import Identity
from gateway.routing import Router
from gateway.signatures.policy import SignaturePolicy, TrustSettings, too_large
from gateway.signatures.revocation import RevocationChecker
from gateway.signatures.trust import TrustStore
from gateway.traffic.breaker import Breaker, breakers
from gateway.traffic.ratelimit import Counters, Plan
from gateway.validation import SCHEMAS_DIR, resolve_schema

if TYPE_CHECKING:
    from gateway.signatures.result import VerificationResult

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
    breaker: Breaker
    """The upstream's circuit breaker and cap on calls in flight."""
    scopes: frozenset[str]
    """Scopes a bearer token must carry for this route."""

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
        *,
        identity: Identity,
        breakers: dict[str, Breaker],
        counters: Counters,
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
        self.identity = identity
        self.breakers = breakers
        plan = Plan(config)
        self.limits: Plan | None = plan if plan else None
        """Rate limits by route and client; None when the config sets none (the common case)."""
        self.counters = counters
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
    identity = None
    try:
        identity = Identity(config, config_dir, previous.identity if previous else None)
    except (OSError, ValueError) as exc:  # a JWKS file missing or unreadable
        issues.append(loaded.issue(("identity", "tokens", "jwks"), f"cannot read: {exc}"))
    if issues or identity is None:
        raise ConfigInvalid(issues)
    upstream_breakers = breakers(
        {name: spec.traffic for name, spec in loaded.upstreams.items()},
        previous.breakers if previous else None,
    )
    limits = config.limits
    routes = [
        _compile(
            route,
            adapters[route.upstream],
            upstream_breakers[route.upstream],
            config_dir,
            limits.timeout,
            limits.max_body_size,
        )
        for route in config.routes
    ]
    storage = config.traffic.storage
    counters = (
        previous.counters
        if previous is not None and previous.counters.url == storage
        else Counters(storage)
    )
    return Runtime(
        loaded,
        adapters,
        routes,
        trust,
        identity=identity,
        breakers=upstream_breakers,
        counters=counters,
    )


class Trust(msgspec.Struct):
    store: TrustStore
    revocation: RevocationChecker
    """Shared by every request of a runtime; its OCSP/CRL cache survives reloads that keep trust."""
    settings: TrustSettings

    async def verify(
        self, body: bytes, content_type: str, policy: SignaturePolicy
    ) -> VerificationResult:
        """The one way the gateway checks a body's signatures, for routes and inbound messages
        alike; ``signatures.UnusableInput`` if the body cannot be checked at all."""
        from gateway import signatures  # cryptography and pyHanko only when a route asks

        refusal = too_large(len(body), self.settings)
        if refusal is not None:
            raise signatures.UnusableInput("payload_too_large", refusal)
        return await signatures.verify(
            body,
            media_type(content_type),
            policy=policy,
            trust=self.store,
            revocation=self.revocation,
        )


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
    return Trust(store, RevocationChecker(settings), settings)


def _reusable(previous: Runtime | None, name: str, spec: UpstreamSpec) -> Adapter | None:
    if previous is None or previous.loaded.upstreams.get(name) != spec:
        return None
    return previous.adapters.get(name)


def _compile(
    route: Route,
    adapter: Adapter,
    breaker: Breaker,
    config_dir: str,
    timeout: str,
    max_body: str,
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
        breaker=breaker,
        scopes=frozenset(route.scopes),
    )


def _signature_policy(route: Route) -> SignaturePolicy | None:
    rule = route.verify_signatures
    policy = rule if isinstance(rule, SignaturePolicy) else SignaturePolicy(mode=rule)
    return None if policy.mode == "off" else policy
