"""Prometheus metrics of the gateway: what an operator graphs and alerts on.

Every name starts ``lgsp_gateway_`` and carries its unit as a suffix. Labels
are values the configuration bounds (route ids, client ids, upstream names,
operations, error codes, states), never a path or anything a caller typed.

The hot path pays a dict lookup and a lock-free-ish increment per metric:
label children are bound once per label set and kept (``_bound``).

Several worker processes (uvicorn ``--workers``, gunicorn, replicas sharing a
host) share one view through prometheus_client's multiprocess mode: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the processes start;
``render`` then sums every process's files.

Other gateway modules report through the functions at the end (one call per
event), e.g. ``metrics.rate_limited(route, client)``; they never touch the
metric objects.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

CONTENT_TYPE = "text/plain; version=0.0.4"
"""The text format every Prometheus reads (the web framework adds ``charset=utf-8``)."""
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
NONE = "none"
"""Label value for "not known" (a request refused before its route or client was known)."""

disable_created_metrics()  # type: ignore[no-untyped-call]  # a ``_created`` series per counter doubles the page for no graph

# Exchanges of an e-government gateway: fast lookups to slow national systems.
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter(
    "lgsp_gateway_requests",
    "Requests answered, by route id, client id, HTTP status and error code",
    ["route", "client", "status", "code"],
)
REQUEST_SECONDS = Histogram(
    "lgsp_gateway_request_duration_seconds",
    "Whole exchange, from the request's arrival to the end of the answer",
    ["route"],
    buckets=_SECONDS,
)
IN_FLIGHT = Gauge(
    "lgsp_gateway_requests_in_flight",
    "Requests being handled now",
    multiprocess_mode="livesum",
)
UPSTREAM_SECONDS = Histogram(
    "lgsp_gateway_upstream_request_duration_seconds",
    "One call to an upstream (each attempt, deliveries included), by outcome",
    ["upstream", "operation", "outcome"],
    buckets=_SECONDS,
)
RETRIES = Counter(
    "lgsp_gateway_upstream_retries",
    "Upstream calls repeated by a route's retry policy",
    ["upstream", "operation"],
)
QUEUE_DEPTH = Gauge(
    "lgsp_gateway_delivery_queue_depth",
    "Messages in the delivery queue, by state",
    ["state"],
    multiprocess_mode="mostrecent",
)
DELIVERY_ATTEMPTS = Counter(
    "lgsp_gateway_delivery_attempts",
    "Delivery attempts, by upstream and outcome (delivered or an error code)",
    ["upstream", "outcome"],
)
DEAD_LETTERS = Counter(
    "lgsp_gateway_delivery_dead_letters",
    "Messages given up on (attempts or age exhausted, or refused by the upstream)",
    ["upstream"],
)
INBOUND_LAG = Gauge(
    "lgsp_gateway_inbound_oldest_undelivered_age_seconds",
    "Age of the oldest inbound document (fetched by a poller) not yet delivered; 0 if none",
    multiprocess_mode="mostrecent",
)
LOG_BATCH = Histogram(
    "lgsp_gateway_message_log_batch_size_records",
    "Records written per message-log commit (group commit)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
LOG_COMMIT_SECONDS = Histogram(
    "lgsp_gateway_message_log_commit_duration_seconds",
    "Time to write and commit one message-log batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
SIGNATURES = Counter(
    "lgsp_gateway_signature_verdicts",
    "Signature verification results, by where the body came from and verdict",
    ["source", "verdict"],
)
RATE_LIMITED = Counter(
    "lgsp_gateway_rate_limited",
    "Requests refused by a rate limit",
    ["route", "client"],
)
CIRCUIT_TRANSITIONS = Counter(
    "lgsp_gateway_circuit_transitions",
    "Circuit breaker state changes, by upstream and new state",
    ["upstream", "state"],
)
CIRCUIT_OPEN = Gauge(
    "lgsp_gateway_circuit_open",
    "1 while the upstream's circuit is open (per process; summed over processes)",
    ["upstream"],
    multiprocess_mode="livesum",
)
CIRCUIT_REJECTED = Counter(
    "lgsp_gateway_circuit_rejected",
    "Calls refused without trying because the upstream's circuit is open",
    ["upstream"],
)

_bound: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, bound once: ``labels`` takes a lock and builds a tuple."""
    key = (id(metric), *labels)
    child = _bound.get(key)
    if child is None:
        child = _bound[key] = metric.labels(*labels)
    return child


