"""``Idempotency-Key`` on POST routes: one key, one effect, one answer.

The first request with a key (per client) reserves it with the SHA-256 of its
body; its final answer is stored with it. A repeat with the same body gets
that answer again (``Idempotency-Replayed: true``) and reaches no upstream; a
repeat with another body is a 409, as is a repeat while the first is still
being processed. Keys are forgotten after ``idempotency.ttl``.

The stored answer can be a citizen's record, so it is kept sealed: headers
and body encrypted together with AES-256-GCM under a key from
``LGSP_DATA_KEY`` (``id:base64key`` entries, comma-separated: the first
seals, every one opens, so keys rotate), bound to its client and key. With
no ``LGSP_DATA_KEY`` the process makes a key of its own that dies with it:
nothing is ever stored in clear, and an answer sealed by another process (a
restart, another replica) cannot be replayed: that repeat is a 409
``idempotency_not_replayable``. Status and media type stay in clear.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time

import msgspec
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError

from adapters.logs import get_logger
from gateway.problems import Problem
from gateway.store import Store
from gateway.store.tables import idempotency_keys

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotency-replayed"
MAX_KEY_LENGTH = 255
DATA_KEY_VARIABLE = "LGSP_DATA_KEY"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_NONCE = 12

log = get_logger(__name__)


class DataKeys:
    """AES-256-GCM keys by id: ``current`` seals, any of them opens."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        self.keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = current

    @classmethod
    def parse(cls, value: str) -> DataKeys:
        """``"2026b:<base64 of 32 bytes>,2026a:<...>"``; ``ValueError`` saying what is wrong."""
        keys: dict[str, bytes] = {}
        for entry in (e.strip() for e in value.split(",") if e.strip()):
            kid, _, encoded = entry.partition(":")
            if not _KEY_ID.match(kid):
                raise ValueError(
                    f"{DATA_KEY_VARIABLE}: key id {kid!r} is not 1-32 of A-Z a-z 0-9 _.-"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ValueError(f"{DATA_KEY_VARIABLE}: key {kid!r} is not base64") from None
            if len(key) != 32:
                raise ValueError(f"{DATA_KEY_VARIABLE}: key {kid!r} is not 32 bytes")
            keys[kid] = key
        if not keys:
            raise ValueError(f"{DATA_KEY_VARIABLE}: no key")
        return cls(keys, next(iter(keys)))

    @classmethod
    def from_environment(cls) -> DataKeys:
        value = os.environ.get(DATA_KEY_VARIABLE, "")
        if value.strip():
            return cls.parse(value)
        log.warning(
            "data_key_missing",
            detail=f"no {DATA_KEY_VARIABLE}: idempotent answers are sealed with a key of this "
            "process only, and cannot be replayed after a restart or by another replica",
        )
        kid = "process-" + os.urandom(4).hex()
        return cls({kid: AESGCM.generate_key(256)}, kid)

    def seal(self, plaintext: bytes, bound_to: bytes) -> bytes:
        kid = self.current
        nonce = os.urandom(_NONCE)
        return kid.encode() + b":" + nonce + self.keys[kid].encrypt(nonce, plaintext, bound_to)

    def open(self, sealed: bytes, bound_to: bytes) -> bytes | None:
        """The plaintext; None if no key here opens it (another process's, a retired one)."""
        kid, _, rest = sealed.partition(b":")
        aead = self.keys.get(kid.decode("latin-1"))
        if aead is None:
            return None
        try:
            return aead.decrypt(rest[:_NONCE], rest[_NONCE:], bound_to)
        except InvalidTag:
            return None


class Replay(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes
    media_type: str


def _bound_to(client: str, key: str) -> bytes:
    """Authenticated with the sealed answer: a row copied under another key does not open."""
    return msgspec.json.encode([client, key])


class IdempotencyStore:
    def __init__(self, store: Store, ttl: float, keys: DataKeys | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self.keys = keys or DataKeys.from_environment()

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
        opened = self.keys.open(row.body or b"", _bound_to(client, key))
        if opened is None:
            raise Problem(
                "idempotency_not_replayable",
                "the answer to the first request with this Idempotency-Key was sealed with a data "
                "key this gateway does not have; it was answered once and is not repeated",
            )
        headers, body = msgspec.msgpack.decode(opened, type=tuple[dict[str, str], bytes])
        return Replay(row.status, {**headers, REPLAYED_HEADER: "true"}, body, row.media_type)

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
                    headers=None,  # sealed with the body
                    body=self.keys.seal(
                        msgspec.msgpack.encode((headers, body)), _bound_to(client, key)
                    ),
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
