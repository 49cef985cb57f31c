"""A mock land registry: two parcels, one under dispute. Plain ASGI, no framework."""

from __future__ import annotations

import json
from typing import Any

PARCELS = {
    "101": {"so_thua": "101", "dien_tich": 120.5, "chu_su_dung": "Lê Văn Tám", "tranh_chap": False},
    "202": {"so_thua": "202", "dien_tich": 88.0, "chu_su_dung": "Phạm Thị Hoa", "tranh_chap": True},
}


def create_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        number = scope["path"].removeprefix("/parcels/")
        record = PARCELS.get(number)
        status, body = (200, record) if record else (404, {"error": "no such parcel"})
        payload = json.dumps(body, ensure_ascii=False).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app
