"""Test helpers: real servers on loopback, config files in temp dirs."""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from gateway.auth import hash_key

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "gateway.yaml"

MOTCUA_KEY = "lgsp_demo_motcua_2026"
QLVB_KEY = "lgsp_demo_qlvb_2026"
ADMIN_KEY = "lgsp_demo_admin_2026"
TEST_KEY = "test-key-0123456789"
TEST_ADMIN_KEY = "test-admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app with uvicorn on loopback; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def write_config(directory: Path, text: str, name: str = "gateway.yaml") -> Path:
    """Write a YAML file (dedented); ``{test_key}`` etc. are filled with key hashes."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        textwrap.dedent(text).format(
            test_key=hash_key(TEST_KEY), admin_key=hash_key(TEST_ADMIN_KEY)
        ),
        encoding="utf-8",
    )
    return path


BASE_CONFIG = """\
admin:
  api_keys: [{admin_key}]
clients:
  - id: agency-a
    name: Agency A
    api_keys: [{test_key}]
"""
