"""The WMS protocol's domain rules: movements on the wire, the circuit breaker's states, and the
check of a stock-levels batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.wms.protocol import movement_from_json, movement_to_json
from domain.errors import BadInput
from domain.stock import LevelUpdate
from domain.wms import (
    CircuitBreaker,
    CircuitState,
    InboundBatch,
    MovementKind,
    WmsMovement,
    parse_batch,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def seconds(n: float) -> datetime:
    return NOW + timedelta(seconds=n)


# --- movements ------------------------------------------------------------------------------------


def test_a_movement_goes_to_json_and_back_unchanged() -> None:
    movement = WmsMovement("m1", "S001", "SKU1", 3, MovementKind.CONSUME, 2, "R1", NOW)

    data = movement_to_json(movement)

    assert data == {
        "id": "m1",
        "storeId": "S001",
        "sku": "SKU1",
        "sequence": 3,
        "type": "CONSUME",
        "quantity": 2,
        "reservationId": "R1",
        "occurredAt": "2026-03-02T09:00:00Z",
    }
    assert movement_from_json(data) == movement


# --- the circuit breaker --------------------------------------------------------------------------


def opened(threshold: int = 3) -> CircuitBreaker:
    """A breaker that has just opened at NOW, cool-down 5 s, at most 20 s."""
    breaker = CircuitBreaker(threshold=threshold, cooldown_seconds=5, max_cooldown_seconds=20)
    for _ in range(threshold):
        breaker.failed(NOW)
    return breaker


def test_a_closed_breaker_lets_calls_through_until_the_threshold_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown_seconds=5, max_cooldown_seconds=20)

    breaker.failed(NOW)
    breaker.failed(NOW)

    assert breaker.state(NOW) is CircuitState.CLOSED
    assert breaker.allow(NOW)
    breaker.failed(NOW)
    assert breaker.state(NOW) is CircuitState.OPEN
    assert not breaker.allow(NOW)


def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown_seconds=5)
    breaker.failed(NOW)
    breaker.failed(NOW)

    breaker.succeeded()
    breaker.failed(NOW)
    breaker.failed(NOW)

    assert breaker.failures == 2
    assert breaker.state(NOW) is CircuitState.CLOSED


def test_an_open_breaker_refuses_calls_until_its_cooldown_ends() -> None:
    breaker = opened()

    assert not breaker.allow(seconds(4.999))
    assert breaker.state(seconds(4.999)) is CircuitState.OPEN
    assert breaker.state(seconds(5)) is CircuitState.HALF_OPEN


def test_a_half_open_breaker_lets_one_trial_call_through() -> None:
    breaker = opened()

    assert breaker.allow(seconds(5))
    assert not breaker.allow(seconds(5))
    assert not breaker.allow(seconds(60))


def test_a_successful_trial_closes_the_breaker() -> None:
    breaker = opened()
    assert breaker.allow(seconds(5))

    breaker.succeeded()

    assert breaker.state(seconds(5)) is CircuitState.CLOSED
    assert breaker.failures == 0
    assert breaker.allow(seconds(5))
    assert breaker.allow(seconds(5))


def test_a_failed_trial_opens_the_breaker_again_for_twice_as_long_up_to_the_maximum() -> None:
    breaker = opened()
    now = seconds(5)
    open_for = []
    for _ in range(4):
        assert breaker.allow(now)
        breaker.failed(now)
        start = now
        while breaker.state(now) is CircuitState.OPEN:
            now += timedelta(seconds=1)
        open_for.append((now - start).total_seconds())

    assert open_for == [10, 20, 20, 20]


def test_after_closing_the_next_opening_starts_from_the_first_cooldown_again() -> None:
    breaker = opened()
    assert breaker.allow(seconds(5))
    breaker.failed(seconds(5))  # open for 10 s
    assert breaker.allow(seconds(15))
    breaker.succeeded()

    for _ in range(3):
        breaker.failed(seconds(100))

    assert breaker.state(seconds(104.999)) is CircuitState.OPEN
    assert breaker.state(seconds(105)) is CircuitState.HALF_OPEN


# --- a stock-levels batch from the WMS ------------------------------------------------------------


def test_a_good_batch_becomes_level_updates() -> None:
    batch = parse_batch(
        {
            "batchId": "b-1",
            "levels": [
                {"storeId": "S001", "sku": "A", "onHand": 7, "sequence": 12},
                {"storeId": "S001", "sku": "B", "delta": -2, "safetyStock": 1},
                {"storeId": "S002", "sku": "A", "onHand": 0, "lowStockThreshold": 3},
            ],
        }
    )

    assert batch == InboundBatch(
        "b-1",
        (
            LevelUpdate("S001", "A", on_hand=7, sequence=12),
            LevelUpdate("S001", "B", delta=-2, safety_stock=1),
            LevelUpdate("S002", "A", on_hand=0, low_stock_threshold=3),
        ),
    )


def test_a_counted_at_time_becomes_a_sequence_in_microseconds() -> None:
    batch = parse_batch(
        {
            "batchId": "b-1",
            "levels": [
                {"storeId": "S001", "sku": "A", "onHand": 7, "countedAt": "2026-03-02T09:00:00Z"},
                {
                    "storeId": "S001",
                    "sku": "B",
                    "onHand": 7,
                    "countedAt": "2026-03-02T10:00:00.000001+01:00",
                },
            ],
        }
    )

    assert [level.sequence for level in batch.levels] == [
        int(NOW.timestamp()) * 1_000_000,
        int(NOW.timestamp()) * 1_000_000 + 1,
    ]


def level(**fields: Any) -> dict[str, Any]:
    return {"storeId": "S001", "sku": "A", **fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"batchId": "b", "levels": [level(onHand=-1)]}, "levels[0].onHand"),
        ({"batchId": "b", "levels": [level(onHand=True)]}, "levels[0].onHand"),
        ({"batchId": "b", "levels": [level(onHand=5, delta=1)]}, "levels[0]"),
        ({"batchId": "b", "levels": [level()]}, "levels[0]"),
        (
            {"batchId": "b", "levels": [level(onHand=5), level(sku="B", delta=1), level(delta=2)]},
            "levels[2]",
        ),
        ({"batchId": "b", "levels": [level(onHand=5), "S001/A=5"]}, "levels[1]"),
        (
            {"batchId": "b", "levels": [level(onHand=5, sequence=1, countedAt=NOW.isoformat())]},
            "levels[0]",
        ),
        (
            {"batchId": "b", "levels": [level(onHand=5, countedAt="2026-03-02T09:00:00")]},
            "levels[0].sequence",
        ),
        (
            {"batchId": "b", "levels": [level(onHand=5, countedAt="yesterday")]},
            "levels[0].sequence",
        ),
        ({"batchId": "b", "levels": [level(onHand=5, colour="red")]}, "levels[0]"),
        ({"batchId": "b", "levels": [{"sku": "A", "onHand": 5}]}, "levels[0].storeId"),
        ({"batchId": "b", "levels": []}, "levels"),
        ({"levels": [level(onHand=5)]}, "batchId"),
        ({"batchId": "b", "levels": [level(onHand=5)], "extra": 1}, "body"),
    ],
)
def test_a_bad_batch_is_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_batch(body)

    assert refused.value.details["field"] == field


@pytest.mark.parametrize("body", [["a", "list"], "text", None, 42])
def test_a_batch_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(BadInput, match="JSON object"):
        parse_batch(body)
