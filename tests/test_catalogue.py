"""The service catalogue and access agreements, through HTTP: what an agency developer and the
service's owner each do, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support.catalogue import B_KEY, REQUEST, catalogue_config
from tests.support.config import MOTCUA_KEY, QLVB_KEY, TEST_ADMIN_KEY, TEST_KEY

A = {"x-api-key": TEST_KEY}
B = {"x-api-key": B_KEY}
ADMIN = {"x-api-key": TEST_ADMIN_KEY}
REFUSAL = {
    "client": "agency-b",
    "service": "land",
    "decided_by": "Nguyễn Thị C, Sở NN&MT",
    "reason": "Mục đích chưa nêu thủ tục hành chính cần đối chiếu",
    "legal_basis": "Nghị định 194/2025/NĐ-CP, Điều 16 khoản 2",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test: agreements must not leak from one test to the next."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/gateway.db"
        return
    from tests.support.databases import create_database, drop_database

    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture
def gateway(tmp_path: Path, fresh_storage: str) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(str(catalogue_config(tmp_path, fresh_storage)))) as client:
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def ask(gateway: TestClient, headers: dict[str, str] = B, **changes: Any) -> Any:  # type: ignore[type-arg]
    return gateway.post(
        "/v1/catalogue/land/access-requests", json={**REQUEST, **changes}, headers=headers
    )


# --- the catalogue -----------------------------------------------------------------


def test_catalogue_lists_services_with_metadata_and_the_callers_access(
    gateway: TestClient,  # type: ignore[type-arg]
) -> None:
    services = {s["id"]: s for s in ok(gateway.get("/v1/catalogue", headers=B))["services"]}
    land = services["land"]
    assert land["owner"] == {"organ_id": "000.00.31.H53", "name": "Sở Nông nghiệp và Môi trường"}
    assert land["legal_basis"] == [
        {"document": "Luật Đất đai 2024", "article": "Điều 60", "title": ""}
    ]
    assert land["fields"][0]["dictionary_code"] == "DM-TD-01"
    assert land["sla"] == {"availability": 99.5, "response_time": "2s", "hours": "24/7"}
    assert [r["path"] for r in land["routes"]] == ["/v1/land/parcels", "/v1/land/history"]
    assert land["access"]["granted"] is False
    assert services["land-v0"]["state"] == "deprecated"
    assert services["land-v0"]["sunset"] == "2027-07-01"

    mine = ok(gateway.get("/v1/catalogue", headers=A))["services"]
    assert {s["id"]: s["access"]["via"] for s in mine} == {
        "land": "configuration",
        "land-v0": "configuration",
    }


def test_one_service_with_its_openapi_fragment_and_examples(
    gateway: TestClient,  # type: ignore[type-arg]
) -> None:
    land = ok(gateway.get("/v1/catalogue/land", headers=B))
    assert set(land["openapi"]["paths"]) == {"/v1/land/parcels", "/v1/land/history"}
    assert land["openapi"]["paths"]["/v1/land/parcels"]["get"]["operationId"] == "land-lookup"
    assert land["examples"][0]["response"] == {"thua_dat": "0101"}
    assert land["access_requests"] == []


def test_the_export_holds_the_shared_services_for_the_national_catalogue(
    gateway: TestClient,  # type: ignore[type-arg]
) -> None:
    response = gateway.get("/v1/catalogue/export", headers=B)
    assert "attachment" in response.headers["content-disposition"]
    export = ok(response)
    assert export["format"] == "lgsp-gateway-catalogue/1"
    assert [s["id"] for s in export["services"]] == ["land"]  # land-v0 is not shared
    assert "access" not in export["services"][0]
    assert "/v1/land/parcels" in export["services"][0]["openapi"]["paths"]


def test_catalogue_refusals(gateway: TestClient) -> None:  # type: ignore[type-arg]
    refused(gateway.get("/v1/catalogue"), 401, "unauthenticated")
    refused(gateway.get("/v1/catalogue/nope", headers=B), 404, "not_found")
    refused(gateway.get("/v1/catalogue/land/other", headers=B), 404, "route_not_found")
    response = gateway.delete("/v1/catalogue/land", headers=B)
    refused(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"
    body = refused(ask(gateway, purpose="ngắn", contact={}), 422, "schema_invalid")
    assert {e["path"] for e in body["errors"]} >= {"$.purpose", "$.contact.name"}
    refused(ask(gateway, headers=A), 409, "access_request_conflict")  # A has it by config


def test_docs_page_groups_routes_by_service(gateway: TestClient) -> None:  # type: ignore[type-arg]
    page = gateway.get("/docs").text
    land = page.index("Tra cứu thửa đất</h2>")
    assert (
        land < page.index("/v1/land/parcels") < page.index("Other routes") < page.index("/v1/free")
    )
    assert "Sở Nông nghiệp và Môi trường (000.00.31.H53)" in page
    assert "Luật Đất đai 2024 Điều 60" in page
    assert "<b>deprecated</b> since 2026-01-01, sunset 2027-07-01" in page


# --- access agreements ----------------------------------------------------------------


def test_request_refuse_request_again_approve_call_revoke(
    gateway: TestClient,  # type: ignore[type-arg]
) -> None:
    refused(gateway.get("/v1/land/parcels", headers=B), 403, "forbidden")

    first = ok(ask(gateway), 201)
    assert first["state"] == "pending" and first["client"] == "agency-b"
    refused(ask(gateway), 409, "access_request_conflict")  # one open request at a time
    pending = ok(gateway.get("/admin/access-requests?state=pending", headers=ADMIN))["items"]
    assert [p["id"] for p in pending] == [first["id"]]

    ok(gateway.post("/admin/access-requests/refuse", json=REFUSAL, headers=ADMIN))
    mine = ok(gateway.get("/v1/catalogue/land/access-requests", headers=B))["items"]
    assert mine[0]["state"] == "refused"
    assert mine[0]["reason"] == REFUSAL["reason"]
    assert mine[0]["decision_legal_basis"] == REFUSAL["legal_basis"]
    refused(gateway.get("/v1/land/parcels", headers=B), 403, "forbidden")

    second = ok(
        ask(gateway, purpose="Đối chiếu thửa đất cho thủ tục 1.012345 (đăng ký biến động)"), 201
    )
    approval = {
        "id": second["id"],
        "decided_by": "Nguyễn Thị C",
        "reason": "Đúng mục đích",
        "rate_limit": "500/day",
    }
    approved = ok(gateway.post("/admin/access-requests/approve", json=approval, headers=ADMIN))
    assert approved["state"] == "approved" and approved["rate_limit"] == "500/day"
    refused(
        gateway.post("/admin/access-requests/approve", json=approval, headers=ADMIN),
        409,
        "access_request_conflict",
    )

    # At once, on every route of the service; not on other services' routes.
    assert ok(gateway.get("/v1/land/parcels", headers=B)) == {"thua_dat": "0101"}
    ok(gateway.get("/v1/land/history", headers=B))
    refused(gateway.get("/v1/old/parcels", headers=B), 403, "forbidden")
    land = ok(gateway.get("/v1/catalogue/land", headers=B))
    assert land["access"] == {
        "granted": True,
        "via": "agreement",
        "expires_at": None,
        "rate_limit": "500/day",
        "latest_request": land["access_requests"][0],
    }
    assert [r["state"] for r in land["access_requests"]] == ["approved", "refused"]

    revoke = {"client": "agency-b", "service": "land", "decided_by": "C", "reason": "Hết nhu cầu"}
    assert (
        ok(gateway.post("/admin/access-requests/revoke", json=revoke, headers=ADMIN))["state"]
        == "revoked"
    )
    refused(gateway.get("/v1/land/parcels", headers=B), 403, "forbidden")

    # Every step is on record, under the request's id: who, when, what, why.
    for request_id, events in (
        (first["id"], ["requested", "refused"]),
        (second["id"], ["requested", "approved", "revoked"]),
    ):
        records = ok(gateway.get(f"/admin/messages?message_id={request_id}", headers=ADMIN))[
            "items"
        ]
        assert [r["operation"] for r in records] == [f"access.{e}" for e in events]
        assert {r["client"] for r in records} == {"agency-b"}
        assert {r["kind"] for r in records} == {"access"}
    lines = gateway.get(f"/admin/messages/export?message_id={first['id']}", headers=ADMIN)
    refusal = json.loads(lines.text.splitlines()[1])
    assert refusal["path"] == "/v1/catalogue/land/access-requests"
    why = json.loads(base64.b64decode(refusal["request_body"]))
    assert why["reason"] == REFUSAL["reason"] and why["decided_by"] == REFUSAL["decided_by"]
    assert why["decision_legal_basis"] == REFUSAL["legal_basis"]
    assert ok(gateway.get("/admin/messages/verify", headers=ADMIN))["ok"] is True


def test_access_requests_export_as_json_and_csv(gateway: TestClient) -> None:  # type: ignore[type-arg]
    ok(ask(gateway), 201)
    ok(gateway.post("/admin/access-requests/refuse", json=REFUSAL, headers=ADMIN))
    as_json = gateway.get("/admin/access-requests/export?format=json", headers=ADMIN)
    assert as_json.headers["content-disposition"] == 'attachment; filename="access-requests.json"'
    (item,) = ok(as_json)["items"]
    assert item["reason"] == REFUSAL["reason"]
    as_csv = gateway.get("/admin/access-requests/export?format=csv&service=land", headers=ADMIN)
    assert as_csv.headers["content-type"].startswith("text/csv")
    (row,) = csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig")))
    assert row["state"] == "refused"
    assert row["decision_legal_basis"] == REFUSAL["legal_basis"]
    assert row["purpose"] == REQUEST["purpose"]
    refused(gateway.get("/admin/access-requests?state=maybe", headers=ADMIN), 400, "malformed_body")
    refused(gateway.get("/admin/access-requests", headers=B), 401, "unauthenticated")


def test_an_approval_ends_at_its_expiry(gateway: TestClient) -> None:  # type: ignore[type-arg]
    ok(ask(gateway), 201)
    past = {
        "client": "agency-b",
        "service": "land",
        "decided_by": "C",
        "expires_at": "2020-01-01T00:00:00+07:00",
    }
    refused(
        gateway.post("/admin/access-requests/approve", json=past, headers=ADMIN),
        400,
        "malformed_body",
    )
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    approval = {**past, "expires_at": ends.isoformat()}
    ok(gateway.post("/admin/access-requests/approve", json=approval, headers=ADMIN))
    ok(gateway.get("/v1/land/parcels", headers=B))
    assert ok(gateway.get("/v1/catalogue/land", headers=B))["access"]["expires_at"] is not None

    time.sleep(max(0.0, ends.timestamp() - time.time()) + 0.1)
    refused(gateway.get("/v1/land/parcels", headers=B), 403, "forbidden")
    (item,) = ok(gateway.get("/admin/access-requests?state=expired", headers=ADMIN))["items"]
    assert item["client"] == "agency-b"
    assert ok(gateway.get("/v1/catalogue/land", headers=B))["access"]["granted"] is False
    ok(ask(gateway), 201)  # an expired approval leaves room for a new request


def test_a_deprecated_service_announces_deprecation_and_sunset(
    gateway: TestClient,  # type: ignore[type-arg]
) -> None:
    for response in (
        gateway.get("/v1/old/parcels", headers=A),
        gateway.get("/v1/old/parcels", headers=B),  # refusals too
    ):
        assert response.headers["deprecation"] == "@1767200400"  # 2026-01-01 00:00 +07:00
        assert response.headers["sunset"] == "Wed, 30 Jun 2027 17:00:00 GMT"
        assert '</v1/catalogue/land-v0>; rel="deprecation"' in response.headers["link"]
        assert '</v1/catalogue/land>; rel="successor-version"' in response.headers["link"]
    assert "deprecation" not in gateway.get("/v1/land/parcels", headers=A).headers


def test_exchange_statistics_per_service_client_and_month(
    gateway: TestClient,  # type: ignore[type-arg]
) -> None:
    for _ in range(3):
        ok(gateway.get("/v1/land/parcels", headers=A))
    refused(gateway.get("/v1/land/history", headers=B), 403, "forbidden")
    ok(gateway.get("/v1/free", headers=A))  # no service: not counted
    items = ok(gateway.get("/admin/statistics", headers=ADMIN))["items"]
    month = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m")
    by_client = {(i["service"], i["client"]): i for i in items}
    assert set(by_client) == {("land", "agency-a"), ("land", "agency-b")}
    a, b = by_client["land", "agency-a"], by_client["land", "agency-b"]
    assert (a["month"], a["calls"], a["errors"]) == (month, 3, 0)
    assert (b["calls"], b["errors"], b["server_errors"]) == (1, 1, 0)
    assert a["bytes_out"] == 3 * len(b'{"thua_dat":"0101"}')
    assert 0 < a["median_ms"] <= a["p95_ms"]

    only_b = ok(gateway.get("/admin/statistics?client=agency-b&service=land", headers=ADMIN))
    assert [i["client"] for i in only_b["items"]] == ["agency-b"]
    later = ok(gateway.get(f"/admin/statistics?since={time.time() + 60}", headers=ADMIN))
    assert later["items"] == []
    as_csv = gateway.get("/admin/statistics?format=csv", headers=ADMIN)
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [(r["service"], r["client"], r["calls"]) for r in rows] == [
        ("land", "agency-a", "3"),
        ("land", "agency-b", "1"),
    ]


# --- the default configuration ------------------------------------------------------------


def test_default_config_has_a_catalogue_of_its_demo_services(
    default_client: TestClient,  # type: ignore[type-arg]
) -> None:
    qlvb = {"x-api-key": QLVB_KEY}
    services = {
        s["id"]: s for s in ok(default_client.get("/v1/catalogue", headers=qlvb))["services"]
    }
    assert {"population-citizens", "dvcqg-dossiers", "documents"} <= set(services)
    assert services["population-citizens"]["access"]["granted"] is False
    assert services["documents"]["access"]["via"] == "configuration"
    motcua = {"x-api-key": MOTCUA_KEY}
    population = ok(default_client.get("/v1/catalogue/population-citizens", headers=motcua))
    assert population["access"]["via"] == "configuration"
    assert population["classification"] == "restricted"
    assert "/v1/population/citizens/lookup" in population["openapi"]["paths"]
