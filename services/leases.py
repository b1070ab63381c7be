"""Named leases: of several processes, one at a time does a job (the WMS feed, a reconciliation),
and another takes over when the holder stops renewing."""

from __future__ import annotations

from domain.clock import Clock
from services.unit_of_work import UnitOfWorkFactory


async def take(
    uow: UnitOfWorkFactory, name: str, holder: str, clock: Clock, seconds: float
) -> bool:
    """Take or renew the lease for `seconds`; False while another holder has it."""
    async with uow() as tx:
        held = await tx.leases.acquire(name, holder, clock.now(), seconds)
        await tx.commit()
    return held


async def give_up(uow: UnitOfWorkFactory, name: str, holder: str, clock: Clock) -> None:
    async with uow() as tx:
        await tx.leases.release(name, holder, clock.now())
        await tx.commit()
