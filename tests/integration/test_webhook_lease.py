"""The lease on a claimed batch of POS webhook deliveries: long enough for the batch to be sent
at the sender's timeout (no other replica claims it meanwhile and sends it twice), and no longer
(what a process that died mid-batch had claimed is sent again once it ends, and not before).

The crash test (test_crash_recovery) shows the same with a real process killed mid-request; here
the clock is the test's and the death is an exception no handler catches."""

from __future__ import annotations

import uuid

import pytest

from domain.events import PendingEvent
from domain.webhooks import WebhookTarget
from services import webhooks
from services.unit_of_work import UnitOfWorkFactory
from services.webhooks import BATCH_SIZE, PARALLEL_REQUESTS, deliver_due, lease_seconds
from tests.clock import FakeClock
from tests.helpers import given_stores, store_at

SECRET = "s001-pos-webhook-secret-lease"
TIMEOUT = 1.0  # the sender's timeout, in seconds
EVENTS = 30  # more than PARALLEL_REQUESTS: the batch goes out in two rounds


class Killed(BaseException):
    """The process dies: no `except Exception` in the deliverer sees it."""


class Dying:
    """A sender whose process dies on its third request: what it claimed is left claimed."""

    def __init__(self) -> None:
        self.posts = 0

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts += 1
        if self.posts == 3:
            raise Killed
        return 200


class Pos:
    """A sender whose POS takes every request: the event ids, in the order they came."""

    def __init__(self) -> None:
        self.event_ids: list[str] = []

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.event_ids.append(headers["X-Ropos-Event-Id"])
        return 200


@pytest.mark.parametrize("timeout", [0.5, 1.0, 5.0, 60.0])
def test_the_lease_outlasts_a_whole_batch_sent_at_the_timeout_and_little_more(
    timeout: float,
) -> None:
    # Each request may take its connect and its read timeout, PARALLEL_REQUESTS at a time.
    slowest_batch = -(-BATCH_SIZE // PARALLEL_REQUESTS) * 2 * timeout

    assert slowest_batch < lease_seconds(timeout) <= slowest_batch + 10


@pytest.mark.asyncio(loop_scope="session")
async def test_what_a_dead_process_claimed_is_sent_again_when_its_lease_ends_not_before(
    uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await given_stores(uow, clock, store_at("S001", 0))
    await webhooks.set_store_webhook(
        "S001", WebhookTarget.build("https://pos.example.com/hooks", SECRET), uow=uow, clock=clock
    )
    events = [
        PendingEvent(
            position=n,
            event_id=str(uuid.uuid4()),
            type="READY_FOR_PICKUP",
            store_id="S001",
            reservation_id=f"r-{n}",
            payload={"type": "READY_FOR_PICKUP", "reservation": {"id": f"r-{n}"}},
        )
        for n in range(EVENTS)
    ]
    async with uow() as tx:
        assert await webhooks.enqueue(tx, events, clock.now()) == EVENTS
        await tx.commit()
    lease = lease_seconds(TIMEOUT)

    # Given a process that claimed the whole batch and died while sending it,
    with pytest.raises(Killed):
        await deliver_due(uow=uow, sender=Dying(), clock=clock, max_attempts=8, lease=lease)
    pos = Pos()

    # when another looks before the lease has ended, it sends nothing (no second copy of what
    # may still be on its way);
    clock.advance(lease - 0.5)
    assert await deliver_due(uow=uow, sender=pos, clock=clock, max_attempts=8, lease=lease) == 0
    assert pos.event_ids == []

    # once it has ended, the whole batch goes out, each event once.
    clock.advance(1.0)
    tried = await deliver_due(uow=uow, sender=pos, clock=clock, max_attempts=8, lease=lease)
    assert tried == EVENTS
    assert sorted(pos.event_ids) == sorted(e.event_id for e in events)
    assert await deliver_due(uow=uow, sender=pos, clock=clock, max_attempts=8, lease=lease) == 0
