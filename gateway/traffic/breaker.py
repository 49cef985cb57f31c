"""Circuit breaker and bulkhead per upstream: fail fast instead of waiting on a dead system.

Closed, the breaker counts outcomes: ``failures`` consecutive failures, or a
failure rate over ``failure_rate`` among at least ``min_calls`` calls in the
last ``window``, open it. Open, every call is refused at once
(``upstream_circuit_open``, ``Retry-After`` = what is left of the cool-down).
After ``cool_down`` one probe call is let through (half-open): its success
closes the circuit, its failure opens it again. Failures are what ``retry.on``
can name: timeouts, connection errors, 5xx; an upstream's business refusal
(4xx, ``upstream_rejected``) is an answer, not a failure.

The bulkhead caps the calls in flight to one upstream, so a slow system
cannot hold every worker of the gateway; one over the cap is answered
``overloaded`` at once. State is per process and survives reloads that keep
the upstream's settings.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Literal

from adapters.units import seconds
from gateway.config.model import UpstreamTraffic
from gateway.problems import Problem

State = Literal["closed", "open", "half_open"]
BULKHEAD_RETRY_AFTER = "1"


class Breaker:
    """One upstream's circuit and its cap on calls in flight."""

    def __init__(self, upstream: str, settings: UpstreamTraffic) -> None:
        self.upstream = upstream
        self.settings = settings
        breaker = settings.circuit_breaker
        self.enabled = breaker.enabled
        self.failures = breaker.failures
        self.failure_rate = breaker.failure_rate
        self.window = seconds(breaker.window)
        self.min_calls = breaker.min_calls
        self.cool_down = seconds(breaker.cool_down)
        self.max_in_flight = settings.max_in_flight
        self.state: State = "closed"
        self.in_flight = 0
        self.consecutive = 0
        self.opened_at = 0.0
        self.probing = False
        self._outcomes: deque[tuple[float, bool]] = deque()
        """(time, failed) of recent calls, for the failure rate."""

    def enter(self) -> None:
        """Admit one call, or refuse it with a ``Problem``; every admitted call must ``leave``."""
        if self.in_flight >= self.max_in_flight:
            raise Problem(
                "overloaded",
                f"{self.max_in_flight} calls to {self.upstream} are already in flight",
                headers={"retry-after": BULKHEAD_RETRY_AFTER},
            )
        if self.state != "closed" and self.enabled:
            self._admit_when_open()
        self.in_flight += 1

    def _admit_when_open(self) -> None:
        now = time.monotonic()
        left = self.opened_at + self.cool_down - now
        if self.state == "open" and left <= 0:
            self.state = "half_open"
        if self.state == "half_open" and not self.probing:
            self.probing = True  # this call is the probe
            return
        wait = max(1, math.ceil(left)) if left > 0 else 1
        raise Problem(
            "upstream_circuit_open",
            f"{self.upstream} failed repeatedly; calls are refused for {wait}s before a retry",
            headers={"retry-after": str(wait)},
            extra={"upstream": self.upstream},
        )

    def leave(self, failed: bool) -> None:
        self.in_flight -= 1
        if not self.enabled:
            return
        if self.state == "half_open" and self.probing:
            self.probing = False
            if failed:
                self._open()
            else:
                self._close()
            return
        if self.state != "closed":
            return  # a call admitted before the circuit opened
        self.consecutive = self.consecutive + 1 if failed else 0
        rate_exceeded = self.failure_rate is not None and self._rate_exceeded(failed)
        if self.consecutive >= self.failures or rate_exceeded:
            self._open()

    def _rate_exceeded(self, failed: bool) -> bool:
        now = time.monotonic()
        outcomes = self._outcomes
        outcomes.append((now, failed))
        while outcomes and outcomes[0][0] < now - self.window:
            outcomes.popleft()
        if not failed or len(outcomes) < self.min_calls:
            return False
        failures = sum(1 for _, f in outcomes if f)
        assert self.failure_rate is not None
        return failures / len(outcomes) >= self.failure_rate

    def _open(self) -> None:
        self.state = "open"
        self.opened_at = time.monotonic()
        self.consecutive = 0
        self._outcomes.clear()

    def _close(self) -> None:
        self.state = "closed"
        self.consecutive = 0
        self._outcomes.clear()

    def report(self) -> dict[str, object]:
        """What ``/health/ready`` shows."""
        shown = self.state
        if shown == "open" and time.monotonic() >= self.opened_at + self.cool_down:
            shown = "half_open"  # the next call will probe
        return {"state": shown, "in_flight": self.in_flight}


def breakers(
    specs: dict[str, UpstreamTraffic], previous: dict[str, Breaker] | None
) -> dict[str, Breaker]:
    """One breaker per upstream; kept from ``previous`` when the upstream's settings are the
    same, so a reload does not close an open circuit."""
    kept = previous or {}
    result = {}
    for name, settings in specs.items():
        old = kept.get(name)
        result[name] = (
            old if old is not None and old.settings == settings else Breaker(name, settings)
        )
    return result
