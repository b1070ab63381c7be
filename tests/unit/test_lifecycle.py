"""The reservation lifecycle: holding, cancelling, expiring, and what each change records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import errors
from domain.events import (
    FOR_THE_STORE,
    ReservationCancelled,
    ReservationCreated,
    ReservationCustomerArrived,
    ReservationExpired,
)
from domain.reservations import (
    ACTIVE_STATUSES,
    TRANSITIONS,
    Line,
    Reservation,
    ReservationState,
    Status,
    seconds_waiting,
)
from domain.webhooks import WEBHOOK_EVENT_TYPES

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOLD = 7200
EXPIRES = NOW + timedelta(seconds=HOLD)
TICK = timedelta(microseconds=1)

# The lifecycle diagram (ARCHITECTURE.md), edge by edge.
DIAGRAM: dict[Status, frozenset[Status]] = {
    Status.HELD: frozenset({Status.READY_FOR_PICKUP, Status.CANCELLED, Status.EXPIRED}),
    Status.READY_FOR_PICKUP: frozenset({Status.COLLECTED, Status.CANCELLED, Status.EXPIRED}),
    Status.COLLECTED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}


def held(now: datetime = NOW, hold_seconds: int = HOLD) -> Reservation:
    return Reservation.hold(
        id="R1",
        group_id="G1",
        code="ABC234",
        customer_id="c1",
        store_id="S001",
        channel="web",
        lines=[Line("SKU-B", 2), Line("SKU-A", 1), Line("SKU-C", 3)],
        hold_seconds=hold_seconds,
        now=now,
    )


def in_state(
    status: Status,
    *,
    version: int = 2,
    ready_at: datetime | None = None,
    expired_at: datetime | None = None,
    arrived_at: datetime | None = None,
) -> Reservation:
    """A reservation as it would be after earlier transitions, without events of its own."""
    return Reservation(
        id="R1",
        group_id="G1",
        code="ABC234",
        customer_id="c1",
        store_id="S001",
        channel=None,
        status=status,
        lines=(Line("SKU-A", 1),),
        hold_seconds=HOLD,
        created_at=NOW,
        expires_at=EXPIRES,
        ready_at=ready_at,
        expired_at=expired_at,
        arrived_at=arrived_at,
        version=version,
    )


def unchanged(reservation: Reservation) -> tuple[object, ...]:
    return (
        reservation.status,
        reservation.version,
        len(reservation.events),
        reservation.cancelled_at,
        reservation.expired_at,
        reservation.cancel_reason,
        reservation.arrived_at,
        reservation.arrival_note,
    )


# --- hold -------------------------------------------------------------------------------------


def test_hold_creates_a_held_reservation_expiring_after_the_hold() -> None:
    reservation = held()

    assert reservation.status is Status.HELD
    assert reservation.created_at == NOW
    assert reservation.expires_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert reservation.hold_seconds == HOLD
    assert reservation.version == 1
    assert reservation.is_active is True


def test_hold_sorts_the_lines_by_sku() -> None:
    reservation = held()

    assert reservation.lines == (Line("SKU-A", 1), Line("SKU-B", 2), Line("SKU-C", 3))
    assert reservation.units() == {"SKU-A": 1, "SKU-B": 2, "SKU-C": 3}


def test_hold_records_one_created_event_with_sequence_1_and_the_snapshot() -> None:
    reservation = held()

    (event,) = reservation.events
    assert isinstance(event, ReservationCreated)
    assert event.type == "CREATED"
    assert event.sequence == 1
    assert event.occurred_at == NOW
    assert event.reservation_id == "R1"
    assert event.store_id == "S001"
    assert event.customer_id == "c1"
    assert event.reservation == ReservationState(
        id="R1",
        group_id="G1",
        code="ABC234",
        customer_id="c1",
        store_id="S001",
        channel="web",
        status=Status.HELD,
        lines=(Line("SKU-A", 1), Line("SKU-B", 2), Line("SKU-C", 3)),
        hold_seconds=HOLD,
        created_at=NOW,
        expires_at=EXPIRES,
        ready_at=None,
        collected_at=None,
        cancelled_at=None,
        expired_at=None,
        cancel_reason=None,
        resourced_from=None,
        arrived_at=None,
        arrival_note=None,
        version=1,
    )


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_a_held_reservation_records_cancelled_with_the_next_sequence() -> None:
    reservation = held()
    when = NOW + timedelta(minutes=10)

    reservation.cancel(when, reason="changed my mind")

    assert reservation.status is Status.CANCELLED
    assert reservation.cancelled_at == when
    assert reservation.cancel_reason == "changed my mind"
    assert reservation.version == 2
    assert reservation.is_active is False
    created, cancelled = reservation.events
    assert isinstance(cancelled, ReservationCancelled)
    assert cancelled.type == "CANCELLED"
    assert cancelled.sequence == 2
    assert cancelled.occurred_at == when
    assert cancelled.reservation.status is Status.CANCELLED
    assert cancelled.reservation.cancelled_at == datetime(2026, 3, 2, 9, 10, tzinfo=UTC)
    assert cancelled.reservation.cancel_reason == "changed my mind"
    assert cancelled.reservation.version == 2
    # The earlier event keeps the state it was recorded with.
    assert created.reservation.status is Status.HELD
    assert created.reservation.version == 1


def test_cancel_without_a_reason_records_none() -> None:
    reservation = held()

    reservation.cancel(NOW)

    assert reservation.cancel_reason is None
    assert reservation.events[-1].reservation.cancel_reason is None


def test_cancel_a_reservation_ready_for_pickup_moves_it_to_cancelled() -> None:
    reservation = in_state(Status.READY_FOR_PICKUP, version=2, ready_at=NOW)

    reservation.cancel(NOW + timedelta(minutes=5))

    assert reservation.status is Status.CANCELLED
    assert reservation.version == 3
    (event,) = reservation.events
    assert isinstance(event, ReservationCancelled)
    assert event.sequence == 3


def test_cancel_one_microsecond_before_expiry_is_still_allowed() -> None:
    reservation = held()

    reservation.cancel(EXPIRES - TICK)

    assert reservation.status is Status.CANCELLED


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COLLECTED])
def test_cancel_from_a_final_state_other_than_expired_is_an_invalid_transition(
    status: Status,
) -> None:
    reservation = in_state(status, version=3)
    before = unchanged(reservation)

    with pytest.raises(errors.InvalidTransition) as raised:
        reservation.cancel(NOW + timedelta(minutes=1))

    assert raised.value.code == "INVALID_TRANSITION"
    assert raised.value.details == {"reservationId": "R1", "status": str(status)}
    assert unchanged(reservation) == before


def test_cancel_an_expired_reservation_raises_reservation_expired() -> None:
    reservation = in_state(Status.EXPIRED, version=2, expired_at=EXPIRES)
    before = unchanged(reservation)

    with pytest.raises(errors.ReservationExpired) as raised:
        reservation.cancel(EXPIRES + timedelta(minutes=1))

    assert raised.value.code == "RESERVATION_EXPIRED"
    assert raised.value.details == {"reservationId": "R1"}
    assert unchanged(reservation) == before


def test_cancel_an_expired_reservation_raises_reservation_expired_even_before_expires_at() -> None:
    # Expired is final: the clock does not matter any more.
    reservation = in_state(Status.EXPIRED, version=2, expired_at=EXPIRES)

    with pytest.raises(errors.ReservationExpired):
        reservation.cancel(NOW)

    assert reservation.status is Status.EXPIRED


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(days=3)])
def test_cancel_an_overdue_held_reservation_raises_reservation_expired(late: timedelta) -> None:
    reservation = held()
    before = unchanged(reservation)

    with pytest.raises(errors.ReservationExpired) as raised:
        reservation.cancel(EXPIRES + late)

    assert raised.value.details == {"reservationId": "R1"}
    assert unchanged(reservation) == before
    assert reservation.status is Status.HELD


def test_cancel_an_overdue_reservation_ready_for_pickup_raises_reservation_expired() -> None:
    reservation = in_state(Status.READY_FOR_PICKUP, version=2, ready_at=NOW)
    before = unchanged(reservation)

    with pytest.raises(errors.ReservationExpired):
        reservation.cancel(EXPIRES + timedelta(seconds=1))

    assert unchanged(reservation) == before


# --- expire -----------------------------------------------------------------------------------


def test_expire_exactly_at_expires_at_records_expired() -> None:
    reservation = held()

    reservation.expire(EXPIRES)

    assert reservation.status is Status.EXPIRED
    assert reservation.expired_at == EXPIRES
    assert reservation.version == 2
    assert reservation.is_active is False
    _, expired = reservation.events
    assert isinstance(expired, ReservationExpired)
    assert expired.type == "EXPIRED"
    assert expired.sequence == 2
    assert expired.occurred_at == EXPIRES
    assert expired.reservation.status is Status.EXPIRED
    assert expired.reservation.expired_at == EXPIRES
    assert expired.reservation.version == 2


def test_expire_after_expires_at_records_the_time_it_ran() -> None:
    reservation = held()
    when = EXPIRES + timedelta(minutes=7)

    reservation.expire(when)

    assert reservation.expired_at == when
    assert reservation.events[-1].occurred_at == when


def test_expire_a_reservation_ready_for_pickup_once_due() -> None:
    reservation = in_state(Status.READY_FOR_PICKUP, version=2, ready_at=NOW)

    reservation.expire(EXPIRES)

    assert reservation.status is Status.EXPIRED
    assert reservation.version == 3
    (event,) = reservation.events
    assert isinstance(event, ReservationExpired)
    assert event.sequence == 3


@pytest.mark.parametrize("early", [TICK, timedelta(seconds=1), timedelta(seconds=HOLD)])
def test_expire_before_expires_at_is_refused_and_changes_nothing(early: timedelta) -> None:
    reservation = held()
    before = unchanged(reservation)

    with pytest.raises(errors.InvalidTransition):
        reservation.expire(EXPIRES - early)

    assert unchanged(reservation) == before


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COLLECTED, Status.EXPIRED])
def test_expire_a_final_reservation_is_refused_even_when_past_expires_at(status: Status) -> None:
    reservation = in_state(status, version=3)
    before = unchanged(reservation)

    with pytest.raises(errors.InvalidTransition):
        reservation.expire(EXPIRES + timedelta(hours=1))

    assert unchanged(reservation) == before


def test_sequences_count_every_change_from_one() -> None:
    reservation = held()
    reservation.expire(EXPIRES)

    assert [event.sequence for event in reservation.events] == [1, 2]
    assert [event.type for event in reservation.events] == ["CREATED", "EXPIRED"]
    assert reservation.version == reservation.events[-1].sequence


def test_events_get_distinct_ids() -> None:
    reservation = held()
    reservation.cancel(NOW)

    first, second = reservation.events
    assert first.id != second.id


# --- check in ---------------------------------------------------------------------------------

ARRIVED = NOW + timedelta(minutes=40)


def test_check_in_records_the_arrival_and_the_note_without_changing_the_status() -> None:
    reservation = held()

    reservation.check_in(ARRIVED, "  bay 4, blue Fiat  ")

    assert reservation.status is Status.HELD
    assert reservation.arrived_at == ARRIVED
    assert reservation.arrival_note == "bay 4, blue Fiat"
    assert reservation.version == 2
    created, arrived = reservation.events
    assert isinstance(arrived, ReservationCustomerArrived)
    assert arrived.type == "CUSTOMER_ARRIVED"
    assert arrived.sequence == 2
    assert arrived.occurred_at == ARRIVED
    assert arrived.reservation.status is Status.HELD
    assert arrived.reservation.arrived_at == ARRIVED
    assert arrived.reservation.arrival_note == "bay 4, blue Fiat"
    assert created.reservation.arrived_at is None


def test_check_in_while_ready_for_pickup_keeps_it_ready() -> None:
    reservation = in_state(Status.READY_FOR_PICKUP, version=2, ready_at=NOW)

    reservation.check_in(ARRIVED)

    assert reservation.status is Status.READY_FOR_PICKUP
    assert (reservation.arrived_at, reservation.arrival_note) == (ARRIVED, None)
    (event,) = reservation.events
    assert isinstance(event, ReservationCustomerArrived)
    assert event.sequence == 3


@pytest.mark.parametrize("note", [None, "", "   "])
def test_check_in_without_a_note_records_none(note: str | None) -> None:
    reservation = held()

    reservation.check_in(ARRIVED, note)

    assert reservation.arrival_note is None
    assert reservation.events[-1].reservation.arrival_note is None


def test_check_in_twice_is_an_invalid_transition_and_changes_nothing() -> None:
    reservation = held()
    reservation.check_in(ARRIVED, "bay 4")
    before = unchanged(reservation)

    with pytest.raises(errors.InvalidTransition) as raised:
        reservation.check_in(ARRIVED + timedelta(minutes=5), "bay 7")

    assert raised.value.details == {"reservationId": "R1", "status": "HELD"}
    assert "checked in already" in raised.value.message
    assert unchanged(reservation) == before


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COLLECTED, Status.EXPIRED])
def test_check_in_a_final_reservation_is_an_invalid_transition(status: Status) -> None:
    reservation = in_state(status, version=3)
    before = unchanged(reservation)

    with pytest.raises(errors.InvalidTransition) as raised:
        reservation.check_in(ARRIVED)

    assert raised.value.details == {"reservationId": "R1", "status": str(status)}
    assert raised.value.message == (
        f"Reservation R1 is {status}; only an active reservation is checked in."
    )
    assert unchanged(reservation) == before


def test_check_in_an_overdue_reservation_not_yet_swept_raises_reservation_expired() -> None:
    reservation = held()
    before = unchanged(reservation)

    with pytest.raises(errors.ReservationExpired):
        reservation.check_in(EXPIRES)

    assert unchanged(reservation) == before


@pytest.mark.parametrize(
    "note", ["x" * 201, "bay 4\nblue Fiat", "bay\t4", "\x00"], ids=["long", "newline", "tab", "nul"]
)
def test_check_in_with_a_bad_note_is_bad_input_and_changes_nothing(note: str) -> None:
    reservation = held()
    before = unchanged(reservation)

    with pytest.raises(errors.BadInput) as raised:
        reservation.check_in(ARRIVED, note)

    assert raised.value.details == {"field": "note"}
    assert unchanged(reservation) == before


def test_a_note_of_200_characters_is_kept_whole() -> None:
    reservation = held()

    reservation.check_in(ARRIVED, "é" * 200)

    assert reservation.arrival_note == "é" * 200


def test_the_store_and_its_webhook_hear_of_the_arrival() -> None:
    assert "CUSTOMER_ARRIVED" in FOR_THE_STORE
    assert "CUSTOMER_ARRIVED" in WEBHOOK_EVENT_TYPES


def test_seconds_waiting_counts_from_the_arrival_until_now_or_the_end() -> None:
    assert seconds_waiting(None, None, ARRIVED) is None
    assert seconds_waiting(ARRIVED, None, ARRIVED) == 0
    assert seconds_waiting(ARRIVED, None, ARRIVED + timedelta(seconds=90.7)) == 90
    ended = ARRIVED + timedelta(minutes=3)
    assert seconds_waiting(ARRIVED, ended, ARRIVED + timedelta(hours=1)) == 180
    assert seconds_waiting(ARRIVED, None, ARRIVED - timedelta(seconds=5)) == 0


# --- due and seconds remaining ----------------------------------------------------------------


def test_is_due_from_expires_at_on_and_only_while_active() -> None:
    reservation = held()

    assert reservation.is_due(EXPIRES - TICK) is False
    assert reservation.is_due(EXPIRES) is True
    assert reservation.is_due(EXPIRES + timedelta(days=1)) is True
    assert in_state(Status.CANCELLED).is_due(EXPIRES + timedelta(days=1)) is False


def test_seconds_remaining_counts_down_in_whole_seconds() -> None:
    reservation = held()

    assert reservation.seconds_remaining(NOW) == 7200
    assert reservation.seconds_remaining(NOW + timedelta(seconds=1.5)) == 7198
    assert reservation.seconds_remaining(EXPIRES - timedelta(seconds=1)) == 1


def test_seconds_remaining_is_zero_when_overdue() -> None:
    reservation = held()

    assert reservation.seconds_remaining(EXPIRES) == 0
    assert reservation.seconds_remaining(EXPIRES + timedelta(hours=5)) == 0


def test_seconds_remaining_counts_down_while_ready_for_pickup() -> None:
    reservation = in_state(Status.READY_FOR_PICKUP, ready_at=NOW)

    assert reservation.seconds_remaining(EXPIRES - timedelta(seconds=60)) == 60


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COLLECTED, Status.EXPIRED])
def test_seconds_remaining_is_zero_in_a_final_state_even_before_expires_at(
    status: Status,
) -> None:
    reservation = in_state(status)

    assert reservation.seconds_remaining(NOW) == 0


def test_a_cancelled_reservation_has_no_seconds_remaining() -> None:
    reservation = held()
    reservation.cancel(NOW + timedelta(minutes=1))

    assert reservation.seconds_remaining(NOW + timedelta(minutes=1)) == 0


# --- the transitions table --------------------------------------------------------------------


def test_active_statuses_are_held_and_ready_for_pickup() -> None:
    assert frozenset({Status.HELD, Status.READY_FOR_PICKUP}) == ACTIVE_STATUSES
    assert [s for s in Status if s.is_active] == [Status.HELD, Status.READY_FOR_PICKUP]


def test_transitions_table_names_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(
    ("source", "target"),
    [(source, target) for source, targets in DIAGRAM.items() for target in sorted(targets)],
)
def test_every_transition_of_the_lifecycle_diagram_is_allowed(
    source: Status, target: Status
) -> None:
    assert target in TRANSITIONS[source]


@pytest.mark.parametrize("final", [Status.COLLECTED, Status.CANCELLED, Status.EXPIRED])
def test_final_states_have_no_way_out(final: Status) -> None:
    assert TRANSITIONS[final] == frozenset()


def test_transitions_table_allows_only_the_lifecycle_diagram() -> None:
    # The lifecycle: "any other transition is refused". HELD -> COLLECTED is not in the diagram
    # (a reservation is marked ready before it is collected).
    assert dict(TRANSITIONS) == DIAGRAM
