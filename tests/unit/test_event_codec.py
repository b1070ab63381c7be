"""The events' one wire shape: what the outbox stores, subscribers receive and POS webhooks are
sent. Clients are written against these names, so they are pinned here field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from domain.events import (
    Event,
    IntakeOutcome,
    LowStock,
    PendingEvent,
    ReservationShortened,
    Resourced,
    Shortage,
    StockAvailable,
    StockChanged,
)
from domain.reservations import Line, Reservation
from domain.stock import StockLevel
from services import event_codec

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def held() -> Reservation:
    return Reservation.hold(
        id="R1",
        group_id="G1",
        code="ABC234",
        customer_id="c1",
        store_id="S001",
        channel="web",
        lines=[Line("SKU-B", 2), Line("SKU-A", 1)],
        hold_seconds=7200,
        now=NOW,
    )


def test_a_reservation_event_goes_out_with_the_api_names_and_iso_times() -> None:
    (event,) = held().events

    assert event_codec.encode(event) == {
        "id": event.id,
        "type": "CREATED",
        "occurredAt": "2026-03-02T09:00:00+00:00",
        "sequence": 1,
        "reservation": {
            "id": "R1",
            "code": "ABC234",
            "groupId": "G1",
            "customerId": "c1",
            "storeId": "S001",
            "channel": "web",
            "status": "HELD",
            "lines": [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-B", "quantity": 2}],
            "holdSeconds": 7200,
            "createdAt": "2026-03-02T09:00:00+00:00",
            "expiresAt": "2026-03-02T11:00:00+00:00",
            "readyAt": None,
            "collectedAt": None,
            "cancelledAt": None,
            "expiredAt": None,
            "cancelReason": None,
            "resourcedFrom": None,
            "arrivedAt": None,
            "arrivalNote": None,
            "version": 1,
        },
    }


def test_an_arrival_carries_when_and_the_note_for_the_store() -> None:
    reservation = held()
    reservation.check_in(NOW + timedelta(minutes=30), "bay 4")

    payload = event_codec.encode(reservation.events[-1])

    assert payload["type"] == "CUSTOMER_ARRIVED"
    assert payload["sequence"] == 2
    assert payload["reservation"]["status"] == "HELD"
    assert payload["reservation"]["arrivedAt"] == "2026-03-02T09:30:00+00:00"
    assert payload["reservation"]["arrivalNote"] == "bay 4"


def test_an_event_stored_before_check_in_existed_reads_as_not_arrived() -> None:
    (created,) = held().events
    payload = event_codec.encode(created)
    del payload["reservation"]["arrivedAt"], payload["reservation"]["arrivalNote"]

    decoded = event_codec.decode(payload)

    assert decoded == created


def test_a_shortage_says_which_units_went_where() -> None:
    reservation = held()
    elsewhere = held()
    elsewhere.store_id = "S002"
    reservation.shorten("SKU-B", 2, NOW, reason="SHORTAGE", moved_to=elsewhere)

    payload = event_codec.encode(reservation.events[-1])

    assert payload["type"] == "STOCK_SHORTAGE"
    assert payload["detail"] == {
        "sku": "SKU-B",
        "quantity": 2,
        "reason": "SHORTAGE",
        "movedToReservationId": "R1",
        "movedToStoreId": "S002",
    }
    assert payload["reservation"]["lines"] == [{"sku": "SKU-A", "quantity": 1}]


def test_a_stock_event_carries_its_rows_as_compact_lists() -> None:
    event = StockChanged(
        levels=(StockLevel("S1", "A", 5, 1, 0), StockLevel("S1", "B", 0, 0, 2)),
        reason="SYNC",
        occurred_at=NOW,
    )

    assert event_codec.encode(event) == {
        "id": event.id,
        "type": "STOCK_LEVELS_CHANGED",
        "occurredAt": "2026-03-02T09:00:00+00:00",
        "reason": "SYNC",
        "levels": [["S1", "A", 5, 1, 0], ["S1", "B", 0, 0, 2]],
    }


def events_of_every_kind() -> list[Event | StockAvailable]:
    reservation = held()
    reservation.mark_ready(NOW + timedelta(minutes=5), pickup_window_seconds=600)
    reservation.check_in(NOW + timedelta(minutes=5, seconds=30), "bay 4")
    reservation.shorten("SKU-A", 1, NOW, reason="SHORT_PICK", moved_to=None)
    reservation.cancel(NOW + timedelta(minutes=6), reason="changed my mind")
    resourced = Reservation.hold(
        id="R2",
        group_id="G1",
        code="XYZ789",
        customer_id="c1",
        store_id="S002",
        channel=None,
        lines=[Line("SKU-A", 1)],
        hold_seconds=7200,
        now=NOW,
        resourced_from="R1",
        detail=Resourced("R1", "SKU-A"),
    )
    return [
        *reservation.events,
        *resourced.events,
        StockChanged(levels=(StockLevel("S1", "A", 5, 1, 0),), reason="SYNC", occurred_at=NOW),
        LowStock(store_id="S1", sku="A", available=2, threshold=3, occurred_at=NOW),
        StockAvailable(
            id="e:A", store_id="S1", sku="A", available=4, reason="CREATED", occurred_at=NOW
        ),
        IntakeOutcome(
            message_id="M1",
            channel="shopify",
            account="acme",
            status="REJECTED",
            occurred_at=NOW,
            error_code="OUT_OF_STOCK",
            external_id="5678901234567890123",
        ),
    ]


@pytest.mark.parametrize("event", events_of_every_kind(), ids=lambda e: e.type)
def test_every_event_comes_back_as_it_went_out(event: Event | StockAvailable) -> None:
    if isinstance(event, StockAvailable):
        encoded = event_codec.encode_stock(event)
    else:
        encoded = event_codec.encode(event)

    message = orjson.dumps(encoded).decode()

    assert event_codec.decode_message(message) == event


def pending(event: Event) -> PendingEvent:
    store_id = getattr(event, "store_id", None)
    return PendingEvent(
        position=1,
        event_id=event.id,
        type=event.type,
        store_id=store_id,
        reservation_id=getattr(event, "reservation_id", None),
        payload=event_codec.encode(event),
    )


def test_the_relay_tells_storefronts_of_each_row_an_event_moved() -> None:
    (created,) = held().events

    messages = event_codec.stock_messages(pending(created), {("S001", "SKU-A"): 7})

    assert [channel for channel, _ in messages] == ["stock:S001", "stock", "stock:S001", "stock"]
    first = orjson.loads(messages[0][1])
    assert first == {
        "id": f"{created.id}:SKU-A",
        "type": "STOCK_CHANGED",
        "occurredAt": "2026-03-02T09:00:00+00:00",
        "storeId": "S001",
        "sku": "SKU-A",
        "available": 7,
        "reason": "CREATED",
    }
    assert orjson.loads(messages[2][1])["available"] == 0  # not read: none known


def test_a_count_event_moves_each_of_its_rows() -> None:
    event = StockChanged(
        levels=(StockLevel("S1", "A", 5, 1, 0), StockLevel("S2", "B", 0, 0, 0)),
        reason="SYNC",
        occurred_at=NOW,
    )

    assert event_codec.moved_rows(pending(event)) == [
        (("S1", "A"), f"{event.id}:S1:A"),
        (("S2", "B"), f"{event.id}:S2:B"),
    ]


def test_events_that_move_no_stock_name_no_rows() -> None:
    reservation = held()
    reservation.mark_ready(NOW)
    ready = reservation.events[-1]
    low = LowStock(store_id="S1", sku="A", available=2, threshold=3, occurred_at=NOW)

    assert event_codec.moved_rows(pending(ready)) == []
    assert event_codec.moved_rows(pending(low)) == []


def test_a_short_pick_detail_comes_back_as_a_shortage() -> None:
    reservation = held()
    reservation.shorten("SKU-A", 1, NOW, reason="SHORT_PICK")
    (shortened,) = [e for e in reservation.events if isinstance(e, ReservationShortened)]

    decoded = event_codec.decode(event_codec.encode(shortened))

    assert isinstance(decoded, ReservationShortened)
    assert decoded.detail == Shortage("SKU-A", 1, "SHORT_PICK", None, None)


def test_an_intake_outcome_goes_to_ops_of_all_accounts_and_of_its_own() -> None:
    event = IntakeOutcome(
        message_id="M1", channel="shopify", account="acme", status="ACCEPTED", occurred_at=NOW
    )

    assert pending(event).channels() == ["intake", "intake:shopify:acme"]
    assert event_codec.encode(event) == {
        "id": event.id,
        "type": "INTAKE_OUTCOME",
        "occurredAt": "2026-03-02T09:00:00+00:00",
        "messageId": "M1",
        "channel": "shopify",
        "account": "acme",
        "status": "ACCEPTED",
        "errorCode": None,
        "externalId": None,
        "reservationGroupId": None,
    }
