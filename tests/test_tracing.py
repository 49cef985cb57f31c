"""Tracing: the caller's trace continues through the gateway, to upstreams and through the queue.

Spans are read from the OpenTelemetry SDK's in-memory exporter; the upstream
is real HTTP and records the headers it got.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway import logs, tracing
from gateway.app import create_app
from gateway.config.model import LoggingSettings, TracingSettings
from tests.support.capture import HeaderCapture
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.servers import serve_in_thread

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(TracingSettings(enabled=True), exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.configure(TracingSettings())


def config(tmp_path: Path, upstream: str) -> Path:
    text = (
        BASE_CONFIG
        + """
storage: {{url: "sqlite:///DIR/gw.db"}}
upstreams:
  agency: {{type: http, base_url: "UPSTREAM"}}
  registry: {{type: soap, wsdl: population/population.wsdl, address: "UPSTREAM/soap"}}
routes:
  - {{id: forward, match: {{method: POST, path: /forward}}, clients: [agency-a],
      upstream: agency, operation: "POST /in"}}
  - {{id: queued, match: {{method: POST, path: /queued}}, clients: [agency-a],
      upstream: agency, operation: "POST /in", delivery: async}}
  - {{id: soap-lookup, match: {{method: POST, path: /lookup}}, clients: [agency-a],
      upstream: registry, operation: TraCuuThongTinCongDan}}
"""
    )
    return write_config(tmp_path, text.replace("DIR", str(tmp_path)).replace("UPSTREAM", upstream))


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


def hex_id(value: int, width: int = 16) -> str:
    return format(value, f"0{width}x")


def test_the_callers_trace_continues_to_the_upstream(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    capture = HeaderCapture()
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        with (
            serve_in_thread(capture) as upstream,
            serve_in_thread(create_app(str(config(tmp_path, upstream)))) as base,
        ):
            answer = httpx.post(
                f"{base}/forward",
                json={"a": 1},
                headers={"x-api-key": TEST_KEY, "traceparent": TRACEPARENT, "tracestate": "k=v"},
            )
            assert answer.status_code == 200
    finally:
        logs.configure(LoggingSettings(level="warning"))
    finished = spans.get_finished_spans()
    exchange = by_name(finished, "POST forward")
    assert hex_id(exchange.context.trace_id, 32) == TRACE_ID
    assert exchange.parent is not None and hex_id(exchange.parent.span_id) == CALLER_SPAN
    assert exchange.attributes is not None
    assert exchange.attributes["lgsp.client"] == "agency-a"
    assert exchange.attributes["http.response.status_code"] == 200
    assert "/forward" not in json.dumps(dict(exchange.attributes))  # route ids, never paths
    validate, call = by_name(finished, "validate"), by_name(finished, "upstream agency")
    for child in (validate, call):
        assert child.parent is not None and child.parent.span_id == exchange.context.span_id
    (sent,) = capture.seen
    assert sent["traceparent"] == f"00-{TRACE_ID}-{hex_id(call.context.span_id)}-01"
    assert sent["tracestate"] == "k=v"
    request_line = next(
        line
        for line in map(json.loads, stream.getvalue().splitlines())
        if line["event"] == "request"
    )
    assert request_line["trace_id"] == TRACE_ID


def test_soap_calls_carry_the_trace(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    capture = HeaderCapture()  # answers JSON, not SOAP: the call fails, after it was sent
    with (
        serve_in_thread(capture) as upstream,
        serve_in_thread(create_app(str(config(tmp_path, upstream)))) as base,
    ):
        answer = httpx.post(
            f"{base}/lookup",
            json={"MaYeuCau": "1"},
            headers={"x-api-key": TEST_KEY, "traceparent": TRACEPARENT},
        )
    assert answer.json()["code"] == "upstream_error"
    call = by_name(spans.get_finished_spans(), "upstream registry")
    (sent,) = capture.seen
    assert sent["traceparent"] == f"00-{TRACE_ID}-{hex_id(call.context.span_id)}-01"


def test_a_queued_message_is_delivered_in_the_trace_that_sent_it(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    capture = HeaderCapture()
    with (
        serve_in_thread(capture) as upstream,
        serve_in_thread(create_app(str(config(tmp_path, upstream)))) as base,
    ):
        answer = httpx.post(
            f"{base}/queued",
            json={"a": 1},
            headers={"x-api-key": TEST_KEY, "traceparent": TRACEPARENT},
        )
        assert answer.status_code == 202
        deadline = time.monotonic() + 10
        while not capture.seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finished = spans.get_finished_spans()
    exchange, delivery = by_name(finished, "POST queued"), by_name(finished, "deliver agency")
    assert hex_id(delivery.context.trace_id, 32) == TRACE_ID
    assert delivery.parent is not None and delivery.parent.span_id == exchange.context.span_id
    (sent,) = capture.seen
    assert sent["traceparent"] == f"00-{TRACE_ID}-{hex_id(delivery.context.span_id)}-01"


def test_off_by_default_the_gateway_adds_nothing(tmp_path: Path) -> None:
    capture = HeaderCapture()
    stream = io.BytesIO()
    logs.configure(LoggingSettings(level="info"), stream)
    try:
        with (
            serve_in_thread(capture) as upstream,
            serve_in_thread(create_app(str(config(tmp_path, upstream)))) as base,
        ):
            httpx.post(f"{base}/forward", json={}, headers={"x-api-key": TEST_KEY})
    finally:
        logs.configure(LoggingSettings(level="warning"))
    (sent,) = capture.seen
    assert "traceparent" not in sent
    assert "trace_id" not in stream.getvalue().decode()
