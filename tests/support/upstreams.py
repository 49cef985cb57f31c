"""Loopback upstreams for tests.

``echo_upstream()``: a litestar app that echoes what it received and fails on
demand (``/status/{code}``, ``/slow``, ``/garbage``).

``RecordingUpstream``: honours ``Idempotency-Key`` and records every request it gets.
It is what a well-behaved national system looks like to the delivery worker:
the first request with a key takes effect and its answer is stored; a repeat
of the key (a delivery sent again after a crash) gets the stored answer back
(``Idempotency-Replayed: true``) and takes no effect. The test reads
``requests`` (every request received, repeats included), ``keys`` (how often
each key was received) and ``effects`` (the keys that took effect: the
upstream's dedup by key).

``mode`` switches its behaviour at any time, from the test's thread:

- ``fast``: answer at once;
- ``hold``: keep every request waiting (in flight) until the mode changes;
- ``unavailable``: answer 503 without taking effect.

``RecordingUpstream`` is plain ASGI (no framework) so a thousand deliveries cost the shared
2 cores little.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any, Literal

import msgspec
from litestar import Litestar, Request, Response, get, route

from tests.support.servers import Receive, Scope, Send, lifespan, request_body

Mode = Literal["fast", "hold", "unavailable"]

HOLD_POLL_SECONDS = 0.02


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


def echo_upstream() -> Litestar:
    return Litestar([echo, status, slow, garbage, healthz])


class RecordingUpstream:
    """The ASGI app and what it has seen. Counters are read under ``lock``."""

    def __init__(self) -> None:
        self.mode: Mode = "fast"
        self.lock = threading.Lock()
        self.requests = 0
        self.without_key = 0
        self.keys: Counter[str] = Counter()
        self.effects: dict[str, bytes] = {}
        """Key -> the answer given when it took effect (replayed to repeats)."""
        self.in_flight = 0
        self.replays = 0

    # --- what the test reads ---

    def snapshot(self) -> tuple[int, Counter[str], set[str]]:
        """(requests received, times each key was received, keys that took effect)."""
        with self.lock:
            return self.requests, Counter(self.keys), set(self.effects)

    def held(self) -> int:
        """Requests waiting for the ``hold`` mode to end."""
        with self.lock:
            return self.in_flight

    # --- ASGI ---

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await request_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}')
            return
        key = headers.get("idempotency-key")
        with self.lock:
            self.requests += 1
            if key is None:
                self.without_key += 1
            else:
                self.keys[key] += 1
            self.in_flight += 1
        try:
            while self.mode == "hold":
                await asyncio.sleep(HOLD_POLL_SECONDS)
        finally:
            with self.lock:
                self.in_flight -= 1
        if self.mode == "unavailable" or key is None:
            status = 503 if key is not None else 400
            await _answer(send, status, b'{"error":"try again"}' if key else b'{"error":"no key"}')
            return
        with self.lock:  # the dedup: one effect per key, the same answer for every repeat
            stored = self.effects.get(key)
            if stored is None:
                stored = self.effects[key] = msgspec.json.encode(
                    {"received": key, "bytes": len(body), "effect": len(self.effects) + 1}
                )
                replayed = False
            else:
                self.replays += 1
                replayed = True
        extra = [(b"idempotency-replayed", b"true")] if replayed else []
        await _answer(send, 201 if not replayed else 200, stored, extra)


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except OSError:  # the caller is gone (a gateway killed mid-delivery); the effect stays
        pass
