"""Generated requests (schemathesis) against every configured route of the default app.

Bounded and deterministic: a fixed number of examples per route, derandomized, no
example database. A route fails on any 5xx but the upstream-mapped 502 and 504, and
on any answer its own OpenAPI description does not allow (status, content type,
headers, body schema). Marked ``fuzz``: ``make quick`` leaves it out.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app
from tests.support.config import DEFAULT_CONFIG, MOTCUA_KEY
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.fuzz

EXAMPLES_PER_ROUTE = 25
UPSTREAM_MAPPED = (502, 504)
"""What an upstream's failure becomes: expected of generated requests to mock systems."""


def no_gateway_failure(ctx: CheckContext, response: Any, case: Case) -> bool:
    if response.status_code >= 500 and response.status_code not in UPSTREAM_MAPPED:
        raise Failure(
            operation=case.operation.label,
            title=f"gateway answered {response.status_code}",
            message=response.text[:500],
        )
    return True


CHECKS = [
    no_gateway_failure,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_generated_requests_get_documented_answers() -> None:
    with serve_in_thread(create_app(str(DEFAULT_CONFIG))) as base:
        document = httpx.get(f"{base}/schema/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        failures: list[str] = []
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == sum(len(methods) for methods in document["paths"].values())

        for operation in operations:

            @settings(
                max_examples=EXAMPLES_PER_ROUTE,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def exercise(case: Case) -> None:
                response = case.call(base_url=base, headers={"X-API-Key": MOTCUA_KEY})
                case.validate_response(response, checks=CHECKS)

            try:
                exercise()
            except Exception as exc:  # every route is tried; all failures are reported
                failures.append(f"{operation.label}: {exc}"[:2000])
        assert not failures, "\n\n".join(failures)
