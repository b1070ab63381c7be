"""The value hint the edge reads from a raw payload, per channel: where each keeps its total."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.channels.value import value_hint
from domain.intake import SalesChannel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_bytes())


@pytest.mark.parametrize(
    ("channel", "path", "expected"),
    [
        (SalesChannel.SHOPIFY, "shopify/webhook_orders_create_docs_sample_2023-07.json", None),
        (SalesChannel.WOOCOMMERCE, "woocommerce/wc_rest_v3_retrieve_order_727_docs.json", None),
        (SalesChannel.SQUARE, "square/square_retrieve_order_response_docs.json", None),
        (SalesChannel.AMAZON, "amazon/spapi_2026_getOrder_in_store_pickup.json", "49.99"),
        (
            SalesChannel.BIGCOMMERCE,
            "bigcommerce/bc_envelope_pickup_guest_messy_authored.json",
            None,
        ),
    ],
)
def test_the_published_samples_state_their_totals(
    channel: SalesChannel, path: str, expected: str | None
) -> None:
    payload = fixture(path)
    hint = value_hint(channel, payload)
    if expected is not None:
        assert hint == Decimal(expected)
    else:
        assert hint is not None
        assert hint > 0


@pytest.mark.parametrize(
    ("channel", "payload", "expected"),
    [
        (SalesChannel.SHOPIFY, {"total_price": "199.00"}, Decimal("199.00")),
        (SalesChannel.SHOPIFY, {"order": {"total_price": 12.5}}, Decimal("12.5")),
        (SalesChannel.WOOCOMMERCE, {"total": "29.35"}, Decimal("29.35")),
        (SalesChannel.BIGCOMMERCE, {"order": {"total_inc_tax": "61.9700"}}, Decimal("61.97")),
        (
            SalesChannel.SQUARE,
            {"total_money": {"amount": 3699, "currency": "USD"}},
            Decimal("36.99"),
        ),
        (SalesChannel.SQUARE, {"order": {"total_money": {"amount": 500, "currency": "JPY"}}}, 500),
        (
            SalesChannel.SQUARE,
            {"total_money": {"amount": 1234, "currency": "kwd"}},
            Decimal("1.234"),
        ),
        (SalesChannel.ADOBE_COMMERCE, {"grand_total": 88}, Decimal(88)),
        (
            SalesChannel.AMAZON,
            {"getOrder": {"payload": {"OrderTotal": {"Amount": "9.99"}}}},
            Decimal("9.99"),
        ),
        (SalesChannel.GENERIC, {"total": {"amount": "20.00", "currency": "EUR"}}, Decimal(20)),
    ],
)
def test_each_channel_is_read_where_it_keeps_the_total(
    channel: SalesChannel, payload: Any, expected: Decimal
) -> None:
    assert value_hint(channel, payload) == expected


@pytest.mark.parametrize(
    "total",
    ["", "free", "-5", "NaN", "Infinity", "1e30", True, None, [], {"amount": 1}],
)
def test_a_total_that_is_not_a_plausible_amount_is_no_hint(total: object) -> None:
    assert value_hint(SalesChannel.SHOPIFY, {"total_price": total}) is None


def test_a_body_that_is_not_an_object_has_no_hint() -> None:
    assert value_hint(SalesChannel.WOOCOMMERCE, [1, 2]) is None
    assert value_hint(SalesChannel.SQUARE, "x") is None
