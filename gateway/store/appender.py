"""A dedicated connection that appends batches of rows to one table, fast.

The message log commits a batch for every group of requests waiting on it, so
its commit latency is every request's latency. Through SQLAlchemy's pool a
batch cost six round trips (checkout, BEGIN, insert, COMMIT, return, ping);
this is one: an ``executemany`` on a connection of its own (asyncpg runs it
as one atomic, pipelined statement), or, for SQLite, an insert and commit on
a ``sqlite3`` connection of its own. Nothing else writes through it, so
batches are committed in order.

The SQLite commit runs on the event loop's thread, holding the loop for one
fsync (0.3-0.6 ms per batch here). Handing it to a thread cost more than
that: the loop and the thread contend for the GIL on every batch, and the
gateway served 59 % of its log-off throughput that way against 74 % on the
loop (bench/storage.py). A disk whose fsync takes milliseconds is one to
leave for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gateway.store.database import Store, sqlite_pragmas

LOCK_WAIT_SECONDS = 5.0
"""How long a SQLite batch waits for another writer (the delivery queue) to commit."""


class Appender(Protocol):
    async def append(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert and commit ``rows`` (in ``columns`` order) atomically, or raise."""
        ...

    async def close(self) -> None: ...


def open_appender(store: Store, table: sa.Table) -> Appender:
    columns = [column.name for column in table.c]
    names = ", ".join(columns)
    if store.is_postgres:
        values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        return _PostgresAppender(store.url, f"INSERT INTO {table.name} ({names}) VALUES ({values})")
    marks = ", ".join("?" for _ in columns)
    return _SqliteAppender(store.url, f"INSERT INTO {table.name} ({names}) VALUES ({marks})")


class _PostgresAppender:
    def __init__(self, url: str, statement: str) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.statement = statement
        self.connection: Any = None

    async def append(self, rows: Sequence[tuple[Any, ...]]) -> None:
        import asyncpg

        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(self.dsn)
        try:
            await self.connection.executemany(self.statement, rows)
        except Exception:
            await self.close()  # the next batch reconnects
            raise

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()


class _SqliteAppender:
    def __init__(self, url: str, statement: str) -> None:
        self.path = make_url(url).database or ":memory:"
        self.statement = statement
        self.connection: sqlite3.Connection | None = None

    async def append(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.connection is None:
            self.connection = sqlite3.connect(self.path, timeout=0)
            sqlite_pragmas(self.connection, None)
            # Never wait for the write lock inside SQLite: that would hold the loop, and
            # the transaction holding the lock may need the loop to reach its COMMIT.
            self.connection.execute("PRAGMA busy_timeout=0")
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                with self.connection:  # one transaction: committed, or rolled back and raised
                    self.connection.executemany(self.statement, rows)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.001)  # another writer has the lock: let it finish

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
