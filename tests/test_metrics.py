"""Prometheus metrics: scraped over real HTTP after real traffic, parsed as Prometheus would."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from tests.support.capture import HeaderCapture
from tests.support.config import BASE_CONFIG, TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import serve_in_thread

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str, **headers: str) -> Samples:
    response = httpx.get(f"{base}/metrics", headers=headers or {"x-api-key": TEST_ADMIN_KEY})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def config(tmp_path: Path, upstream: str, *, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        BASE_CONFIG
        + f"""
storage: {{{{url: "sqlite:///{tmp_path}/gw.db"}}}}
{extra}
upstreams:
  canned: {{{{type: stub, operations: {{{{hello: {{{{reply: {{{{body: {{{{ok: true}}}}}}}}}}}}}}}}}}}}
  agency: {{{{type: http, base_url: "{upstream}"}}}}
routes:
  - {{{{id: metrics-hello, match: {{{{method: GET, path: "/hello/{{{{id}}}}"}}}}, clients: [agency-a],
      upstream: canned, operation: hello}}}}
  - {{{{id: metrics-forward, match: {{{{method: POST, path: /forward}}}}, clients: [agency-a],
      upstream: agency, operation: "POST /in"}}}}
  - {{{{id: metrics-queued, match: {{{{method: POST, path: /queued}}}}, clients: [agency-a],
      upstream: agency, operation: "POST /in", delivery: async}}}}
""",
    )


def test_traffic_shows_in_the_exposition_without_personal_data(tmp_path: Path) -> None:
    capture = HeaderCapture()
    with (
        serve_in_thread(capture) as upstream,
        serve_in_thread(create_app(str(config(tmp_path, upstream)))) as base,
    ):
        before = scrape(base)
        key = {"x-api-key": TEST_KEY}
        for _ in range(3):
            assert httpx.get(f"{base}/hello/001203012345", headers=key).status_code == 200
        assert httpx.get(f"{base}/hello/1", headers={"x-api-key": "wrong"}).status_code == 401
        assert httpx.post(f"{base}/forward", json={"a": 1}, headers=key).status_code == 200
        queued = httpx.post(f"{base}/queued", json={"a": 2}, headers=key)
        status_url = base + queued.json()["status_url"]
        deadline = time.monotonic() + 10
        while httpx.get(status_url, headers=key).json()["state"] != "delivered":
            assert time.monotonic() < deadline, "not delivered within 10 s"
            time.sleep(0.05)
        after = scrape(base)
        text = httpx.get(f"{base}/metrics", headers={"x-api-key": TEST_ADMIN_KEY}).text

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": "metrics-hello", "client": "agency-a", "status": "200", "code": ""}
    assert delta("lgsp_gateway_requests_total", **ok) == 3
    refused = {"route": "none", "client": "none", "status": "401", "code": "unauthenticated"}
    assert delta("lgsp_gateway_requests_total", **refused) == 1
    assert delta("lgsp_gateway_request_duration_seconds_count", route="metrics-hello") == 3
    upstream_call = {"upstream": "agency", "operation": "POST /in", "outcome": "2xx"}
    assert delta("lgsp_gateway_upstream_request_duration_seconds_count", **upstream_call) == 2
    assert (
        delta("lgsp_gateway_delivery_attempts_total", upstream="agency", outcome="delivered") == 1
    )
    for state in ("queued", "delivering", "failed", "dead"):  # the one message was delivered
        assert ("lgsp_gateway_delivery_queue_depth", frozenset({("state", state)})) in after
        assert value(after, "lgsp_gateway_delivery_queue_depth", state=state) == 0
    assert delta("lgsp_gateway_message_log_batch_size_records_count") >= 1
    assert delta("lgsp_gateway_message_log_commit_duration_seconds_count") >= 1
    assert value(after, "lgsp_gateway_requests_in_flight") >= 1  # the scrape itself
    assert ("lgsp_gateway_inbound_oldest_undelivered_age_seconds", frozenset()) in after
    assert "001203012345" not in text and "/hello/" not in text  # route ids, never paths


def test_metrics_need_the_admin_key_or_a_bearer_token(tmp_path: Path) -> None:
    with serve_in_thread(create_app(str(config(tmp_path, "http://127.0.0.1:9")))) as base:
        assert httpx.get(f"{base}/metrics").status_code == 401
        client_key = httpx.get(f"{base}/metrics", headers={"x-api-key": TEST_KEY})
        assert client_key.json()["code"] == "unauthenticated"
        scrape(base, authorization=f"Bearer {TEST_ADMIN_KEY}")  # Prometheus' `authorization:`


def test_retries_and_failed_calls_are_counted(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + f"""
storage: {{{{url: "sqlite:///{tmp_path}/gw.db"}}}}
upstreams:
  down: {{{{type: http, base_url: "http://127.0.0.1:9"}}}}
routes:
  - {{{{id: metrics-down, match: {{{{method: GET, path: /down}}}}, clients: [agency-a],
      upstream: down, retry: {{{{attempts: 3, backoff: 1ms}}}}}}}}
""",
    )
    with serve_in_thread(create_app(str(path))) as base:
        before = scrape(base)
        answer = httpx.get(f"{base}/down", headers={"x-api-key": TEST_KEY})
        assert answer.json()["code"] == "upstream_unavailable"
        after = scrape(base)
    labels = {"upstream": "down", "operation": "none"}
    assert (
        value(after, "lgsp_gateway_upstream_retries_total", **labels)
        - value(before, "lgsp_gateway_upstream_retries_total", **labels)
        == 2
    )
    failed = {**labels, "outcome": "upstream_unavailable"}
    name = "lgsp_gateway_upstream_request_duration_seconds_count"
    assert value(after, name, **failed) - value(before, name, **failed) == 3


def test_other_modules_report_rate_limits_and_circuits(tmp_path: Path) -> None:
    from gateway import metrics

    with serve_in_thread(create_app(str(config(tmp_path, "http://127.0.0.1:9")))) as base:
        metrics.rate_limited("metrics-hello", "agency-a")
        metrics.circuit_changed("agency", "open")
        metrics.circuit_rejected("agency")
        samples = scrape(base)
        assert value(samples, "lgsp_gateway_circuit_open", upstream="agency") == 1
        metrics.circuit_changed("agency", "closed")
        closed = scrape(base)
    assert (
        value(samples, "lgsp_gateway_rate_limited_total", route="metrics-hello", client="agency-a")
        >= 1
    )
    assert value(samples, "lgsp_gateway_circuit_rejected_total", upstream="agency") >= 1
    assert value(closed, "lgsp_gateway_circuit_open", upstream="agency") == 0
    assert (
        value(closed, "lgsp_gateway_circuit_transitions_total", upstream="agency", state="closed")
        >= 1
    )
