"""A dedicated connection that appends batches of rows to one table, cheaply for the loop.

The message log commits a batch for every group of requests waiting on it, so
its commit latency is every request's latency, and whatever the commit costs
the event loop is taken from every request. Through SQLAlchemy's pool a batch
cost six round trips (checkout, BEGIN, insert, COMMIT, return, ping); here it
is one statement on a connection of its own, so nothing else writes through
it and batches are committed in order:

- PostgreSQL: one binary ``COPY … FROM STDIN`` on an asyncpg connection: one
  atomic statement, committed when it returns (``_PostgresAppender``).
- SQLite: a process of its own (``sqlite_writer``) with its own ``sqlite3``
  connection. The loop pickles the batch into a pipe and awaits the answer;
  the process runs ONE multi-row ``INSERT`` in autocommit mode, so insert,
  commit and fsync are a single ``sqlite3_step``. It was a thread until the
  GIL hand-overs between thread and loop proved to cost the loop more than the
  writing itself (``sqlite_writer``'s docstring has the figures). Waiting for
  another writer's lock (``busy_timeout``) holds nobody but that process.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gateway.store import sqlite_writer
from gateway.store.database import SQLITE_PRAGMAS, Store

CLOSE_TIMEOUT = 10.0
"""Seconds the writer process gets to finish its batch once its input is closed."""

Row = tuple[Any, ...]
"""One row: its values in the order of the appender's ``columns``."""


class Appender(Protocol):
    async def append(self, rows: Sequence[Row]) -> None:
        """Insert and commit ``rows`` atomically, or raise.

        SQLite binds a whole batch in one statement: rows x columns must stay within its
        32,766 parameters (the message log's 500 rows x 28 columns do)."""
        ...

    async def close(self) -> None: ...


def open_appender(store: Store, table: sa.Table, columns: Sequence[str]) -> Appender:
    """An appender of rows of ``columns``: every column of ``table``, in any order."""
    if set(columns) != set(table.c.keys()) or len(columns) != len(table.c):
        raise ValueError(f"{table.name}: rows of {columns} do not fill the table")
    if store.is_postgres:
        return _PostgresAppender(store.url, table.name, columns)
    return _SqliteAppender(store.url, table.name, columns)


class _PostgresAppender:
    """A batch is one binary ``COPY``: asyncpg encodes the rows in C and the server reads them
    without parsing text: 0.11 cores of PostgreSQL against 0.18 for the ``INSERT … SELECT
    FROM json_to_recordset`` it replaced, at the same load (bench/README.md, third pass)."""

    def __init__(self, url: str, table: str, columns: Sequence[str]) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.table = table
        self.columns = list(columns)
        self.connection: Any = None

    async def append(self, rows: Sequence[Row]) -> None:
        import asyncpg

        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(self.dsn)
        try:  # one statement: atomic, and committed when it returns
            await self.connection.copy_records_to_table(
                self.table, records=rows, columns=self.columns
            )
        except Exception:
            await self.close()  # the next batch reconnects
            raise

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()


class AppendFailed(Exception):
    """The writer process refused the batch (``(error type, message)`` from SQLite), or is
    gone; nothing of the batch was acknowledged."""


class _SqliteAppender:
    """Batches go, in order, to a writer process of its own (``sqlite_writer``), started at
    the first batch and again after it dies; each batch is one frame out and one back."""

    def __init__(self, url: str, table: str, columns: Sequence[str]) -> None:
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        row_marks = "(" + ", ".join("?" * len(columns)) + ")"
        path = make_url(url).database or ":memory:"
        self.setup = sqlite_writer.frame((path, SQLITE_PRAGMAS, insert, row_marks))
        self.process: asyncio.subprocess.Process | None = None
        self.turn = asyncio.Lock()  # one batch on the pipe at a time: answers come in order

    async def append(self, rows: Sequence[Row]) -> None:
        batch = sqlite_writer.frame(rows)
        async with self.turn:
            try:
                process = self.process or await self._start()
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(batch)
                head = await process.stdout.readexactly(sqlite_writer.HEADER.size)
                (size,) = sqlite_writer.HEADER.unpack(head)
                reply = pickle.loads(await process.stdout.readexactly(size))
            except BaseException as exc:  # gone, or cancelled mid-batch: start afresh
                await self.close()
                if isinstance(exc, Exception):
                    raise AppendFailed(f"message log writer process: {exc!r}") from exc
                raise
        if reply is not None:
            raise AppendFailed("{}: {}".format(*reply))

    async def _start(self) -> asyncio.subprocess.Process:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", sqlite_writer.__file__,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdin is not None
        self.process.stdin.write(self.setup)
        return self.process

    async def close(self) -> None:
        """Closing its input lets the writer finish the batch it holds and exit."""
        process, self.process = self.process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), CLOSE_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
