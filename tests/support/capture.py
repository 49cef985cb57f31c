"""An upstream that answers 200 JSON to anything and keeps the headers of every request."""

from __future__ import annotations

from typing import Any

from tests.support.servers import Receive, Scope, Send, lifespan


class HeaderCapture:
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        while (await receive()).get("more_body", False):
            pass
        self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        body = b'{"ok":true}'
        headers: list[Any] = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
