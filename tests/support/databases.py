"""Real databases for tests: a SQLite file, or a fresh PostgreSQL database per session.

PostgreSQL is expected at 127.0.0.1:5432 with trust auth (``LGSP_TEST_POSTGRES``
overrides the URL). If it is down, the Debian cluster is started; if it still
cannot be reached, the run fails with the reason: nothing is skipped silently.
"""

from __future__ import annotations

import asyncio
import glob
import os
import subprocess
import time
import uuid

import asyncpg
import pytest

ADMIN_URL = os.environ.get("LGSP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
START_HINT = "pg_ctlcluster --skip-systemctl-redirect <version> main start"


async def _can_connect(url: str) -> str | None:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


def _start_postgres() -> str:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        return "no /etc/postgresql cluster to start"
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return f"{' '.join(command)} -> exit {result.returncode} {result.stderr.strip()}"


def ensure_postgres() -> None:
    problem = asyncio.run(_can_connect(ADMIN_URL))
    if problem is None:
        return
    started = _start_postgres()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        problem = asyncio.run(_can_connect(ADMIN_URL))
        if problem is None:
            return
        time.sleep(0.5)
    pytest.fail(
        f"PostgreSQL is needed at {ADMIN_URL} and cannot be reached ({problem}); "
        f"tried to start it: {started}. Start it ({START_HINT}) or set LGSP_TEST_POSTGRES.",
        pytrace=False,
    )


def create_database() -> str:
    """A new empty database; returns its URL."""
    ensure_postgres()
    name = f"lgsp_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(ADMIN_URL)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        connection = await asyncpg.connect(ADMIN_URL)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())