# --- what the gateway reports ---


def exchange_started() -> None:
    IN_FLIGHT.inc()


def exchange_finished(
    route: str | None, client: str | None, status: int, code: str | None, seconds: float
) -> None:
    """The exchange middleware, once per request (fixed endpoints included)."""
    IN_FLIGHT.dec()
    key = (route, client, status, code)
    children = _exchanges.get(key)
    if children is None:
        children = _exchanges[key] = (
            REQUESTS.labels(route or NONE, client or NONE, str(status), code or ""),
            REQUEST_SECONDS.labels(route or NONE),
        )
    children[0].inc()
    children[1].observe(seconds)


_exchanges: dict[tuple[str | None, str | None, int, str | None], tuple[Any, Any]] = {}
"""The request counter's and duration histogram's children per label set: one lookup."""


def upstream_call(upstream: str, operation: str, outcome: str, seconds: float) -> None:
    """One attempt at an upstream; ``outcome`` is the answer's status class (``2xx``) or an error
    code (``upstream_timeout``)."""
    _child(UPSTREAM_SECONDS, upstream, operation or NONE, outcome).observe(seconds)


def upstream_retry(upstream: str, operation: str) -> None:
    _child(RETRIES, upstream, operation or NONE).inc()


def delivery_attempt(upstream: str, outcome: str, state: str) -> None:
    _child(DELIVERY_ATTEMPTS, upstream, outcome).inc()
    if state == "dead":
        _child(DEAD_LETTERS, upstream).inc()


def log_committed(records: int, seconds: float) -> None:
    LOG_BATCH.observe(records)
    LOG_COMMIT_SECONDS.observe(seconds)


def signature_verdict(source: str, verdict: str) -> None:
    """``source``: ``route`` (a request's body) or ``inbound`` (a document a poller fetched)."""
    _child(SIGNATURES, source, verdict).inc()


def rate_limited(route: str, client: str) -> None:
    """A request refused by a rate limit (for ``gateway/traffic``)."""
    _child(RATE_LIMITED, route or NONE, client or NONE).inc()


def circuit_changed(upstream: str, state: str) -> None:
    """An upstream's circuit moved to ``state`` (``open``, ``half_open``, ``closed``)."""
    _child(CIRCUIT_TRANSITIONS, upstream, state).inc()
    _child(CIRCUIT_OPEN, upstream).set(1 if state == "open" else 0)


def circuit_rejected(upstream: str) -> None:
    """A call not attempted because the upstream's circuit is open."""
    _child(CIRCUIT_REJECTED, upstream).inc()


# --- gauges read from the database, and exposition ---


def queue_seen(depth: dict[str, int], oldest_inbound: float | None) -> None:
    """Queue depth by state and the inbound lag, as the database has them now
    (``DeliveryQueue.depth``); ``oldest_inbound`` is a Unix time."""
    for state, count in depth.items():
        _child(QUEUE_DEPTH, state).set(count)
    lag = 0.0 if oldest_inbound is None else max(0.0, time.time() - oldest_inbound)
    INBOUND_LAG.set(lag)


def render() -> bytes:
    """The exposition text: this process's metrics, or every process's in multiprocess mode."""
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_exited(pid: int | None = None) -> None:
    """Drop this process's live gauges (in flight, circuits) from the shared directory."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def start_listener(listen: str) -> Callable[[], None]:
    """Serve ``/metrics`` on ``HOST:PORT`` in a thread of its own; returns its stop function.

    Gauges read from the database are refreshed by the process's own task
    (``Persistence``), since this thread has no event loop.
    """
    from prometheus_client import start_http_server

    host, _, port = listen.rpartition(":")
    registry: CollectorRegistry = REGISTRY
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, thread = start_http_server(int(port), addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return stop
