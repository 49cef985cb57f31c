"""A loopback HTTP upstream for tests: echoes what it received, fails on demand."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Litestar, Request, Response, get, route


@route("/echo/{rest:path}", http_method=["GET", "POST", "PUT", "DELETE"], status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": dict(request.headers),
        "body": (await request.body()).decode(),
    }


@get("/status/{code:int}")
async def status(request: Request[Any, Any, Any]) -> Response[dict[str, int]]:
    code: int = request.path_params["code"]
    return Response({"status": code}, status_code=code)


@get("/slow")
async def slow() -> dict[str, bool]:
    await asyncio.sleep(2)
    return {"slow": True}


@get("/garbage")
async def garbage() -> Response[bytes]:
    return Response(b"<html>not json", media_type="application/json")


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def upstream_app() -> Litestar:
    return Litestar([echo, status, slow, garbage, healthz])
