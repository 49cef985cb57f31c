from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.support import DEFAULT_CONFIG

os.environ.setdefault("LGSP_LOG_LEVEL", "warning")


@pytest.fixture
def default_client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The gateway on ``config/gateway.yaml``, through litestar's test client."""
    with TestClient(create_app(str(DEFAULT_CONFIG))) as client:
        yield client
