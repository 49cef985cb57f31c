"""A dedicated connection that appends batches of rows to one table, cheaply for the loop.

The message log commits a batch for every group of requests waiting on it, so
its commit latency is every request's latency, and whatever the commit costs
the event loop is taken from every request. Through SQLAlchemy's pool a batch
cost six round trips (checkout, BEGIN, insert, COMMIT, return, ping); here it
is one statement on a connection of its own, so nothing else writes through
it and batches are committed in order:

- PostgreSQL: one binary ``COPY … FROM STDIN`` on an asyncpg connection: one
  atomic statement, committed when it returns (``_PostgresAppender``).
- SQLite: a thread with its own ``sqlite3`` connection. The loop hands it the
  batch and awaits a future; the thread runs ONE multi-row ``INSERT`` in
  autocommit mode, so insert, commit and fsync happen inside a single
  ``sqlite3_step`` with the GIL released. ``executemany`` would not do: it
  releases and retakes the GIL for every row, and a thread retaking the GIL
  from a busy loop can wait up to the interpreter's switch interval (5 ms)
  each time. Here the thread takes the GIL twice per batch (to bind, then to hand
  the result back), and waiting for another writer's lock (``busy_timeout``)
  holds nobody but the thread.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import queue
import sqlite3
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gateway.store.database import Store, sqlite_pragmas

Row = dict[str, Any]
"""One row: column name -> value (every column of the table)."""


class Appender(Protocol):
    async def append(self, rows: Sequence[Row]) -> None:
        """Insert and commit ``rows`` atomically, or raise.

        SQLite binds a whole batch in one statement: rows x columns must stay within its
        32,766 parameters (the message log's 500 rows x 26 columns do)."""
        ...

    async def close(self) -> None: ...


def open_appender(store: Store, table: sa.Table) -> Appender:
    if store.is_postgres:
        return _PostgresAppender(store.url, table)
    return _SqliteAppender(store.url, table)


class _PostgresAppender:
    """A batch is one binary ``COPY``: asyncpg encodes the rows in C and the server reads them
    without parsing text: 0.11 cores of PostgreSQL against 0.18 for the ``INSERT … SELECT
    FROM json_to_recordset`` it replaced, at the same load (bench/README.md, third pass)."""

    def __init__(self, url: str, table: sa.Table) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.table = table.name
        self.columns = [column.name for column in table.c]
        self.values = operator.itemgetter(*self.columns)
        self.connection: Any = None

    async def append(self, rows: Sequence[Row]) -> None:
        import asyncpg

        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(self.dsn)
        try:  # one statement: atomic, and committed when it returns
            await self.connection.copy_records_to_table(
                self.table, records=[self.values(row) for row in rows], columns=self.columns
            )
        except Exception:
            await self.close()  # the next batch reconnects
            raise

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()


_Job = tuple[str, list[Any], asyncio.AbstractEventLoop, "asyncio.Future[None]"]
"""The statement, its values, and where to say it is done."""


class _SqliteAppender:
    """Batches go to one writer thread, in order; each comes back as its future's result."""

    def __init__(self, url: str, table: sa.Table) -> None:
        self.path = make_url(url).database or ":memory:"
        names = [column.name for column in table.c]
        self.insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
        self.row_marks = "(" + ", ".join("?" * len(names)) + ")"
        self.values = operator.itemgetter(*names)
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None

    async def append(self, rows: Sequence[Row]) -> None:
        if self.thread is None:  # daemon: a process that exits without close() does not hang
            self.thread = threading.Thread(
                target=self._work, name="message-log-sqlite", daemon=True
            )
            self.thread.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # Bound here, on the loop: the thread holds the GIL only to hand them to sqlite3, and
        # every moment it holds the GIL the loop waits.
        statement = _multi_row(self.insert, self.row_marks, len(rows))
        values = [value for row in rows for value in self.values(row)]
        self.jobs.put((statement, values, loop, done))
        await done

    async def close(self) -> None:
        thread, self.thread = self.thread, None
        if thread is not None:
            self.jobs.put(None)
            await asyncio.to_thread(thread.join)

    # --- in the writer thread -------------------------------------------------------

    def _work(self) -> None:
        connection: sqlite3.Connection | None = None
        while (job := self.jobs.get()) is not None:
            statement, values, loop, done = job
            error: BaseException | None = None
            try:
                if connection is None:
                    connection = self._connect()
                connection.execute(statement, values)
            except Exception as exc:  # handed to the loop: the batch's requests get 503
                error = exc
            loop.call_soon_threadsafe(_settle, done, error)
        if connection is not None:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        # Autocommit: a single INSERT is its own transaction, committed in the same step.
        connection = sqlite3.connect(self.path, isolation_level=None)
        sqlite_pragmas(connection, None)  # WAL, synchronous=FULL, busy_timeout
        return connection


@lru_cache(maxsize=128)  # as many as sqlite3 keeps compiled
def _multi_row(insert: str, row_marks: str, count: int) -> str:
    return insert + ", ".join(itertools.repeat(row_marks, count))


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the waiter was cancelled (shutdown)
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
