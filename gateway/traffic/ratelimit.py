"""Rate limits and quotas: per client, per route, per client on a route.

Counters are fixed windows kept by the ``limits`` library: in this process's
memory by default, in Redis (``traffic.storage: redis://...``) when several
gateway processes must share one budget. A refused call is ``429
rate_limited`` with ``Retry-After``; every call of a limited route carries
the ``RateLimit-Policy`` and ``RateLimit`` headers of the IETF draft
(draft-ietf-httpapi-ratelimit-headers), naming the tightest limit.

A call is counted against each of its limits in turn and stops at the first
one exhausted. When Redis cannot be reached the call is let through and the
failure logged: a broken counter store must not stop the province's traffic.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import msgspec
from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)

from adapters.logs import get_logger
from gateway.problems import Problem

if TYPE_CHECKING:
    from limits.aio.storage import Storage

    from gateway.config.model import Client, GatewayConfig

log = get_logger(__name__)

_ITEMS: dict[str, type[RateLimitItem]] = {
    "s": RateLimitItemPerSecond,
    "second": RateLimitItemPerSecond,
    "m": RateLimitItemPerMinute,
    "minute": RateLimitItemPerMinute,
    "h": RateLimitItemPerHour,
    "hour": RateLimitItemPerHour,
    "d": RateLimitItemPerDay,
    "day": RateLimitItemPerDay,
}
_REDIS_PREFIX = "lgsp-ratelimit"


class Rule(msgspec.Struct, frozen=True):
    """One limit as applied to one counter."""

    name: str
    """The policy name in the headers, e.g. ``client-route/10/s``."""
    amount: int
    window: int
    """Seconds."""
    key: str


def _rule(scope: str, rate: str, *ids: str) -> Rule:
    count, _, unit = rate.partition("/")
    item = _ITEMS[unit](int(count))
    return Rule(f"{scope}/{rate}", item.amount, item.get_expiry(), item.key_for(scope, *ids))


class Plan:
    """The limits of every (route, client) pair of one runtime, computed on first use."""

    def __init__(self, config: GatewayConfig) -> None:
        self._clients = {c.id: c.rate_limits for c in config.clients if c.rate_limits}
        self._routes = {
            r.id: (r.rate_limits, r.client_rate_limits)
            for r in config.routes
            if r.rate_limits or r.client_rate_limits
        }
        self._cache: dict[tuple[str, str], tuple[tuple[Rule, ...], str]] = {}

    def __bool__(self) -> bool:
        return bool(self._clients or self._routes)

    def rules(self, route_id: str, client: Client) -> tuple[tuple[Rule, ...], str]:
        """The rules of a call and its ``RateLimit-Policy`` header value."""
        cached = self._cache.get((route_id, client.id))
        if cached is not None:
            return cached
        route_rates, per_client = self._routes.get(route_id, ((), ()))
        rules = (
            *(_rule("client", rate, client.id) for rate in self._clients.get(client.id, ())),
            *(_rule("route", rate, route_id) for rate in route_rates),
            *(_rule("client-route", rate, route_id, client.id) for rate in per_client),
        )
        policy = ", ".join(f'"{r.name}";q={r.amount};w={r.window}' for r in rules)
        self._cache[(route_id, client.id)] = rules, policy
        return rules, policy


class Counters:
    """The process's counter store, created on first use and kept across reloads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._storage: Storage | None = None

    def _open(self) -> Storage:
        if self._storage is None:
            if self.url == "memory":
                from limits.aio.storage import MemoryStorage

                self._storage = MemoryStorage()
            else:
                from limits.aio.storage import RedisStorage

                self._storage = RedisStorage(
                    "async+" + self.url, implementation="redispy", key_prefix=_REDIS_PREFIX
                )
        return self._storage

    async def consume(self, rules: tuple[Rule, ...], policy: str) -> dict[str, str]:
        """Count one call against each rule; the headers to send, or ``rate_limited``."""
        storage = self._open()
        tightest: tuple[int, Rule] | None = None
        for rule in rules:
            try:
                used = await storage.incr(rule.key, rule.window)
            except Exception as exc:
                log.warning("rate_limit_storage_failed", error=f"{type(exc).__name__}: {exc}")
                return {}
            remaining = rule.amount - used
            if remaining < 0:
                raise await self._refusal(storage, rule, policy)
            if tightest is None or remaining < tightest[0]:
                tightest = (remaining, rule)
        if tightest is None:
            return {}
        remaining, rule = tightest
        return {"ratelimit-policy": policy, "ratelimit": f'"{rule.name}";r={remaining}'}

    @staticmethod
    async def _refusal(storage: Storage, rule: Rule, policy: str) -> Problem:
        try:
            reset = await storage.get_expiry(rule.key)
        except Exception:
            reset = time.time() + rule.window
        wait = max(1, math.ceil(reset - time.time()))
        return Problem(
            "rate_limited",
            f"limit {rule.name} reached; try again in {wait}s",
            headers={
                "retry-after": str(wait),
                "ratelimit-policy": policy,
                "ratelimit": f'"{rule.name}";r=0;t={wait}',
            },
            extra={"limit": rule.name},
        )

    async def aclose(self) -> None:
        storage, self._storage = self._storage, None
        if storage is not None and self.url != "memory":
            from limits.aio.storage import RedisStorage

            if isinstance(storage, RedisStorage):
                await storage.bridge.storage.aclose()  # type: ignore[attr-defined]
