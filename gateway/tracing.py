"""OpenTelemetry tracing: one span per exchange, W3C trace context in and out.

Off by default (``tracing.enabled``); when off, every entry point here returns
a shared no-op context manager, so the hot path pays one global lookup.

When on, the exchange middleware continues a caller's ``traceparent`` /
``tracestate`` (or starts a trace), the pipeline opens child spans for
validation, signature checks and each upstream attempt, and every upstream
HTTP call (http, SOAP and the national adapters alike, through
``adapters.httpclient.OUTBOUND_HEADERS``) carries the attempt span's
``traceparent``. An async route stores the exchange's ``traceparent`` with the
queued request, so its delivery, whenever and wherever it happens, continues
the same trace. Span attributes are route ids, client ids, upstreams and
codes: never a path, a body or anything personal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from adapters.httpclient import OUTBOUND_HEADERS
from gateway.config.model import TracingSettings

TRACE_HEADERS = ("traceparent", "tracestate")
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


def enabled() -> bool:
    return _tracer is not None


def configure(settings: TracingSettings, exporter: SpanExporter | None = None) -> None:
    """Set up (or turn off) tracing for this process.

    ``exporter`` replaces the configured one (tests pass the SDK's in-memory
    exporter); it is flushed span by span, the configured ones in batches.
    """
    global _tracer, _provider
    shutdown()
    if not settings.enabled:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.exporter != "none":
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    _provider = provider
    _tracer = provider.get_tracer("lgsp_gateway")


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise RuntimeError(
            "tracing.exporter otlp needs the OTLP exporter: pip install 'lgsp-gateway[otlp]'"
        ) from None
    exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.endpoint)
    return exporter


def shutdown() -> None:
    """Export what is pending and turn tracing off."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def _carrier(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }


def exchange_span(
    headers: Iterable[tuple[bytes, bytes]], method: str
) -> AbstractContextManager[Span | None]:
    """The span of one exchange, continuing the caller's ``traceparent`` if it sent one."""
    if _tracer is None:
        return _OFF
    parent = _propagator.extract(_carrier(headers))
    return _tracer.start_as_current_span(
        method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
    )


def end_exchange(span: Span | None, fields: Mapping[str, Any]) -> None:
    """Name the exchange span by its route and put the outcome on it."""
    if span is None:
        return
    route = fields.get("route")
    if route:
        span.update_name(f"{fields.get('method', '')} {route}")
    status = fields.get("status", 0)
    span.set_attribute("http.response.status_code", status)
    for name in ("route", "client", "upstream", "operation", "error_code", "request_id"):
        value = fields.get(name)
        if value:
            span.set_attribute(f"lgsp.{name}", value)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, fields.get("error_code") or None))


def span(name: str, **attributes: str) -> AbstractContextManager[Span | None]:
    """A child span of the current one (validation, signature checks)."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, attributes=attributes)


@contextlib.contextmanager
def _outbound(name: str, kind: SpanKind, attributes: dict[str, str]) -> Iterator[Span]:
    assert _tracer is not None
    with _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        headers: dict[str, str] = {}
        _propagator.inject(headers)
        token = OUTBOUND_HEADERS.set(headers)
        try:
            yield current
        finally:
            OUTBOUND_HEADERS.reset(token)


def upstream_span(upstream: str, operation: str) -> AbstractContextManager[Span | None]:
    """One attempt at an upstream; its HTTP calls carry this span's ``traceparent``."""
    if _tracer is None:
        return _OFF
    attributes = {"lgsp.upstream": upstream, "lgsp.operation": operation}
    return _outbound(f"upstream {upstream}", SpanKind.CLIENT, attributes)


def with_trace_context(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the current span's trace context in place of the caller's
    (what a queued request keeps, so that its delivery continues this trace)."""
    if _tracer is None:
        return headers
    carried = {k: v for k, v in headers.items() if k not in TRACE_HEADERS}
    _propagator.inject(carried)
    return carried


@contextlib.contextmanager
def delivery_span(
    headers: Mapping[str, str], message_id: str, upstream: str
) -> Iterator[Span | None]:
    """One delivery attempt, in the trace of the exchange that queued the message."""
    if _tracer is None:
        yield None
        return
    parent = _propagator.extract(dict(headers))
    token = otel_context.attach(parent)
    try:
        attributes = {"lgsp.message_id": message_id, "lgsp.upstream": upstream}
        with _outbound(f"deliver {upstream}", SpanKind.PRODUCER, attributes) as current:
            yield current
    finally:
        otel_context.detach(token)
