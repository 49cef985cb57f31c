"""Redis for tests that share rate-limit counters between processes.

Expected at 127.0.0.1:6379 (``LGSP_TEST_REDIS`` overrides the URL). If it is
down, ``redis-server`` is started on that port; if it still cannot be
reached, the run fails with the reason: nothing is skipped silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import redis

URL = os.environ.get("LGSP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _problem() -> str | None:
    try:
        redis.Redis.from_url(URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def ensure_redis() -> str:
    """The URL of a reachable Redis."""
    problem = _problem()
    if problem is None:
        return URL
    binary = shutil.which("redis-server")
    if binary is None:
        started = "no redis-server binary"
    else:
        port = URL.rsplit(":", 1)[1].split("/")[0]
        command = [binary, "--port", port, "--bind", "127.0.0.1", "--daemonize", "yes"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        started = f"{' '.join(command)} -> exit {result.returncode} {result.stderr.strip()}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        problem = _problem()
        if problem is None:
            return URL
        time.sleep(0.2)
    pytest.fail(
        f"Redis is needed at {URL} and cannot be reached ({problem}); tried to start it: "
        f"{started}. Start redis-server or set LGSP_TEST_REDIS.",
        pytrace=False,
    )
