"""What an order is worth, read from its raw payload at the edge, before any adapter has read it:
the worker takes an account's waiting orders highest value first (after its cancels). A hint for
ordering only, never money ROPOS acts on: the adapter's reading decides the order's value later.
A payload whose total is not where its channel keeps it, or not a number, has no hint."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.intake import SalesChannel, currency_exponent

# Larger totals are not believed (and would not fit the column).
MAX_HINT = Decimal(10) ** 15

# Where each channel keeps an order's total, tried in turn.
_TOTALS: dict[SalesChannel, tuple[tuple[str, ...], ...]] = {
    SalesChannel.SHOPIFY: (("total_price",), ("order", "total_price")),
    SalesChannel.WOOCOMMERCE: (("total",), ("order", "total")),
    SalesChannel.BIGCOMMERCE: (("order", "total_inc_tax"), ("total_inc_tax",)),
    SalesChannel.ADOBE_COMMERCE: (
        ("grand_total",),
        ("entity", "grand_total"),
        ("data", "value", "grand_total"),
        ("event", "data", "value", "grand_total"),
    ),
    SalesChannel.AMAZON: (
        ("order", "proceeds", "grandTotal", "amount"),
        ("proceeds", "grandTotal", "amount"),
        ("getOrder", "payload", "OrderTotal", "Amount"),
        ("payload", "OrderTotal", "Amount"),
        ("OrderTotal", "Amount"),
    ),
    SalesChannel.GENERIC: (("total", "amount"),),
}
# Square keeps money in minor units, beside its currency.
_SQUARE_TOTALS: tuple[tuple[str, ...], ...] = (
    ("total_money",),
    ("order", "total_money"),
    ("data", "object", "order", "total_money"),
)


def _at(payload: Any, path: Sequence[str]) -> Any:
    found = payload
    for step in path:
        if not isinstance(found, dict):
            return None
        found = found.get(step)
    return found


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount >= MAX_HINT:
        return None
    return amount.quantize(Decimal("0.0001"))


def value_hint(channel: SalesChannel, payload: Any) -> Decimal | None:
    """The order's total as its payload states it, or None."""
    if channel is SalesChannel.SQUARE:
        for path in _SQUARE_TOTALS:
            money = _at(payload, path)
            if isinstance(money, dict):
                minor = _amount(money.get("amount"))
                currency = money.get("currency")
                if minor is not None:
                    exponent = (
                        currency_exponent(currency.upper()) if isinstance(currency, str) else 2
                    )
                    return _amount(minor.scaleb(-exponent))
        return None
    for path in _TOTALS.get(channel, ()):
        amount = _amount(_at(payload, path))
        if amount is not None:
            return amount
    return None
