"""Who may do what: actors, their store and channel scope, and on whose behalf they may reserve."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.access import Actor, Role
from domain.errors import BadInput, Forbidden
from domain.reservations import Line, Reservation

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

CUSTOMER = Actor(Role.CUSTOMER, "c1")
OTHER_CUSTOMER = Actor(Role.CUSTOMER, "c2")
STAFF = Actor(Role.STAFF, "staff-1", store_id="S001")
OTHER_STAFF = Actor(Role.STAFF, "staff-2", store_id="S002")
POS = Actor(Role.POS, "till-1", store_id="S001")
OTHER_POS = Actor(Role.POS, "till-2", store_id="S002")
OPS = Actor(Role.OPS, "ops-1")
WMS = Actor(Role.WMS, "wms")
CHANNEL = Actor(Role.CHANNEL, "web-shop", channel="web")
OTHER_CHANNEL = Actor(Role.CHANNEL, "marketplace", channel="market")


def reservation(channel: str | None = "web") -> Reservation:
    return Reservation.hold(
        id="R1",
        group_id="G1",
        code="ABC234",
        customer_id="c1",
        store_id="S001",
        channel=channel,
        lines=[Line("SKU1", 1)],
        hold_seconds=7200,
        now=NOW,
    )


# --- actors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.STAFF, Role.POS])
@pytest.mark.parametrize("store_id", [None, ""])
def test_a_store_role_without_a_store_is_refused(role: Role, store_id: str | None) -> None:
    with pytest.raises(BadInput):
        Actor(role, "someone", store_id=store_id)


@pytest.mark.parametrize("channel", [None, ""])
def test_a_channel_actor_without_a_channel_is_refused(channel: str | None) -> None:
    with pytest.raises(BadInput):
        Actor(Role.CHANNEL, "web-shop", channel=channel)


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.OPS, Role.WMS])
def test_roles_outside_stores_and_channels_need_neither(role: Role) -> None:
    actor = Actor(role, "someone")

    assert (actor.store_id, actor.channel) == (None, None)


# --- acting for a store -----------------------------------------------------------------------


def test_ops_act_for_every_store() -> None:
    assert OPS.acts_for_store("S001") is True
    assert OPS.acts_for_store("S999") is True


@pytest.mark.parametrize("actor", [STAFF, POS], ids=["staff", "pos"])
def test_staff_and_pos_act_only_for_their_own_store(actor: Actor) -> None:
    assert actor.acts_for_store("S001") is True
    assert actor.acts_for_store("S002") is False


@pytest.mark.parametrize("actor", [CUSTOMER, WMS, CHANNEL], ids=["customer", "wms", "channel"])
def test_other_roles_act_for_no_store(actor: Actor) -> None:
    assert actor.acts_for_store("S001") is False


# --- viewing and cancelling -------------------------------------------------------------------

# The reservation: customer c1, store S001, channel web.
VIEW_CASES = [
    pytest.param(CUSTOMER, True, id="its-customer"),
    pytest.param(OTHER_CUSTOMER, False, id="another-customer"),
    pytest.param(STAFF, True, id="staff-of-its-store"),
    pytest.param(OTHER_STAFF, False, id="staff-of-another-store"),
    pytest.param(POS, True, id="pos-of-its-store"),
    pytest.param(OTHER_POS, False, id="pos-of-another-store"),
    pytest.param(OPS, True, id="ops"),
    pytest.param(CHANNEL, True, id="its-channel"),
    pytest.param(OTHER_CHANNEL, False, id="another-channel"),
    pytest.param(WMS, False, id="wms"),
]


@pytest.mark.parametrize(("actor", "allowed"), VIEW_CASES)
def test_who_can_view_a_reservation(actor: Actor, allowed: bool) -> None:
    assert actor.can_view(reservation()) is allowed


@pytest.mark.parametrize(("actor", "allowed"), VIEW_CASES)
def test_who_can_cancel_a_reservation(actor: Actor, allowed: bool) -> None:
    assert actor.can_cancel(reservation()) is allowed


def test_a_channel_cannot_view_a_reservation_made_without_a_channel() -> None:
    assert CHANNEL.can_view(reservation(channel=None)) is False


def test_a_customer_with_the_store_id_as_subject_cannot_view_the_stores_reservations() -> None:
    assert Actor(Role.CUSTOMER, "S001").can_view(reservation()) is False


# --- reserving on whose behalf ----------------------------------------------------------------


@pytest.mark.parametrize("customer_id", [None, "c1"])
def test_a_customer_reserves_for_themselves(customer_id: str | None) -> None:
    assert CUSTOMER.reserving_customer(customer_id, "S001") == "c1"


def test_a_customer_cannot_reserve_for_someone_else() -> None:
    with pytest.raises(Forbidden) as raised:
        CUSTOMER.reserving_customer("c2", None)

    assert raised.value.code == "FORBIDDEN"


@pytest.mark.parametrize("actor", [CHANNEL, OPS], ids=["channel", "ops"])
def test_channels_and_ops_reserve_for_the_customer_they_name(actor: Actor) -> None:
    assert actor.reserving_customer("c9", None) == "c9"
    assert actor.reserving_customer("c9", "S002") == "c9"


@pytest.mark.parametrize("actor", [CHANNEL, OPS, STAFF], ids=["channel", "ops", "staff"])
@pytest.mark.parametrize("customer_id", [None, ""])
def test_reserving_on_someones_behalf_needs_a_customer_id(
    actor: Actor, customer_id: str | None
) -> None:
    with pytest.raises(BadInput) as raised:
        actor.reserving_customer(customer_id, "S001")

    assert raised.value.details == {"field": "customerId"}


def test_staff_reserve_for_a_customer_at_their_own_store() -> None:
    assert STAFF.reserving_customer("c9", "S001") == "c9"


@pytest.mark.parametrize("store_id", ["S002", None])
def test_staff_cannot_reserve_at_another_store_or_near_a_point(store_id: str | None) -> None:
    with pytest.raises(Forbidden):
        STAFF.reserving_customer("c9", store_id)


@pytest.mark.parametrize("actor", [POS, WMS], ids=["pos", "wms"])
@pytest.mark.parametrize("customer_id", [None, "c9"])
def test_pos_and_wms_cannot_reserve(actor: Actor, customer_id: str | None) -> None:
    with pytest.raises(Forbidden):
        actor.reserving_customer(customer_id, "S001")


# --- the channel of a reservation -------------------------------------------------------------


@pytest.mark.parametrize("channel", [None, "web"])
def test_a_channel_reserves_for_its_own_channel(channel: str | None) -> None:
    assert CHANNEL.reserving_channel(channel) == "web"


def test_a_channel_cannot_reserve_for_another_channel() -> None:
    with pytest.raises(Forbidden):
        CHANNEL.reserving_channel("market")


@pytest.mark.parametrize("actor", [CUSTOMER, OPS, STAFF], ids=["customer", "ops", "staff"])
@pytest.mark.parametrize("channel", [None, "app"])
def test_other_roles_name_the_channel_they_were_given(actor: Actor, channel: str | None) -> None:
    assert actor.reserving_channel(channel) == channel
