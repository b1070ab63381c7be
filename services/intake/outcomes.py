"""Finishing an intake message: its status recorded and, in the same transaction, an
`IntakeOutcome` event in the outbox for ops (`intakeEvents`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.events import IntakeOutcome
from domain.intake import ChannelOrder, Decision, IntakeMessage, IntakeStatus
from services.unit_of_work import UnitOfWork


async def finish(
    tx: UnitOfWork,
    message: IntakeMessage,
    status: IntakeStatus,
    now: datetime,
    *,
    decisions: Sequence[Decision] = (),
    order: ChannelOrder | None = None,
    error_code: str | None = None,
    error: str | None = None,
    group_id: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    await tx.intake.finish(
        message.id,
        status,
        now,
        decisions=decisions,
        order=order,
        error_code=error_code,
        error=error,
        group_id=group_id,
        next_attempt_at=next_attempt_at,
    )
    external_id = order.external_id if order is not None else message.external_id
    await tx.outbox.add(
        [
            IntakeOutcome(
                message_id=message.id,
                channel=message.channel.value,
                account=message.account,
                status=status.value,
                occurred_at=now,
                error_code=error_code,
                external_id=external_id,
                group_id=group_id or message.reservation_group_id,
            )
        ]
    )
