"""What every mock national system shares: request counters, faults on demand, serving.

A mock is a plain ASGI app (litestar) that speaks one national protocol.
``MockKit.wrap`` puts it behind a middleware that

- names each request's *operation* (the mock says how: a path, a JSON field,
  a SOAP body element) and counts it, so a test can prove that a request
  never reached the national system;
- applies the faults set on demand: latency, an HTTP error with a body in the
  protocol's own shape, a dropped connection (closed without an answer);
- serves a control API under ``/__mock/``::

      GET    /__mock/stats    {"requests": {"<operation>": n, ...}, "total": n}
      POST   /__mock/faults   one Fault (JSON); faults apply in the order set
      DELETE /__mock/faults   clear them
      POST   /__mock/reset    clear faults and counters, and the mock's own state

A mock adds its own control endpoints (e.g. expiring the portal's sessions)
by handling paths under ``/__mock/`` in its app; the kit passes on what it
does not know.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from adapters.units import Duration, seconds

CONTROL_PREFIX = "/__mock/"

OperationOf = Callable[[Scope, bytes], str]
"""Names the operation of a request from its scope and body (``""`` when unknown)."""


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fault, matched against each request in turn."""

    operation: str | None = None
    """Only requests of this operation; none: every request."""
    latency: Duration | None = None
    """Wait this long first (then answer normally unless another field says otherwise)."""
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    """Answer this HTTP status instead of the mock's answer..."""
    body: Any = None
    """...with this body: JSON for a mapping or list, as-is for a string (SOAP faults)."""
    content_type: str = "application/json"
    drop: bool = False
    """Close the connection without any answer."""
    times: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Apply to the next N matching requests only; none: until cleared."""
    rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    """Probability that a matching request is affected."""


class MockKit:
    def __init__(self, operation_of: OperationOf, reset: Callable[[], None] | None = None) -> None:
        self.operation_of = operation_of
        self.on_reset = reset
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def reset(self) -> None:
        self.faults.clear()
        self.requests.clear()
        if self.on_reset is not None:
            self.on_reset()

    def stats(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "total": sum(self.requests.values())}

    def _due(self, operation: str) -> list[Fault]:
        """The faults this request gets; those with ``times`` count down."""
        due = []
        for fault in list(self.faults):
            if fault.operation not in (None, operation) or random.random() >= fault.rate:
                continue
            due.append(fault)
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
        return due

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            body = await _read(receive)
            path: str = scope["path"]
            if path.startswith(CONTROL_PREFIX) and await self._control(scope, body, send):
                return
            operation = self.operation_of(scope, body)
            self.requests[operation] += 1
            for fault in self._due(operation):
                if fault.latency is not None:
                    await asyncio.sleep(seconds(fault.latency))
                if fault.drop:
                    _drop(send)
                    return
                if fault.status is not None:
                    await _answer(send, fault.status, fault.body, fault.content_type)
                    return
            await app(scope, _replay(body, receive), send)

        return asgi

    async def _control(self, scope: Scope, body: bytes, send: Send) -> bool:
        method = cast(HTTPScope, scope)["method"]
        path = scope["path"].removeprefix(CONTROL_PREFIX)
        if (method, path) == ("GET", "stats"):
            await _answer(send, 200, self.stats())
        elif (method, path) == ("POST", "faults"):
            try:
                self.add_fault(msgspec.json.decode(body, type=Fault))
            except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
                await _answer(send, 422, {"error": str(exc)})
                return True
            await _answer(send, 201, {"faults": len(self.faults)})
        elif (method, path) == ("DELETE", "faults"):
            self.faults.clear()
            await _answer(send, 200, {"faults": 0})
        elif (method, path) == ("POST", "reset"):
            self.reset()
            await _answer(send, 200, {"reset": True})
        else:
            return False
        return True


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(cast(bytes, message.get("body", b"")))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the real channel (a streaming answer waits for disconnect)."""
    sent = False

    async def replay() -> ReceiveMessage:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        request: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
        return request

    return replay


async def _answer(send: Send, status: int, body: Any, content_type: str = "") -> None:
    if isinstance(body, str | bytes):
        data = body.encode() if isinstance(body, str) else body
        content_type = content_type or "text/plain; charset=utf-8"
    else:
        data = msgspec.json.encode(body)
        content_type = "application/json"
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", b"%d" % len(data)),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": data, "more_body": False})


def _drop(send: Send) -> None:
    """Close the TCP connection under uvicorn without answering (a network failure)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("mock fault: drop")  # not under uvicorn: fail loudly
    transport.abort()


class MockServer(msgspec.Struct, frozen=True):
    name: str
    app: ASGIApp
    host: str
    port: int


async def serve(servers: list[MockServer], started: Callable[[], Awaitable[None]]) -> None:
    """Run mock servers in this event loop until cancelled; ``started`` once all listen.

    The sockets are bound here first, so that a port in use is an ``OSError``
    naming the mock, not a uvicorn exit from inside a task.
    """
    import uvicorn

    sockets = [_listen(s) for s in servers]
    instances = [
        uvicorn.Server(uvicorn.Config(s.app, log_config=None, lifespan="on", access_log=False))
        for s in servers
    ]
    for instance in instances:  # the caller owns signals: Ctrl-C cancels this coroutine
        instance.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    tasks = [
        asyncio.create_task(instance.serve(sockets=[sock]))
        for instance, sock in zip(instances, sockets, strict=True)
    ]
    try:
        while not all(instance.started for instance in instances):
            await asyncio.sleep(0.02)
        await started()
        await asyncio.wait(tasks)  # unlike gather, being cancelled leaves the servers running...
    finally:
        for instance in instances:  # ...so that they can stop gracefully here
            instance.should_exit = True
        await asyncio.wait(tasks, timeout=5)
        for sock in sockets:
            sock.close()


def _listen(server: MockServer) -> socket.socket:
    try:
        sock = socket.create_server((server.host, server.port), reuse_port=False)
    except OSError as exc:
        where = f"{server.host}:{server.port}"
        raise OSError(f"mock {server.name} cannot listen on {where}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock
