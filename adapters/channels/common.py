"""What every channel adapter needs to read a payload the way a person would: exact ids,
timestamps in the forms channels really send, quantities and prices as numbers or strings,
cleaned names, guest customers, coordinates that may be placeholders.

Tolerant where a person would be, strict where money or stock is at stake: a timestamp that
cannot be read is repaired to the receive time (with a decision saying so), but a quantity
that is not a positive whole number, or an amount that is not a number, refuses the payload
(`PayloadRefused`): guessing there would reserve the wrong units or charge the wrong price.

Bodies are decoded with `loads`, which keeps every JSON number exact: integers as `int`
(whatever their size) and the rest as `Decimal`, never through a float.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from email.utils import parsedate_to_datetime
from typing import Any

from domain.errors import BadInput
from domain.geo import GeoPoint
from domain.intake import (
    ChannelAdapter,
    Decision,
    Delivery,
    Money,
    NotAnOrder,
    Parsed,
    PayloadRefused,
    RuleAction,
    SalesChannel,
    currency_exponent,
)

MAX_TEXT = 200
MAX_ID = 128
_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<\s*(script|style)\b.*?(<\s*/\s*\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")
_FRACTION = re.compile(r"(\.\d{6})\d+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What people type where a coordinate or an id should be, meaning "none".
_PLACEHOLDERS = {"", "0", "null", "none", "n/a", "na", "-", "undefined", "unknown"}


def loads(body: bytes) -> Any:
    """JSON with exact numbers (raises ValueError for a body that is not JSON)."""
    return json.loads(body, parse_float=Decimal)


class Reader:
    """Reads the fields of one order's payload and keeps the decisions it had to take."""

    def __init__(self, delivery: Delivery, *, zone: tzinfo = UTC) -> None:
        self.delivery = delivery
        self.zone = zone
        self.decisions: list[Decision] = []

    def decide(
        self,
        rule: str,
        message: str,
        *,
        field: str | None = None,
        action: RuleAction = RuleAction.REPAIR,
    ) -> None:
        self.decisions.append(Decision(rule, action, message, field))

    # --- ids ------------------------------------------------------------------------------

    def exact_id(self, field: str, *candidates: object) -> str:
        """The order's (or a line's) id from the places the payload carries it, most exact
        first (a GraphQL id's number, a string id, then a JSON number). Where they disagree
        (a number that went through a float), the exact one wins and a decision records it.
        Raises PayloadRefused when there is none."""
        found = [c for c in (id_text(v) for v in candidates) if c is not None]
        if not found:
            raise PayloadRefused("MISSING_ID", f"The payload has no {field}.", field=field)
        chosen = found[0]
        for other in found[1:]:
            if other != chosen:
                self.decide(
                    "id.disagree",
                    f"{field} appears as {chosen!r} and {other!r}; kept the exact {chosen!r}.",
                    field=field,
                )
                break
        return chosen

    # --- times ----------------------------------------------------------------------------

    def timestamp(self, field: str, value: object, *, required: bool = False) -> datetime | None:
        """A time as channels send them (see `parse_timestamp`). One that cannot be read is
        repaired to the receive time when `required`, else left out; a decision says so."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.decide(
                    "timestamp.unreadable", f"No {field}; used the receive time.", field=field
                )
                return self.delivery.received_at
            return None
        parsed = parse_timestamp(value, self.zone)
        if parsed is None:
            self.decide(
                "timestamp.unreadable",
                f"{field} {str(value)[:40]!r} is not a time; used the receive time.",
                field=field,
                action=RuleAction.REPAIR if required else RuleAction.WARN,
            )
            return self.delivery.received_at if required else None
        return parsed

    # --- quantities and money -------------------------------------------------------------

    def quantity(self, field: str, value: object) -> int:
        return parse_quantity(field, value)

    def money(
        self, field: str, value: object, currency: str | None, *, minor_units: bool = False
    ) -> Money | None:
        """An amount (number, decimal string, or an integer of minor units) in `currency`.
        None when absent; PayloadRefused when present but not a number or no currency."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not currency:
            raise PayloadRefused(
                "MISSING_CURRENCY", f"{field} has an amount but no currency.", field=field
            )
        amount = parse_decimal(field, value)
        if minor_units:
            if amount != amount.to_integral_value():
                raise PayloadRefused(
                    "INVALID_AMOUNT",
                    f"{field} must be whole minor units, got {value!r}.",
                    field=field,
                )
            amount = amount.scaleb(-currency_exponent(currency))
        return Money(amount, currency)

    def unit_price(self, field: str, line_total: Money, quantity: int) -> Money:
        """A line total over its quantity: exact when it divides, else rounded to the currency's
        minor unit, with a decision."""
        with localcontext() as context:
            context.traps[Inexact] = True
            try:
                return Money(line_total.amount / quantity, line_total.currency)
            except Inexact:
                pass
        unit = Decimal(1).scaleb(-currency_exponent(line_total.currency))
        rounded = (line_total.amount / quantity).quantize(unit)
        self.decide(
            "line.unit_price_rounded",
            f"{field} {line_total.amount} is the line total of {quantity} units and does not "
            f"divide; the unit price is rounded to {rounded}.",
            field=field,
        )
        return Money(rounded, line_total.currency)

    def currency(self, field: str, value: object) -> str | None:
        return parse_currency(field, value)

    # --- people and places ----------------------------------------------------------------

    def text(self, value: object, *, limit: int = MAX_TEXT) -> str | None:
        return clean_text(value, limit=limit)

    def email(self, field: str, value: object) -> str | None:
        if value is None:
            return None
        text = str(value).strip().lower()
        if text in _PLACEHOLDERS:
            return None
        if not _EMAIL.match(text) or len(text) > 254:
            self.decide(
                "customer.email_invalid",
                f"{field} is not an email address; left out.",
                field=field,
                action=RuleAction.WARN,
            )
            return None
        return text

    def point(self, field: str, lat: object, lon: object) -> GeoPoint | None:
        """A coordinate pair, as numbers or strings; placeholders mean none; a pair out of
        range is left out with a decision."""
        if _placeholder(lat) and _placeholder(lon):
            return None
        try:
            la, lo = float(str(lat).strip()), float(str(lon).strip())
        except ValueError:
            self.decide(
                "location.unreadable",
                f"{field} is not a coordinate; left out.",
                field=field,
                action=RuleAction.WARN,
            )
            return None
        if not (math.isfinite(la) and math.isfinite(lo)) or (la == 0 and lo == 0):
            self.decide(
                "location.unreadable",
                f"{field} is a placeholder; left out.",
                field=field,
                action=RuleAction.WARN,
            )
            return None
        try:
            return GeoPoint(la, lo)
        except BadInput:
            self.decide(
                "location.out_of_range",
                f"{field} ({la}, {lo}) is out of range; left out.",
                field=field,
                action=RuleAction.WARN,
            )
            return None

    def emails(self, field: str, values: Iterable[object]) -> tuple[str | None, tuple[str, ...]]:
        """The order's email and any different ones it also carries (billing vs customer)."""
        seen: list[str] = []
        for value in values:
            email = self.email(field, value)
            if email is not None and email not in seen:
                seen.append(email)
        if len(seen) > 1:
            self.decide(
                "customer.emails_differ",
                f"The order carries {len(seen)} different emails; kept the first.",
                field=field,
                action=RuleAction.WARN,
            )
        return (seen[0] if seen else None), tuple(seen[1:])


