"""The one shape of events on the wire: what the outbox stores, the broker carries to
subscriptions and POS webhooks are sent. JSON with the API's camelCase names and ISO-8601 times;
domain events in, domain events out, so no other module knows the field names."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from domain.events import (
    MOVES_STOCK,
    Event,
    IntakeOutcome,
    LowStock,
    PendingEvent,
    ReservationCancelled,
    ReservationCollected,
    ReservationCreated,
    ReservationCustomerArrived,
    ReservationEvent,
    ReservationExpired,
    ReservationExpiringSoon,
    ReservationReadyForPickup,
    ReservationShortened,
    Resourced,
    Shortage,
    StockAvailable,
    StockChanged,
    stock_channel,
)
from domain.reservations import Line, ReservationState, Status
from domain.stock import StockLevel

Payload = dict[str, Any]

_RESERVATION_EVENTS: dict[str, type[ReservationEvent]] = {
    kind.type: kind
    for kind in (
        ReservationCreated,
        ReservationReadyForPickup,
        ReservationCustomerArrived,
        ReservationExpiringSoon,
        ReservationCollected,
        ReservationCancelled,
        ReservationExpired,
        ReservationShortened,
    )
}
# The reason a Resourced detail carries on the wire (a Shortage carries its own).
RESOURCED = "RESOURCED"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- out ------------------------------------------------------------------------------------------


def encode(event: Event) -> Payload:
    """The event as it is stored and sent."""
    if isinstance(event, StockChanged):
        return {
            "id": event.id,
            "type": event.type,
            "occurredAt": event.occurred_at.isoformat(),
            "reason": event.reason,
            "levels": [
                [lv.store_id, lv.sku, lv.on_hand, lv.reserved, lv.safety_stock]
                for lv in event.levels
            ],
        }
    if isinstance(event, IntakeOutcome):
        return {
            "id": event.id,
            "type": event.type,
            "occurredAt": event.occurred_at.isoformat(),
            "messageId": event.message_id,
            "channel": event.channel,
            "account": event.account,
            "status": event.status,
            "errorCode": event.error_code,
            "externalId": event.external_id,
            "reservationGroupId": event.group_id,
        }
    if isinstance(event, LowStock):
        return {
            "id": event.id,
            "type": event.type,
            "occurredAt": event.occurred_at.isoformat(),
            "storeId": event.store_id,
            "sku": event.sku,
            "available": event.available,
            "threshold": event.threshold,
        }
    payload: Payload = {
        "id": event.id,
        "type": event.type,
        "occurredAt": event.occurred_at.isoformat(),
        "sequence": event.sequence,
        "reservation": encode_reservation(event.reservation),
    }
    if event.detail is not None:
        payload["detail"] = _encode_detail(event.detail)
    return payload


def encode_reservation(r: ReservationState) -> Payload:
    return {
        "id": r.id,
        "code": r.code,
        "groupId": r.group_id,
        "customerId": r.customer_id,
        "storeId": r.store_id,
        "channel": r.channel,
        "status": r.status.value,
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in r.lines],
        "holdSeconds": r.hold_seconds,
        "createdAt": _iso(r.created_at),
        "expiresAt": _iso(r.expires_at),
        "readyAt": _iso(r.ready_at),
        "collectedAt": _iso(r.collected_at),
        "cancelledAt": _iso(r.cancelled_at),
        "expiredAt": _iso(r.expired_at),
        "cancelReason": r.cancel_reason,
        "resourcedFrom": r.resourced_from,
        "arrivedAt": _iso(r.arrived_at),
        "arrivalNote": r.arrival_note,
        "version": r.version,
    }


def _encode_detail(detail: Shortage | Resourced) -> Payload:
    if isinstance(detail, Resourced):
        return {"reason": RESOURCED, "resourcedFrom": detail.resourced_from, "sku": detail.sku}
    return {
        "sku": detail.sku,
        "quantity": detail.quantity,
        "reason": detail.reason,
        "movedToReservationId": detail.moved_to_reservation_id,
        "movedToStoreId": detail.moved_to_store_id,
    }


# --- the stock messages the relay derives ---------------------------------------------------------


def moved_rows(event: PendingEvent) -> list[tuple[tuple[str, str], str]]:
    """The (store, SKU) rows whose availability the event moved, each with the id of the stock
    message that tells of it (the event's id and the row: a redelivery has the same id)."""
    if event.type == StockChanged.type:
        return [
            ((store_id, sku), f"{event.event_id}:{store_id}:{sku}")
            for store_id, sku, *_ in event.payload["levels"]
        ]
    if event.type not in MOVES_STOCK or event.store_id is None:
        return []
    return [
        ((event.store_id, line["sku"]), f"{event.event_id}:{line['sku']}")
        for line in event.payload["reservation"]["lines"]
    ]


def stock_messages(
    event: PendingEvent, availability: Mapping[tuple[str, str], int]
) -> list[tuple[str, str]]:
    """(channel, message) of one STOCK_CHANGED per row the event moved, to the row's store and
    to everyone, with the availability read for it."""
    occurred_at = datetime.fromisoformat(event.payload["occurredAt"])
    reason = event.payload.get("reason", event.type)
    messages = []
    for (store_id, sku), message_id in moved_rows(event):
        message = orjson.dumps(
            encode_stock(
                StockAvailable(
                    id=message_id,
                    store_id=store_id,
                    sku=sku,
                    available=availability.get((store_id, sku), 0),
                    reason=reason,
                    occurred_at=occurred_at,
                )
            )
        ).decode()
        messages += [(stock_channel(store_id), message), (stock_channel(), message)]
    return messages


def encode_stock(message: StockAvailable) -> Payload:
    return {
        "id": message.id,
        "type": message.type,
        "occurredAt": message.occurred_at.isoformat(),
        "storeId": message.store_id,
        "sku": message.sku,
        "available": message.available,
        "reason": message.reason,
    }


# --- in -------------------------------------------------------------------------------------------


def decode_message(message: str) -> Event | StockAvailable:
    """A message as the broker delivered it."""
    return decode(orjson.loads(message))


def decode(payload: Mapping[str, Any]) -> Event | StockAvailable:
    kind = payload["type"]
    occurred_at = datetime.fromisoformat(payload["occurredAt"])
    if kind == StockAvailable.type:
        return StockAvailable(
            id=payload["id"],
            store_id=payload["storeId"],
            sku=payload["sku"],
            available=payload["available"],
            reason=payload.get("reason", kind),
            occurred_at=occurred_at,
        )
    if kind == LowStock.type:
        return LowStock(
            id=payload["id"],
            store_id=payload["storeId"],
            sku=payload["sku"],
            available=payload["available"],
            threshold=payload["threshold"],
            occurred_at=occurred_at,
        )
    if kind == IntakeOutcome.type:
        return IntakeOutcome(
            id=payload["id"],
            occurred_at=occurred_at,
            message_id=payload["messageId"],
            channel=payload["channel"],
            account=payload["account"],
            status=payload["status"],
            error_code=payload.get("errorCode"),
            external_id=payload.get("externalId"),
            group_id=payload.get("reservationGroupId"),
        )
    if kind == StockChanged.type:
        return StockChanged(
            id=payload["id"],
            reason=payload["reason"],
            occurred_at=occurred_at,
            levels=tuple(StockLevel(*level) for level in payload["levels"]),
        )
    detail = payload.get("detail")
    return _RESERVATION_EVENTS[kind](
        id=payload["id"],
        sequence=payload["sequence"],
        occurred_at=occurred_at,
        reservation=decode_reservation(payload["reservation"]),
        detail=_decode_detail(detail) if detail else None,
    )


def decode_reservation(r: Mapping[str, Any]) -> ReservationState:
    return ReservationState(
        id=r["id"],
        group_id=r["groupId"],
        code=r["code"],
        customer_id=r["customerId"],
        store_id=r["storeId"],
        channel=r["channel"],
        status=Status(r["status"]),
        lines=tuple(Line(line["sku"], line["quantity"]) for line in r["lines"]),
        hold_seconds=r["holdSeconds"],
        created_at=datetime.fromisoformat(r["createdAt"]),
        expires_at=datetime.fromisoformat(r["expiresAt"]),
        ready_at=_when(r["readyAt"]),
        collected_at=_when(r["collectedAt"]),
        cancelled_at=_when(r["cancelledAt"]),
        expired_at=_when(r["expiredAt"]),
        cancel_reason=r["cancelReason"],
        resourced_from=r.get("resourcedFrom"),
        # Events stored before the check-in existed carry neither.
        arrived_at=_when(r.get("arrivedAt")),
        arrival_note=r.get("arrivalNote"),
        version=r["version"],
    )


def _decode_detail(detail: Mapping[str, Any]) -> Shortage | Resourced:
    if detail.get("reason") == RESOURCED:
        return Resourced(detail["resourcedFrom"], detail["sku"])
    return Shortage(
        detail["sku"],
        detail["quantity"],
        detail.get("reason", "SHORTAGE"),
        detail.get("movedToReservationId"),
        detail.get("movedToStoreId"),
    )
