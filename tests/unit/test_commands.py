"""The Reserve command: what a reserve request must look like before anything is touched."""

from __future__ import annotations

from typing import Any

import pytest

from domain.commands import Reserve
from domain.errors import BadInput
from domain.geo import GeoPoint
from domain.reservations import Line

HERE = GeoPoint(51.5, -0.12)


def build(**overrides: Any) -> Reserve:
    fields: dict[str, Any] = {"customer_id": "c1", "lines": [("SKU1", 1)], "store_id": "S001"}
    fields.update(overrides)
    return Reserve.build(**fields)


def refused_on(field: str, **overrides: Any) -> BadInput:
    with pytest.raises(BadInput) as raised:
        build(**overrides)
    assert raised.value.details["field"] == field
    assert raised.value.code == "BAD_USER_INPUT"
    return raised.value


# --- a good request ---------------------------------------------------------------------------


def test_a_request_at_a_store_keeps_its_fields() -> None:
    cmd = build(
        lines=[("B", 2), ("A", 1)],
        hold_seconds=86400,
        idempotency_key="key-1",
        channel="web",
    )

    assert cmd == Reserve(
        customer_id="c1",
        lines=(Line("B", 2), Line("A", 1)),
        store_id="S001",
        near=None,
        radius_km=None,
        hold_seconds=86400,
        idempotency_key="key-1",
        channel="web",
    )
    assert cmd.units == {"A": 1, "B": 2}


def test_a_request_near_a_point_gets_the_default_radius() -> None:
    cmd = build(store_id=None, near=HERE)

    assert (cmd.store_id, cmd.near, cmd.radius_km) == (None, HERE, 50.0)


def test_a_request_near_a_point_keeps_its_radius() -> None:
    assert build(store_id=None, near=HERE, radius_km=12.5).radius_km == 12.5


def test_codes_are_trimmed() -> None:
    cmd = build(customer_id="  c1 ", lines=[(" SKU1\t", 1)], store_id=" S001 ", channel=" web ")

    assert (cmd.customer_id, cmd.lines, cmd.store_id, cmd.channel) == (
        "c1",
        (Line("SKU1", 1),),
        "S001",
        "web",
    )


# --- lines ------------------------------------------------------------------------------------


def test_no_lines_is_refused() -> None:
    refused_on("lines", lines=[])


def test_a_hundred_lines_are_accepted() -> None:
    cmd = build(lines=[(f"SKU{i:03}", 1) for i in range(100)])

    assert len(cmd.lines) == 100


def test_a_hundred_and_one_lines_are_refused() -> None:
    error = refused_on("lines", lines=[(f"SKU{i:03}", 1) for i in range(101)])

    assert "101" in error.message


def test_a_hundred_and_one_lines_are_refused_even_for_the_same_sku() -> None:
    refused_on("lines", lines=[("SKU1", 1)] * 101)


@pytest.mark.parametrize("quantity", [0, -1, 10_001, True, False, 1.5, "2", None])
def test_a_quantity_that_is_not_a_whole_number_from_1_to_10000_is_refused(quantity: Any) -> None:
    error = refused_on("quantity", lines=[("SKU1", quantity)])

    assert error.details["sku"] == "SKU1"


@pytest.mark.parametrize("quantity", [1, 10_000])
def test_quantities_at_the_limits_are_accepted(quantity: int) -> None:
    assert build(lines=[("SKU1", quantity)]).lines == (Line("SKU1", quantity),)


def test_the_same_sku_twice_becomes_one_line_with_the_units_added_up() -> None:
    cmd = build(lines=[("A", 2), ("B", 1), ("A", 3), (" A ", 4)])

    assert cmd.lines == (Line("A", 9), Line("B", 1))


def test_merged_units_over_10000_are_refused() -> None:
    refused_on("quantity", lines=[("A", 6000), ("A", 4001)])


# --- where ------------------------------------------------------------------------------------


def test_both_store_and_near_are_refused() -> None:
    refused_on("storeId", store_id="S001", near=HERE)


def test_neither_store_nor_near_is_refused() -> None:
    refused_on("storeId", store_id=None, near=None)


def test_a_radius_with_a_store_is_refused() -> None:
    refused_on("radiusKm", store_id="S001", radius_km=10.0)


@pytest.mark.parametrize("radius", [0.0, -5.0, 1000.5])
def test_a_radius_out_of_range_near_a_point_is_refused(radius: float) -> None:
    refused_on("radiusKm", store_id=None, near=HERE, radius_km=radius)


