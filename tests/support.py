"""Test helpers: real servers on loopback, config files in temp dirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
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
def serve_in_thread(app: Any, port: int | None = None, **options: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on loopback; yields its base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. ``ssl_certfile`` for HTTPS).
    """
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None, **options)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        scheme = "https" if "ssl_certfile" in options else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def lifespan(receive: Any, send: Any) -> None:
    """The ASGI lifespan handshake, for raw test apps that have nothing to start."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


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


@contextmanager
def gateway_process(
    config: Path, port: int, *, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``lgsp-gateway serve`` as a real process on loopback, stopped afterwards."""
    environ = {**os.environ, "LGSP_LOG_LEVEL": "info", **(env or {})}
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start within 20 s")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            output.close()  # type: ignore[union-attr]
