from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway import logs
from gateway.app import create_app
from gateway.config.model import LoggingSettings
from tests.support.config import DEFAULT_CONFIG
from tests.support.servers import free_port

# Fixtures that live with their helpers: the signing PKI, the document axis set-up.
pytest_plugins = ["tests.support.signing_pki", "tests.support.document_axis"]

# Tests that read log lines configure their own stream; the rest stay quiet.
logs.configure(LoggingSettings(level="warning"))
# The default config's database goes to a throwaway file, not the repository's data/.
os.environ.setdefault(
    "LGSP_STORAGE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='lgsp-test-')}/gateway.db"
)
# ...and its mock national systems to free ports, not those of a gateway already running.
for variable in ("LGSP_MOCK_DVCQG_PORT", "LGSP_MOCK_POPULATION_PORT", "LGSP_MOCK_AXIS_PORT"):
    os.environ.setdefault(variable, str(free_port()))


@pytest.fixture
def default_client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The gateway on ``config/gateway.yaml``, through litestar's test client."""
    with TestClient(create_app(str(DEFAULT_CONFIG))) as client:
        yield client


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (fails the run if none is reachable)."""
    from tests.support.databases import create_database, drop_database

    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: a SQLite file, or a new PostgreSQL database (for
    gateway processes, which need one no other test writes to)."""
    from tests.support.databases import create_database, drop_database

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/gateway.db"
        return
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """Each storage backend in turn: a SQLite file, then the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