def id_text(value: object) -> str | None:
    """An id as exact text: ints as they are, strings trimmed, a GraphQL id (`gid://x/Order/12`)
    as its number; 0, empty and placeholders are no id. A non-integral number is no id; an
    integral Decimal is kept only below 2**53 (above, it went through a float and is not exact)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if value == 0 else str(value)
    if isinstance(value, Decimal | float):
        number = Decimal(value)
        if not number.is_finite() or number != int(number) or abs(number) >= 2**53:
            return None
        return None if number == 0 else str(int(number))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("gid://"):
            text = text.rsplit("/", 1)[-1].split("?", 1)[0]
        if text.lower() in _PLACEHOLDERS or len(text) > MAX_ID or not text.isprintable():
            return None
        return text
    return None


def customer_id(value: object) -> str | None:
    """A channel customer id; 0, null, absent, empty mean a guest."""
    return id_text(value)


def parse_timestamp(value: object, zone: tzinfo = UTC) -> datetime | None:
    """ISO 8601 with or without offset, with a space for the T, with nanoseconds, with stray
    spaces; RFC 2822; epoch seconds or milliseconds. A time without a zone is in `zone` (the
    channel's documented zone). Returned in UTC; None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = _SPACES.sub(" ", value.strip())
    if not text:
        return None
    parsed = _iso(text)
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _iso(text: str) -> datetime | None:
    candidate = text.replace(" T", "T").replace("T ", "T")
    if len(candidate) > 10 and candidate[10] == " ":
        candidate = candidate[:10] + "T" + candidate[11:]
    candidate = _FRACTION.sub(r"\1", candidate)  # nanoseconds -> microseconds
    candidate = re.sub(r"\s+(?=[+-]\d{2}:?\d{2}$|Z$|UTC$)", "", candidate)
    if candidate.endswith("UTC"):
        candidate = candidate[:-3] + "+00:00"
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None


def parse_decimal(field: str, value: object) -> Decimal:
    if isinstance(value, bool):
        raise PayloadRefused(
            "INVALID_AMOUNT", f"{field} must be a number, got {value!r}.", field=field
        )
    if isinstance(value, Decimal | int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace(",", "") if value.count(".") == 1 else value.strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise PayloadRefused(
                "INVALID_AMOUNT", f"{field} must be a number, got {value[:40]!r}.", field=field
            ) from None
    else:
        raise PayloadRefused("INVALID_AMOUNT", f"{field} must be a number.", field=field)
    if not amount.is_finite():
        raise PayloadRefused("INVALID_AMOUNT", f"{field} must be a finite number.", field=field)
    return amount


def parse_quantity(field: str, value: object) -> int:
    """1, "1", "3.000000", 2.0 become integers; a fractional, non-positive or non-numeric
    quantity refuses the order: units are stock."""
    try:
        amount = parse_decimal(field, value)
    except PayloadRefused:
        raise PayloadRefused(
            "INVALID_QUANTITY",
            f"{field} must be a whole number, got {str(value)[:40]!r}.",
            field=field,
        ) from None
    if amount != amount.to_integral_value() or amount <= 0:
        raise PayloadRefused(
            "INVALID_QUANTITY",
            f"{field} must be a positive whole number, got {value!r}.",
            field=field,
        )
    return int(amount)


def parse_currency(field: str, value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().upper()
    if not text:
        return None
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise PayloadRefused(
            "INVALID_CURRENCY", f"{field} {text[:10]!r} is not an ISO 4217 code.", field=field
        )
    return text


def clean_text(value: object, *, limit: int = MAX_TEXT) -> str | None:
    """A name for people to read: HTML entities decoded, tags (and so any script) removed,
    whitespace collapsed, cut to `limit` characters; None when nothing is left."""
    if value is None:
        return None
    text = html.unescape(html.unescape(str(value)))
    text = _TAG.sub("", _SCRIPT.sub("", text))
    text = "".join(ch for ch in text if ch.isprintable() or ch == " ")
    text = _SPACES.sub(" ", text).strip()
    return text[:limit] or None


def clean_sku(value: object) -> str | None:
    """A SKU as the channel sent it, trimmed; numbers as their digits; empty is none. Whether it
    names a SKU ROPOS knows is for validation, not for reading."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    text = _SPACES.sub(" ", str(value)).strip()
    return text or None


def _placeholder(value: object) -> bool:
    return value is None or str(value).strip().lower() in _PLACEHOLDERS


_TRUE = frozenset({"1", "true", "yes", "y"})
# What a shipping method's title or code says when it means collecting in store, and what looks
# like it but is a carrier's pickup point (a shipping destination, not the store).
PICKUP_WORDS = re.compile(
    r"pick[\s_-]?up|click\s*(?:&|&amp;|and|\+|n)\s*collect|collect\s+in[\s-]?(?:store|person)"
    r"|in[\s-]?store\s+collection",
    re.IGNORECASE,
)
NOT_A_STORE = re.compile(r"pick[\s_-]?up[\s_-]?point|parcel|locker|relay", re.IGNORECASE)


def flag(value: object) -> bool:
    """A boolean as channels send it: true/false, 1/0, "1"/"0", "yes"."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    return str(value).strip().lower() in _TRUE


def header(delivery: Delivery, name: str) -> str | None:
    """A delivery header, by case-insensitive name."""
    return lower_keys(delivery.headers).get(name.lower())


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def as_list(value: object) -> list[Any]:
    """A list field that channels send as a list, a single object, or nothing."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def refuse_unless_dict(payload: object, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadRefused("MALFORMED", f"The body must be a JSON object holding {what}.")
    return payload


__all__ = [
    "ChannelAdapter",
    "Delivery",
    "NotAnOrder",
    "Parsed",
    "Reader",
    "SalesChannel",
    "as_dict",
    "as_list",
    "clean_sku",
    "clean_text",
    "customer_id",
    "flag",
    "header",
    "id_text",
    "loads",
    "parse_currency",
    "parse_quantity",
    "parse_timestamp",
    "refuse_unless_dict",
]
