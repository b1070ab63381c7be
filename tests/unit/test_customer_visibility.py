"""Who sees whose reservation it is: the customer, the channel it came through and ops; not the
store's staff and POS, who run the handoff without it (over GraphQL and in their webhooks)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.access import MASKED_CUSTOMER_ID, Actor, Role
from domain.reservations import Line, Reservation
from domain.webhooks import for_the_pos
from services import event_codec

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def alices(channel: str | None = "web") -> Reservation:
    return Reservation.hold(
        id="r-1",
        group_id="g-1",
        code="K7Q2M9",
        customer_id="alice",
        store_id="S001",
        channel=channel,
        lines=[Line("SKU-1", 2)],
        hold_seconds=7200,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        pytest.param(Actor(Role.CUSTOMER, "alice"), True, id="the-customer"),
        pytest.param(Actor(Role.OPS, "olga"), True, id="ops"),
        pytest.param(Actor(Role.CHANNEL, "shop", channel="web"), True, id="its-channel"),
        pytest.param(Actor(Role.POS, "till-1", store_id="S001"), False, id="its-stores-pos"),
        pytest.param(Actor(Role.STAFF, "sam", store_id="S001"), False, id="its-stores-staff"),
        pytest.param(Actor(Role.CUSTOMER, "bob"), False, id="another-customer"),
        pytest.param(Actor(Role.CHANNEL, "app", channel="app"), False, id="another-channel"),
        pytest.param(Actor(Role.POS, "till-2", store_id="S002"), False, id="another-stores-pos"),
        pytest.param(Actor(Role.WMS, "wms"), False, id="the-wms"),
    ],
)
def test_who_sees_the_customer_of_a_reservation(actor: Actor, sees: bool) -> None:
    assert actor.sees_customer(alices()) is sees


def test_the_store_still_sees_the_pickup_code_it_scans() -> None:
    pos = Actor(Role.POS, "till-1", store_id="S001")

    assert pos.sees_pickup_code(alices())
    assert not pos.sees_customer(alices())


def test_a_reservation_without_a_channel_is_no_channels() -> None:
    assert not Actor(Role.CHANNEL, "shop", channel="web").sees_customer(alices(channel=None))


def test_a_pos_webhook_payload_has_the_customer_masked_and_the_rest_as_it_was() -> None:
    reservation = alices()
    (event,) = reservation.events
    payload = event_codec.encode(event)

    sent = for_the_pos(payload)

    assert sent["reservation"] == {**payload["reservation"], "customerId": MASKED_CUSTOMER_ID}
    assert {k: v for k, v in sent.items() if k != "reservation"} == {
        k: v for k, v in payload.items() if k != "reservation"
    }
    assert payload["reservation"]["customerId"] == "alice"  # the outbox's copy is left alone


def test_a_payload_without_a_reservation_is_sent_as_it_is() -> None:
    payload = {"id": "e-1", "type": "LOW_STOCK", "storeId": "S001", "sku": "SKU-1"}

    assert for_the_pos(payload) == payload
