"""Named leases in the database: one holder at a time, until the lease runs out or is given up."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.tables import insert_on_conflict, worker_leases


class LeaseRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def acquire(self, name: str, holder: str, now: datetime, seconds: float) -> bool:
        """Take or keep the named lease until now + seconds; False if another holder has it."""
        until = now + timedelta(seconds=seconds)
        result = await self.conn.execute(
            sa.update(worker_leases)
            .where(
                worker_leases.c.name == name,
                sa.or_(worker_leases.c.holder == holder, worker_leases.c.expires_at <= now),
            )
            .values(holder=holder, expires_at=until)
        )
        if result.rowcount == 1:
            return True
        stmt = (
            insert_on_conflict(self.conn, worker_leases)
            .values(name=name, holder=holder, expires_at=until)
            .on_conflict_do_nothing(index_elements=[worker_leases.c.name])
        )
        return (await self.conn.execute(stmt)).rowcount == 1

    async def release(self, name: str, holder: str, now: datetime) -> None:
        await self.conn.execute(
            sa.update(worker_leases)
            .where(worker_leases.c.name == name, worker_leases.c.holder == holder)
            .values(expires_at=now)
        )
