"""A named lease in the database: one holder at a time among the processes sharing it.

``take`` acquires a free or expired lease, or renews one already held, in one
statement (an upsert whose update applies only then), so two processes racing
for it cannot both win. A holder that dies stops renewing; the lease expires
and the next ``take`` of another process wins it.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.database import Store
from gateway.store.tables import leases


class Lease:
    def __init__(self, store: Store, name: str, holder: str, seconds: float) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.seconds = seconds

    async def take(self) -> bool:
        """Acquire or renew for ``seconds`` from now; False while another process holds it."""
        now = time.time()
        dialect = postgresql if self.store.is_postgres else sqlite
        insert = dialect.insert(leases).values(
            name=self.name, holder=self.holder, expires_at=now + self.seconds, taken_at=now
        )
        mine = leases.c.holder == insert.excluded.holder
        upsert = insert.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={
                "holder": insert.excluded.holder,
                "expires_at": insert.excluded.expires_at,
                "taken_at": sa.case((mine, leases.c.taken_at), else_=insert.excluded.taken_at),
            },
            where=sa.or_(mine, leases.c.expires_at < now),
        ).returning(leases.c.holder)
        async with self.store.engine.begin() as connection:
            return (await connection.execute(upsert)).first() is not None

    async def release(self) -> None:
        """Give the lease up now (a graceful stop): another process takes it at its next try."""
        c = leases.c
        async with self.store.engine.begin() as connection:
            await connection.execute(
                leases.delete().where(c.name == self.name, c.holder == self.holder)
            )

    async def holder_now(self) -> str | None:
        """Who holds it now (None if nobody, or the holder let it expire)."""
        c = leases.c
        query = sa.select(c.holder).where(c.name == self.name, c.expires_at >= time.time())
        async with self.store.engine.connect() as connection:
            return (await connection.execute(query)).scalar()
