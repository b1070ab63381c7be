"""The catalogue: stores (pickup locations) and SKUs, and the WMS's counts of what is on hand."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.commands import validate_code
from domain.errors import BadInput
from domain.geo import GeoPoint

MAX_UNITS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    name: str
    lat: float
    lon: float
    timezone: str
    # One line of postal address, for the shopper going there (None: not given).
    address: str | None = None

    @classmethod
    def build(
        cls,
        *,
        id: str,
        name: str,
        lat: float,
        lon: float,
        timezone: str,
        address: str | None = None,
    ) -> Store:
        try:
            GeoPoint(lat, lon)
        except BadInput as error:
            raise BadInput(f"Store {id}: {error.message}", **error.details) from None
        name = name.strip()
        if not name or len(name) > 200:
            raise BadInput(f"Store {id}: name must be 1 to 200 characters.", field="name")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput(
                f"Store {id}: {timezone!r} is not an IANA time zone (e.g. Europe/London).",
                field="timezone",
            ) from None
        return cls(
            validate_code(id, "id"),
            name,
            float(lat),
            float(lon),
            timezone,
            validate_address(id, address),
        )


MAX_ADDRESS_LENGTH = 200


def validate_address(store_id: str, address: str | None) -> str | None:
    """A store's postal address on one line, trimmed; empty means none."""
    if address is None:
        return None
    address = address.strip()
    if len(address) > MAX_ADDRESS_LENGTH or not address.isprintable():
        raise BadInput(
            f"Store {store_id}: address must be one line of at most {MAX_ADDRESS_LENGTH} "
            "printable characters.",
            field="address",
        )
    return address or None


@dataclass(frozen=True, slots=True)
class Sku:
    code: str
    name: str | None = None
    unit_price: Decimal | None = None

    @classmethod
    def build(cls, *, code: str, name: str | None = None, unit_price: Decimal | None = None) -> Sku:
        if name is not None and len(name) > 200:
            raise BadInput(f"SKU {code}: name takes at most 200 characters.", field="name")
        if unit_price is not None:
            try:
                price = Decimal(unit_price).quantize(Decimal("0.01"))
            except InvalidOperation:
                raise BadInput(
                    f"SKU {code}: unitPrice is not a number.", field="unitPrice"
                ) from None
            if not (price.is_finite() and 0 <= price < 10**10):
                raise BadInput(
                    f"SKU {code}: unitPrice must be from 0 to 9999999999.99.", field="unitPrice"
                )
            unit_price = price
        return cls(validate_code(code, "sku"), name, unit_price)


@dataclass(frozen=True, slots=True)
class StockCount:
    """An absolute count from the WMS: what is physically on hand at a store."""

    store_id: str
    sku: str
    on_hand: int
    safety_stock: int | None = None

    @classmethod
    def build(
        cls, *, store_id: str, sku: str, on_hand: int, safety_stock: int | None = None
    ) -> StockCount:
        for name, value in (("onHand", on_hand), ("safetyStock", safety_stock)):
            if value is not None and not 0 <= value <= MAX_UNITS:
                raise BadInput(
                    f"{name} of {sku} at {store_id} must be from 0 to {MAX_UNITS}, got {value}.",
                    field=name,
                )
        return cls(
            validate_code(store_id, "storeId"), validate_code(sku, "sku"), on_hand, safety_stock
        )
