"""Two gateway processes on one PostgreSQL: an approval given through one is applied by the
other (within ``GRANTS_TTL_SECONDS``), and so is its revocation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from gateway.catalogue.access import GRANTS_TTL_SECONDS
from tests.support.catalogue import B_KEY, REQUEST, catalogue_config
from tests.support.config import TEST_ADMIN_KEY
from tests.support.databases import create_database, drop_database
from tests.support.processes import gateway_process
from tests.support.servers import free_port

pytestmark = pytest.mark.processes

B = {"x-api-key": B_KEY}
ADMIN = {"x-api-key": TEST_ADMIN_KEY}


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = create_database()
    config = catalogue_config(tmp_path, url)
    ports = free_port(), free_port()
    try:
        with ExitStack() as stack:
            for port in ports:
                stack.enter_context(gateway_process(config, port))
            yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        drop_database(url)


def status_once_settled(url: str) -> int:
    """The answer once the TTL has passed: the next call then reads the database again (not a
    race: a process re-reads on the first call after its TTL, whatever the machine's speed)."""
    time.sleep(GRANTS_TTL_SECONDS + 0.2)
    return httpx.get(f"{url}/v1/land/parcels", headers=B).status_code


def test_an_approval_on_one_replica_is_applied_by_the_other(replicas: tuple[str, str]) -> None:
    first, second = replicas
    assert httpx.get(f"{second}/v1/land/parcels", headers=B).status_code == 403

    asked = httpx.post(f"{first}/v1/catalogue/land/access-requests", json=REQUEST, headers=B)
    assert asked.status_code == 201, asked.text
    approval = {"id": asked.json()["id"], "decided_by": "C", "rate_limit": "100/minute"}
    approved = httpx.post(f"{first}/admin/access-requests/approve", json=approval, headers=ADMIN)
    assert approved.status_code == 200, approved.text

    assert httpx.get(f"{first}/v1/land/parcels", headers=B).status_code == 200  # at once here
    assert status_once_settled(second) == 200
    seen = httpx.get(f"{second}/v1/catalogue/land", headers=B).json()["access"]
    assert (seen["via"], seen["rate_limit"]) == ("agreement", "100/minute")

    revoke = {"id": asked.json()["id"], "decided_by": "C", "reason": "Kết thúc thử nghiệm"}
    revoked = httpx.post(f"{second}/admin/access-requests/revoke", json=revoke, headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    assert status_once_settled(first) == 403
