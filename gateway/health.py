"""Liveness and readiness, as a load balancer and an operator need them.

Readiness reports the loaded config and each upstream's state, with its
circuit breaker (closed, open, half_open) and calls in flight. Upstream
checks run concurrently, each under its own timeout, and results are cached
briefly so a busy health checker cannot hammer national systems.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from adapters.base import Adapter, UpstreamHealth
from gateway.runtime import Runtime

CHECK_TIMEOUT = 2.0
CACHE_SECONDS = 5.0

Cache = dict[str, tuple[float, UpstreamHealth]]


async def _check(name: str, adapter: Adapter, cache: Cache) -> UpstreamHealth:
    cached = cache.get(name)
    now = time.monotonic()
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            health = await adapter.check()
    except TimeoutError:
        health = UpstreamHealth(state="down", detail=f"health check took over {CHECK_TIMEOUT}s")
    except Exception as exc:  # a broken check must not break readiness itself
        health = UpstreamHealth(state="unknown", detail=f"check failed: {type(exc).__name__}")
    cache[name] = (now, health)
    return health


async def readiness(runtime: Runtime) -> dict[str, Any]:
    names = list(runtime.adapters)
    cache: Cache = runtime.derived.setdefault("health", {})
    results = await asyncio.gather(*(_check(n, runtime.adapters[n], cache) for n in names))
    upstreams = {
        name: {
            "type": runtime.loaded.upstreams[name].type,
            "state": health.state,
            "detail": health.detail,
            "circuit": runtime.breakers[name].report(),
        }
        for name, health in zip(names, results, strict=True)
    }
    loaded = runtime.loaded
    return {
        "status": "degraded"
        if any(h.state == "down" for h in results)
        or any(b.state == "open" for b in runtime.breakers.values())
        else "ready",
        "config": {
            "path": loaded.path,
            "digest": loaded.digest,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(loaded.loaded_at)),
            "routes": len(runtime.routes),
        },
        "upstreams": upstreams,
    }
