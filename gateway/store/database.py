"""Opening a database from a URL, with the settings that make writes durable."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.store.migrations import migrate

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class Store:
    """The database of one gateway process: an async engine and what it speaks."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def migrate(self) -> list[int]:
        return await migrate(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()


def engine_url(url: str, base_dir: str) -> str:
    """``sqlite:///data/x.db`` -> async driver URL, relative paths against ``base_dir``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"storage URL must be sqlite:/// or postgresql://, not {backend}://")
    parsed = parsed.set(drivername=_DRIVERS[backend])
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = parsed.database
        if not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        parsed = parsed.set(database=path)
    return parsed.render_as_string(hide_password=False)


async def open_store(
    url: str, base_dir: str = ".", *, migrate: bool = True, pool_size: int = 10
) -> Store:
    """``pool_size``: connections kept open (PostgreSQL); below the work in flight, each
    transaction would open and close its own."""
    full = engine_url(url, base_dir)
    options: dict[str, Any] = {}
    if full.startswith("postgresql"):
        options = {"pool_size": pool_size, "max_overflow": 10, "pool_pre_ping": True}
    engine = create_async_engine(full, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    store = Store(engine, full)
    if migrate:
        await store.migrate()
    return store


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers do not wait for the writer
    "PRAGMA synchronous=FULL",  # a commit survives power loss, not only a crash
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)
"""Every SQLite connection's, the message log writer's process included."""


def sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
