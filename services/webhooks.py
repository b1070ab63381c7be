"""POS webhooks: queue the store's events for its webhook, deliver them signed, retry with backoff,
dead-letter what keeps failing, and let ops replay it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import orjson

from domain.clock import Clock
from domain.commands import validate_discard_reason
from domain.errors import InvalidTransition, NotFound
from domain.events import PendingEvent
from domain.retry import retry_delay
from domain.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_EVENT_TYPES,
    Delivery,
    DeliveryStatus,
    WebhookTarget,
    for_the_pos,
    signature,
)
from services.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

PARALLEL_REQUESTS = 20
BATCH_SIZE = 100


def lease_seconds(timeout_seconds: float, batch_size: int = BATCH_SIZE) -> float:
    """How long a claimed delivery is not due again: time for its whole batch to be sent,
    PARALLEL_REQUESTS at a time, each request given twice the sender's timeout (connecting and
    answering are timed apart), and a margin. Any longer only delays what a process that died
    mid-batch left claimed; any shorter, and another replica could claim a batch still being
    sent and send it twice."""
    rounds = -(-batch_size // PARALLEL_REQUESTS)
    return rounds * 2 * timeout_seconds + 5


# The lease for the default 5 s timeout.
LEASE_SECONDS = lease_seconds(5.0)
NO_WEBHOOK = "the store no longer has a webhook"


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the HTTP status; raise on a network error or timeout."""
        ...


async def enqueue(tx: UnitOfWork, events: Sequence[PendingEvent], now: datetime) -> int:
    """Queue the events a store's POS webhook is sent, in the relay's transaction (so each is
    queued once, however often the relay retries publishing)."""
    wanted = [e for e in events if e.type in WEBHOOK_EVENT_TYPES and e.store_id is not None]
    if not wanted:
        return 0
    targets = await tx.webhooks.targets({e.store_id for e in wanted if e.store_id})
    deliveries = [
        Delivery(
            id=str(uuid.uuid4()),
            event_id=e.event_id,
            event_type=e.type,
            store_id=e.store_id,
            url=targets[e.store_id].url,
            payload=for_the_pos(e.payload),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for e in wanted
        if e.store_id is not None and e.store_id in targets
    ]
    await tx.webhooks.enqueue(deliveries)
    return len(deliveries)


async def deliver_due(
    *,
    uow: UnitOfWorkFactory,
    sender: WebhookSender,
    clock: Clock,
    max_attempts: int,
    batch_size: int = BATCH_SIZE,
    lease: float = LEASE_SECONDS,
) -> int:
    """Try every delivery that is due, each once. Requests go out between two short transactions
    (claim, then record), never inside one; `lease` is lease_seconds() of the sender's timeout.
    Returns how many were tried."""
    async with uow() as tx:
        now = clock.now()
        claimed = await tx.webhooks.claim_due(now, now + timedelta(seconds=lease), batch_size)
        await tx.commit()
    if not claimed:
        return 0
    limit = asyncio.Semaphore(PARALLEL_REQUESTS)

    async def attempt(
        delivery: Delivery, secret: str | None
    ) -> tuple[Delivery, int | None, str | None]:
        if secret is None:
            return delivery, None, NO_WEBHOOK
        async with limit:
            return (delivery, *await _post(sender, delivery, secret, clock))

    results = await asyncio.gather(*(attempt(d, secret) for d, secret in claimed))
    async with uow() as tx:
        now = clock.now()
        for delivery, status_code, error in results:
            await _record(tx, delivery, status_code, error, now, max_attempts)
        await tx.commit()
    return len(results)


async def _post(
    sender: WebhookSender, delivery: Delivery, secret: str, clock: Clock
) -> tuple[int | None, str | None]:
    body = orjson.dumps(delivery.payload)
    timestamp = int(clock.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "X-Ropos-Event-Id": delivery.event_id,
        "X-Ropos-Event-Type": delivery.event_type,
        "X-Ropos-Delivery-Id": delivery.id,
    }
    try:
        status_code = await sender.post(delivery.url, body, headers)
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    if 200 <= status_code < 300:
        return status_code, None
    return status_code, f"HTTP {status_code}"


async def _record(
    tx: UnitOfWork,
    delivery: Delivery,
    status_code: int | None,
    error: str | None,
    now: datetime,
    max_attempts: int,
) -> None:
    if error is None:
        status, next_attempt = DeliveryStatus.DELIVERED, now
    elif delivery.attempts >= max_attempts or error == NO_WEBHOOK:
        status, next_attempt = DeliveryStatus.DEAD, now
    else:
        status = DeliveryStatus.PENDING
        next_attempt = now + timedelta(seconds=retry_delay(delivery.attempts))
    await tx.webhooks.record(
        delivery.id,
        status=status,
        now=now,
        next_attempt_at=next_attempt,
        status_code=status_code,
        error=error,
    )
    reservation = delivery.payload.get("reservation")
    extra = {
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "reservation_id": reservation.get("id") if isinstance(reservation, dict) else None,
        "store_id": delivery.store_id,
        "attempts": delivery.attempts,
        "status_code": status_code,
        "error": error,
    }
    if status is DeliveryStatus.DEAD:
        log.warning("webhook dead-lettered", extra=extra)
    elif status is DeliveryStatus.PENDING:
        log.info("webhook retry scheduled", extra={**extra, "next_attempt_at": next_attempt})


async def replay(delivery_id: str, *, uow: UnitOfWorkFactory, clock: Clock) -> Delivery:
    """A dead-lettered delivery goes out again, now, with a fresh count of attempts."""
    async with uow() as tx:
        replayed = await tx.webhooks.replay(delivery_id, clock.now())
        if replayed is None:
            found = await tx.webhooks.get(delivery_id)
            if found is None:
                raise NotFound(f"No webhook delivery {delivery_id}.")
            raise InvalidTransition(
                f"Webhook delivery {delivery_id} is {found.status}; only dead ones are replayed.",
                status=str(found.status),
            )
        await tx.commit()
    return replayed


async def discard(
    delivery_id: str, reason: str, actor: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> Delivery:
    """Give up on a dead-lettered delivery, with the reason ops give; it is never sent again."""
    reason = validate_discard_reason(reason)
    async with uow() as tx:
        discarded = await tx.webhooks.discard(
            delivery_id, actor=actor, reason=reason, now=clock.now()
        )
        if discarded is None:
            found = await tx.webhooks.get(delivery_id)
            if found is None:
                raise NotFound(f"No webhook delivery {delivery_id}.")
            raise InvalidTransition(
                f"Webhook delivery {delivery_id} is {found.status}; only dead ones are discarded.",
                status=str(found.status),
            )
        await tx.commit()
    log.info(
        "webhook discarded",
        extra={"delivery_id": delivery_id, "store_id": discarded.store_id, "actor": actor},
    )
    return discarded


async def set_store_webhook(
    store_id: str, target: WebhookTarget | None, *, uow: UnitOfWorkFactory, clock: Clock
) -> WebhookTarget | None:
    async with uow() as tx:
        if not await tx.webhooks.set_target(store_id, target, clock.now()):
            raise NotFound(f"Unknown store: {store_id}", storeId=store_id)
        await tx.commit()
    return target
