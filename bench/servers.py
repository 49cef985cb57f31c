"""Servers the benchmark compares the gateway with; each runs as its own process.

    python bench/servers.py noop --port N       # (a) bare litestar app: POST /noop
    python bench/servers.py upstream --port N   # (c) raw-ASGI upstream: POST anything
    python bench/servers.py upstream-edge --port N  # (c2) the same on gateway/edge.py's protocol

Both run under uvicorn with the gateway's own settings (see ``gateway/cli.py``:
one worker, access log off, no server header, log level warning); loop and
HTTP parser are pinned to what uvicorn's "auto" picks for the gateway when
uvicorn[standard] is installed: uvloop and httptools. Loopback only.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from litestar import Litestar, post

HOST = "127.0.0.1"
UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "workers": 1,
    "access_log": False,
    "server_header": False,
    "log_level": "warning",
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@post("/noop", status_code=200)
async def noop() -> dict[str, bool]:
    return {"ok": True}


def noop_app() -> Litestar:
    """Scenario (a): the framework floor, with the gateway's app options."""
    return Litestar(route_handlers=[noop], openapi_config=None, debug=False)


UPSTREAM_BODY = b'{"ton_tai":true,"so_dinh_danh":"001203012345","ho_va_ten":"Nguyen Van An"}'
_UPSTREAM_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(UPSTREAM_BODY)).encode()),
]


async def lifespan(receive: Receive, send: Send) -> None:
    """The ASGI lifespan handshake, for raw apps that have nothing to start."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def upstream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Scenario (c): an upstream as cheap as uvicorn allows; reads the body, answers JSON."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 200 if scope["method"] == "POST" else 405
    await send({"type": "http.response.start", "status": status, "headers": _UPSTREAM_HEADERS})
    await send({"type": "http.response.body", "body": UPSTREAM_BODY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=["noop", "upstream", "upstream-edge"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app: Any = noop_app() if args.kind == "noop" else upstream_app
    settings = edge_settings() if args.kind == "upstream-edge" else UVICORN_SETTINGS
    uvicorn.run(app, host=HOST, port=args.port, **settings)


def edge_settings() -> dict[str, Any]:
    """uvicorn's settings with the gateway's HTTP/1.1 protocol and its default limits."""
    from gateway.config.model import ServerSettings
    from gateway.edge import uvicorn_options

    return {**UVICORN_SETTINGS, **uvicorn_options(ServerSettings())}


if __name__ == "__main__":
    main()