@pytest.mark.parametrize("store_id", ["", "   ", "S" * 65, "S\n1"])
def test_a_bad_store_id_is_refused(store_id: str) -> None:
    refused_on("storeId", store_id=store_id)


# --- idempotency key --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k", "k" * 128])
def test_idempotency_keys_of_1_to_128_characters_are_accepted(key: str) -> None:
    assert build(idempotency_key=key).idempotency_key == key


@pytest.mark.parametrize("key", ["", "k" * 129, "key\x00", "key\n"])
def test_an_empty_too_long_or_non_printable_idempotency_key_is_refused(key: str) -> None:
    refused_on("idempotencyKey", idempotency_key=key)


# --- customer id and SKU ----------------------------------------------------------------------

BAD_CODES = ["", "   ", "x" * 65, "c\n1", "c\x07", "\u200b"]


@pytest.mark.parametrize("customer_id", BAD_CODES)
def test_a_bad_customer_id_is_refused(customer_id: str) -> None:
    refused_on("customerId", customer_id=customer_id)


@pytest.mark.parametrize("sku", BAD_CODES)
def test_a_bad_sku_is_refused(sku: str) -> None:
    refused_on("sku", lines=[("GOOD", 1), (sku, 1)])


@pytest.mark.parametrize("channel", BAD_CODES)
def test_a_bad_channel_is_refused(channel: str) -> None:
    refused_on("channel", channel=channel)


def test_codes_of_64_characters_are_accepted() -> None:
    code = "x" * 64

    cmd = build(customer_id=code, lines=[(code, 1)])

    assert (cmd.customer_id, cmd.lines[0].sku) == (code, code)


# --- fingerprint ------------------------------------------------------------------------------


def test_the_same_request_has_the_same_fingerprint_whatever_the_line_order() -> None:
    one = build(lines=[("A", 1), ("B", 2), ("C", 3)], idempotency_key="k1")
    other = build(lines=[("C", 3), ("A", 1), ("B", 2)], idempotency_key="k1")

    assert one.fingerprint() == other.fingerprint()
    assert len(one.fingerprint()) == 64


def test_split_and_merged_lines_of_the_same_units_have_the_same_fingerprint() -> None:
    assert build(lines=[("A", 1), ("A", 2)]).fingerprint() == build(lines=[("A", 3)]).fingerprint()


BASE: dict[str, Any] = {
    "customer_id": "c1",
    "lines": [("A", 1), ("B", 2)],
    "store_id": None,
    "near": HERE,
    "radius_km": 10.0,
    "hold_seconds": 7200,
    "channel": "web",
}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"lines": [("A", 2), ("B", 2)]}, id="quantity"),
        pytest.param({"lines": [("A", 1), ("C", 2)]}, id="sku"),
        pytest.param({"lines": [("A", 1)]}, id="fewer-lines"),
        pytest.param({"near": GeoPoint(51.5, -0.13)}, id="near"),
        pytest.param({"radius_km": 11.0}, id="radius"),
        pytest.param({"near": None, "radius_km": None, "store_id": "S001"}, id="store"),
        pytest.param({"hold_seconds": 86400}, id="hold"),
        pytest.param({"hold_seconds": None}, id="default-hold"),
        pytest.param({"channel": "app"}, id="channel"),
        pytest.param({"channel": None}, id="no-channel"),
    ],
)
def test_a_different_request_has_a_different_fingerprint(change: dict[str, Any]) -> None:
    # Idempotency keys belong to one customer, so the customer is not part of the fingerprint.
    base = Reserve.build(**BASE)
    changed = Reserve.build(**{**BASE, **change})

    assert base.fingerprint() != changed.fingerprint()


def test_two_different_stores_have_different_fingerprints() -> None:
    assert build(store_id="S001").fingerprint() != build(store_id="S002").fingerprint()


def test_the_idempotency_key_itself_is_not_part_of_the_fingerprint() -> None:
    assert build(idempotency_key="a").fingerprint() == build(idempotency_key="b").fingerprint()


def test_codes_containing_the_fingerprints_separators_do_not_collide() -> None:
    # One SKU "Ax1,B" is not the two SKUs "A" and "B"; printable codes may hold "x", "," and "|".
    one_odd_sku = build(lines=[("Ax1,B", 1)])
    two_skus = build(lines=[("A", 1), ("B", 1)])

    assert one_odd_sku.fingerprint() != two_skus.fingerprint()
