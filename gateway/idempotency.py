"""``Idempotency-Key`` on POST routes: one key, one effect, one answer.

The first request with a key (per client) reserves it with the SHA-256 of its
body; its final answer is stored with it. A repeat with the same body gets
that answer again (``Idempotency-Replayed: true``) and reaches no upstream; a
repeat with another body is a 409, as is a repeat while the first is still
being processed. Keys are forgotten after ``idempotency.ttl``.
"""

from __future__ import annotations

import time

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gateway.problems import Problem
from gateway.store import Store
from gateway.store.tables import idempotency_keys

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotency-replayed"
MAX_KEY_LENGTH = 255


class Replay(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes
    media_type: str


class IdempotencyStore:
    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl

    async def begin(self, client: str, key: str, route: str, body_sha256: str) -> Replay | None:
        """Reserve ``key``; or the stored answer of its first use; or a 409 ``Problem``."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise Problem(
                "malformed_body", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"
            )
        now = time.time()
        c = idempotency_keys.c
        async with self.store.engine.begin() as connection:
            await connection.execute(
                idempotency_keys.delete().where(
                    c.client == client, c.key == key, c.created_at < now - self.ttl
                )
            )
        try:
            async with self.store.engine.begin() as connection:
                await connection.execute(
                    idempotency_keys.insert().values(
                        client=client,
                        key=key,
                        route=route,
                        request_sha256=body_sha256,
                        state="pending",
                        created_at=now,
                    )
                )
            return None
        except IntegrityError:
            pass
        async with self.store.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(idempotency_keys).where(c.client == client, c.key == key)
                )
            ).one()
        if row.request_sha256 != body_sha256 or row.route != route:
            raise Problem(
                "idempotency_conflict",
                "this Idempotency-Key was used with another request body or route",
            )
        if row.state != "done":
            raise Problem(
                "idempotency_in_progress",
                "the first request with this Idempotency-Key is still being processed",
                headers={"retry-after": "1"},
            )
        headers = msgspec.json.decode(row.headers or "{}", type=dict[str, str])
        return Replay(
            row.status, {**headers, REPLAYED_HEADER: "true"}, row.body or b"", row.media_type
        )

    async def finish(
        self,
        client: str,
        key: str,
        status: int,
        headers: dict[str, str],
        body: bytes,
        media_type: str,
    ) -> None:
        c = idempotency_keys.c
        async with self.store.engine.begin() as connection:
            await connection.execute(
                idempotency_keys.update()
                .where(c.client == client, c.key == key)
                .values(
                    state="done",
                    status=status,
                    headers=msgspec.json.encode(headers).decode(),
                    body=body,
                    media_type=media_type,
                )
            )

    async def release(self, client: str, key: str) -> None:
        """Forget a reservation whose request never reached an upstream (it may be sent again)."""
        c = idempotency_keys.c
        async with self.store.engine.begin() as connection:
            await connection.execute(
                idempotency_keys.delete().where(
                    c.client == client, c.key == key, c.state == "pending"
                )
            )

    async def purge(self) -> int:
        c = idempotency_keys.c
        async with self.store.engine.begin() as connection:
            result = await connection.execute(
                idempotency_keys.delete().where(c.created_at < time.time() - self.ttl)
            )
        return result.rowcount
