"""gateway/idempotency.py against the real store: reserve, replay, conflict, in progress, expiry.

The HTTP face (``Idempotency-Replayed``, 409 bodies) is in tests/test_delivery.py; here
each rule of the store is checked on its own, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import sqlalchemy as sa

from gateway.idempotency import (
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    DataKeys,
    IdempotencyStore,
    Replay,
)
from gateway.messagelog import sha256_hex
from gateway.problems import Problem
from gateway.store import open_store
from gateway.store.tables import idempotency_keys

T = TypeVar("T")
TTL = 3600.0
BODY = sha256_hex(b'{"ma_ho_so":"H53.22-260101-0001"}')
OTHER_BODY = sha256_hex(b'{"ma_ho_so":"H53.22-260101-0002"}')


def run(
    url: str,
    work: Callable[[IdempotencyStore], Awaitable[T]],
    keys: DataKeys | None = None,
    *,
    clear: bool = True,
) -> T:
    """``work`` on an empty key table (the PostgreSQL database is shared by the session)."""

    async def main() -> T:
        store = await open_store(url)
        try:
            if clear:
                async with store.engine.begin() as connection:
                    await connection.execute(idempotency_keys.delete())
            return await work(IdempotencyStore(store, TTL, keys))
        finally:
            await store.close()

    return asyncio.run(main())


async def answer(keys: IdempotencyStore, client: str = "motcua", key: str = "k-1") -> None:
    """What the pipeline does once the first request has its answer."""
    await keys.finish(
        client, key, 201, {"location": "/v1/dossiers/1"}, b'{"id":1}', "application/json"
    )


async def age(keys: IdempotencyStore, seconds: float) -> None:
    """Move every reservation ``seconds`` into the past (no waiting in tests)."""
    c = idempotency_keys.c
    async with keys.store.engine.begin() as connection:
        await connection.execute(
            idempotency_keys.update().values(created_at=c.created_at - seconds)
        )


async def problem_of(call: Awaitable[object]) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


def test_first_use_reserves_and_a_repeat_gets_the_stored_answer(storage_url: str) -> None:
    async def work(keys: IdempotencyStore) -> tuple[Replay | None, Replay | None, Replay | None]:
        first = await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await answer(keys)
        return (
            first,
            await keys.begin("motcua", "k-1", "dossier-create", BODY),
            await keys.begin("motcua", "k-1", "dossier-create", BODY),
        )

    first, again, third = run(storage_url, work)
    assert first is None  # reserved: the request goes ahead
    assert (
        again
        == third
        == Replay(
            status=201,
            headers={"location": "/v1/dossiers/1", REPLAYED_HEADER: "true"},
            body=b'{"id":1}',
            media_type="application/json",
        )
    )


def test_the_same_key_with_another_body_or_route_is_a_conflict(storage_url: str) -> None:
    async def work(keys: IdempotencyStore) -> tuple[Problem, Problem]:
        await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await answer(keys)
        return (
            await problem_of(keys.begin("motcua", "k-1", "dossier-create", OTHER_BODY)),
            await problem_of(keys.begin("motcua", "k-1", "payment-create", BODY)),
        )

    other_body, other_route = run(storage_url, work)
    assert other_body.code == other_route.code == "idempotency_conflict"
    assert other_body.status == 409


def test_a_repeat_while_the_first_is_processed_is_told_to_retry(storage_url: str) -> None:
    async def work(keys: IdempotencyStore) -> tuple[Problem, Replay | None]:
        await keys.begin("motcua", "k-1", "dossier-create", BODY)
        busy = await problem_of(keys.begin("motcua", "k-1", "dossier-create", BODY))
        await answer(keys)
        return busy, await keys.begin("motcua", "k-1", "dossier-create", BODY)

    busy, after = run(storage_url, work)
    assert (busy.code, busy.status) == ("idempotency_in_progress", 409)
    assert busy.headers == {"retry-after": "1"}
    assert after is not None and after.status == 201  # once finished, it replays


def test_keys_belong_to_one_client(storage_url: str) -> None:
    async def work(keys: IdempotencyStore) -> tuple[Replay | None, Replay | None]:
        await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await answer(keys)
        theirs = await keys.begin("qlvb", "k-1", "dossier-create", OTHER_BODY)
        return theirs, await keys.begin("motcua", "k-1", "dossier-create", BODY)

    theirs, ours = run(storage_url, work)
    assert theirs is None  # another client's "k-1" is a new key
    assert ours is not None and ours.body == b'{"id":1}'


def test_an_expired_key_is_forgotten_and_purged(storage_url: str) -> None:
    async def work(keys: IdempotencyStore) -> tuple[int, Replay | None, int, Replay | None]:
        await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await answer(keys)
        await keys.begin("motcua", "k-2", "dossier-create", BODY)
        await age(keys, TTL - 60)
        purged_early = await keys.purge()  # within the ttl: nothing goes
        kept = await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await age(keys, 120)
        reused = await keys.begin("motcua", "k-1", "dossier-create", OTHER_BODY)
        purged = await keys.purge()  # k-2 only: k-1 was taken again just now
        return purged_early, kept, purged, reused

    purged_early, kept, purged, reused = run(storage_url, work)
    assert purged_early == 0
    assert kept is not None and kept.status == 201
    assert reused is None  # past the ttl, even another body starts afresh
    assert purged == 1


@pytest.mark.parametrize("key", ["", "x" * (MAX_KEY_LENGTH + 1)])
def test_an_empty_or_overlong_key_is_refused_before_the_store(key: str, tmp_path: object) -> None:
    async def work(keys: IdempotencyStore) -> tuple[Problem, int]:
        refused = await problem_of(keys.begin("motcua", key, "dossier-create", BODY))
        async with keys.store.engine.connect() as connection:
            count = (
                await connection.execute(sa.select(sa.func.count()).select_from(idempotency_keys))
            ).scalar_one()
        return refused, count

    refused, rows = run(f"sqlite:///{tmp_path}/gateway.db", work)
    assert (refused.code, refused.status) == ("malformed_body", 400)
    assert str(MAX_KEY_LENGTH) in refused.detail
    assert rows == 0


def data_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def test_stored_answers_are_sealed_and_keys_rotate(tmp_path: object) -> None:
    """Old key ids still open what they sealed; the first id seals what is new."""
    old, new = data_key("2026a"), data_key("2026b")
    url = f"sqlite:///{tmp_path}/keys.db"

    async def first(keys: IdempotencyStore) -> bytes:
        await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await answer(keys)
        async with keys.store.engine.connect() as connection:
            row = (await connection.execute(sa.select(idempotency_keys))).one()
        return bytes(row.body) + (row.headers or "").encode()

    stored = run(url, first, DataKeys.parse(old))
    assert stored.startswith(b"2026a:") and b'"id":1' not in stored and b"location" not in stored

    async def after_rotation(keys: IdempotencyStore) -> Replay | None:
        return await keys.begin("motcua", "k-1", "dossier-create", BODY)

    replay = run(url, after_rotation, DataKeys.parse(f"{new},{old}"), clear=False)
    assert replay is not None and replay.body == b'{"id":1}'
    assert DataKeys.parse(f"{new},{old}").seal(b"x", b"k").startswith(b"2026b:")


def test_an_answer_sealed_with_a_key_not_held_is_not_replayed(tmp_path: object) -> None:
    """No LGSP_DATA_KEY: each process seals with its own key, and another cannot replay."""
    url = f"sqlite:///{tmp_path}/keys.db"

    async def first(keys: IdempotencyStore) -> None:
        await keys.begin("motcua", "k-1", "dossier-create", BODY)
        await answer(keys)

    async def repeat(keys: IdempotencyStore) -> Problem:
        return await problem_of(keys.begin("motcua", "k-1", "dossier-create", BODY))

    run(url, first, DataKeys.from_environment())
    problem = run(url, repeat, DataKeys.from_environment(), clear=False)
    assert (problem.code, problem.status) == ("idempotency_not_replayable", 409)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("k1:short", "not base64"),
        (f"k1:{base64.b64encode(b'x' * 16).decode()}", "not 32 bytes"),
        (f"bad id:{base64.b64encode(b'x' * 32).decode()}", "key id"),
        (" , ", "no key"),
    ],
)
def test_a_malformed_data_key_is_refused_saying_why(value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        DataKeys.parse(value)
