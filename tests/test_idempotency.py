"""gateway/idempotency.py against the real store: reserve, replay, conflict, in progress, expiry.

The HTTP face (``Idempotency-Replayed``, 409 bodies) is in tests/test_delivery.py; here
each rule of the store is checked on its own, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import sqlalchemy as sa

from gateway.idempotency import MAX_KEY_LENGTH, REPLAYED_HEADER, IdempotencyStore, Replay
from gateway.messagelog import sha256_hex
from gateway.problems import Problem
from gateway.store import open_store
from gateway.store.tables import idempotency_keys

T = TypeVar("T")
TTL = 3600.0
BODY = sha256_hex(b'{"ma_ho_so":"H53.22-260101-0001"}')
OTHER_BODY = sha256_hex(b'{"ma_ho_so":"H53.22-260101-0002"}')


def run(url: str, work: Callable[[IdempotencyStore], Awaitable[T]]) -> T:
    """``work`` on an empty key table (the PostgreSQL database is shared by the session)."""

    async def main() -> T:
        store = await open_store(url)
        try:
            async with store.engine.begin() as connection:
                await connection.execute(idempotency_keys.delete())
            return await work(IdempotencyStore(store, TTL))
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
