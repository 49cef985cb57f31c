"""The ``services:`` section: what ``config check`` requires of a catalogue entry, with the
file and line of each error; and ``lgsp-gateway routes`` showing approved agreements."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.cli import main
from gateway.config.loader import ConfigInvalid, load_config
from tests.support.catalogue import B_KEY, REQUEST, catalogue_config
from tests.support.config import BASE_CONFIG, TEST_ADMIN_KEY, write_config

ROUTES = """
upstreams:
  u:
    type: stub
    operations: {{op: {{reply: {{body: {{ok: true}}}}}}}}
routes:
  - {{id: r1, match: {{method: GET, path: /v1/r1}}, clients: [agency-a], upstream: u, operation: op}}
  - {{id: r2, match: {{method: GET, path: /v1/r2}}, clients: [agency-a], upstream: u, operation: op}}
"""


def issues(tmp_path: Path, services: str) -> list[str]:
    path = write_config(tmp_path, BASE_CONFIG + ROUTES + services)
    with pytest.raises(ConfigInvalid) as caught:
        load_config(str(path), {})
    return [str(i).removeprefix(f"{path}:") for i in caught.value.issues]


def test_a_shared_service_must_say_who_owns_it_and_on_what_legal_basis(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
services:
  - id: s1
    name: Dịch vụ một
    routes: [r1]
""",
    )
    required = (
        "description",
        "description_en",
        "owner",
        "classification",
        "fields",
        "legal_basis",
        "sla",
        "contact",
    )
    assert sorted(found) == sorted(
        f"17: services[0].{name}: required for a shared service (shared: true)" for name in required
    )


def test_routes_lifecycle_and_names_are_checked(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
services:
  - id: export
    name: A
    shared: false
    routes: [r1, nope]
    examples:
      - {{route: r2}}
  - id: s2
    name: B
    shared: false
    routes: [r1]
    state: deprecated
    sunset: 2026-01-01
    successor: s2
  - id: s3
    name: C
    shared: false
    routes: [r2]
    state: deprecated
    deprecated_since: 2026-06-01
    sunset: 2026-01-01
  - id: s4
    name: D
    routes: [r2]
    shared: false
    sunset: 2027-01-01
""",
    )
    assert found == [
        "17: services[0].id: 'export' is the catalogue's own",
        "20: services[0].routes[1]: no such route",
        "22: services[0].examples[0].route: not a route of this service",
        "23: services[1].deprecated_since: required for a deprecated service",
        "26: services[1].routes[0]: already in service 'export'",
        "29: services[1].successor: no such other service",
        "36: services[2].sunset: must be after deprecated_since (2026-06-01)",
        "39: services[3].routes[0]: already in service 's3'",
        "41: services[3].sunset: only a deprecated service has this (state: deprecated)",
    ]


def test_routes_command_shows_approved_agreements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = catalogue_config(tmp_path, f"sqlite:///{tmp_path}/gateway.db")
    with TestClient(create_app(str(config))) as gateway:
        asked = gateway.post(
            "/v1/catalogue/land/access-requests", json=REQUEST, headers={"x-api-key": B_KEY}
        )
        approval = {"id": asked.json()["id"], "decided_by": "C"}
        admin = {"x-api-key": TEST_ADMIN_KEY}
        assert gateway.post(
            "/admin/access-requests/approve", json=approval, headers=admin
        ).is_success
    assert main(["routes", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    lookup = next(line for line in lines if line.startswith("land-lookup"))
    assert lookup.split()[3:6] == ["land", "agency-a", "+agency-b"]
    old = next(line for line in lines if line.startswith("old-lookup"))
    assert "+agency-b" not in old
    assert lines[-1].startswith("(+ client: access agreement approved")
