"""Reading and changing the reservation policy."""

from __future__ import annotations

from domain.clock import Clock
from domain.policy import ReservationPolicy
from services.unit_of_work import UnitOfWorkFactory


async def update_policy(
    policy: ReservationPolicy, *, uow: UnitOfWorkFactory, clock: Clock
) -> ReservationPolicy:
    """Replace the policy. Holds already granted keep their expiry; limits apply to new reserves."""
    async with uow() as tx:
        await tx.policy.save(policy, clock.now())
        await tx.commit()
    return policy
