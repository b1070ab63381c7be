"""Resolvers of the order intake (ops): channel accounts, intake messages and what ops do with
them. Each parses its arguments, calls one use case and maps the result."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry

from domain import intake as domain
from domain.errors import BadInput, NotFound
from domain.geo import GeoPoint
from schema import intake as types
from schema.context import Info
from services.intake import accounts, health, ops, sweep

MessageId = Annotated[strawberry.ID, strawberry.argument(description="The intake message's id.")]
OnlyChannel = Annotated[
    types.SalesChannel | None, strawberry.argument(description="Only this channel's.")
]
OnlyAccount = Annotated[
    str | None, strawberry.argument(description="Only this account's (its code).")
]

# What a corrected order may hold: as many lines as any channel sends, text of a sane length.
MAX_ORDER_LINES = 1_000
MAX_TEXT = 500
MAX_EXTERNAL_ID = 128
_CURRENCY = re.compile(r"[A-Z]{3}")

V = TypeVar("V")


# --- queries --------------------------------------------------------------------------------------


async def channel_accounts(info: Info, channel: OnlyChannel = None) -> list[types.ChannelAccount]:
    await info.context.deps.intake_counts.flush()  # authFailures as of now
    found = await accounts.list_accounts(
        channel.domain if channel is not None else None, uow=info.context.deps.uow
    )
    return [types.ChannelAccount.from_domain(a) for a in found]


async def intake_message(info: Info, id: MessageId) -> types.IntakeMessage | None:
    deps = info.context.deps
    found = await ops.message(str(id), uow=deps.uow)
    return types.IntakeMessage.from_domain(found, deps.clock.now()) if found else None


async def intake_messages(
    info: Info,
    status: Annotated[
        list[types.IntakeStatus] | None,
        strawberry.argument(description="Only messages in these statuses (omitted: all)."),
    ] = None,
    channel: OnlyChannel = None,
    account: OnlyAccount = None,
    first: Annotated[int, strawberry.argument(description="How many, 1 to 500.")] = 50,
    order_by: Annotated[
        types.IntakeOrder, strawberry.argument(description="Newest first, or most impact first.")
    ] = types.IntakeOrder.RECEIVED_AT_DESC,
) -> list[types.IntakeMessage]:
    deps = info.context.deps
    found = await ops.messages(
        statuses=tuple(dict.fromkeys(s.domain for s in status or ())),
        channel=channel.domain if channel is not None else None,
        account=account,
        first=first,
        by_impact=order_by is types.IntakeOrder.IMPACT_DESC,
        uow=deps.uow,
        clock=deps.clock,
    )
    now = deps.clock.now()
    return [types.IntakeMessage.from_domain(m, now) for m in found]


async def channel_order(
    info: Info,
    channel: Annotated[types.SalesChannel, strawberry.argument(description="The channel.")],
    account: Annotated[str, strawberry.argument(description="The channel account's code.")],
    external_id: Annotated[str, strawberry.argument(description="The channel's order id.")],
) -> types.ChannelOrder | None:
    held = await ops.channel_order(channel.domain, account, external_id, uow=info.context.deps.uow)
    return types.ChannelOrder.from_held(held) if held else None


Since = Annotated[
    datetime | None,
    strawberry.argument(description="The window's start (received at or after; default 24 h ago)."),
]
Until = Annotated[
    datetime | None,
    strawberry.argument(description="The window's end (received at or before; default now)."),
]


async def intake_health(
    info: Info,
    channel: Annotated[types.SalesChannel, strawberry.argument(description="The channel.")],
    account: Annotated[str, strawberry.argument(description="The channel account's code.")],
    since: Since = None,
    until: Until = None,
) -> types.IntakeHealth:
    deps = info.context.deps
    await deps.intake_counts.flush()  # this process's latest counts too
    found = await health.account_health(
        channel.domain, account, since, until, uow=deps.uow, clock=deps.clock
    )
    return types.IntakeHealth.from_domain(found)


async def intake_health_by_account(
    info: Info, since: Since = None, until: Until = None
) -> list[types.IntakeHealth]:
    deps = info.context.deps
    await deps.intake_counts.flush()
    found = await health.every_account_health(since, until, uow=deps.uow, clock=deps.clock)
    return [types.IntakeHealth.from_domain(h) for h in found]


async def validation_profile(
    info: Info,
    channel: Annotated[types.SalesChannel, strawberry.argument(description="The channel.")],
    account: Annotated[
        str | None,
        strawberry.argument(
            description="The account whose effective profile to show (omitted: the channel's "
            "defaults)."
        ),
    ] = None,
) -> list[types.ValidationRule]:
    if account is None:
        return types.validation_profile(channel.domain, {})
    found = await _account(info, channel.domain, account)
    return types.validation_profile(found.channel, found.rules)


async def _account(info: Info, channel: domain.SalesChannel, code: str) -> domain.ChannelAccount:
    # The accounts service lists a channel's accounts; there is no lookup of one.
    listed = await accounts.list_accounts(channel, uow=info.context.deps.uow)
    found = next((a for a in listed if a.account == code), None)
    if found is None:
        raise NotFound(f"No channel account {channel.value}/{code[:60]}.")
    return found


# --- mutations ------------------------------------------------------------------------------------


async def upsert_channel_account(
    info: Info,
    input: Annotated[
        types.ChannelAccountInput,
        strawberry.argument(description="The account, or the fields of it to change."),
    ],
) -> types.ChannelAccount:
    deps = info.context.deps
    change = accounts.AccountChange(
        channel=input.channel.domain,
        account=input.account,
        secret=input.secret,
        secret_grace_seconds=input.secret_grace_seconds,
        default_store_id=str(input.default_store_id)
        if input.default_store_id is not None
        else None,
        locations=None
        if input.locations is None
        else _mapping(
            ((x.channel_location_id, str(x.store_id)) for x in input.locations), "locations"
        ),
        products=None
        if input.products is None
        else _mapping(((x.channel_product_id, x.sku) for x in input.products), "products"),
        rules=None
        if input.rules is None
        else _mapping(((x.rule, x.action.domain) for x in input.rules), "rules"),
        api_base_url=input.api_base_url,
        api_token=input.api_token,
        assume_pickup=input.assume_pickup,
        notification_url=input.notification_url,
        max_backlog=input.max_backlog,
        weight=input.weight,
        enabled=input.enabled,
    )
    saved = await accounts.upsert_account(
        change, uow=deps.uow, clock=deps.clock, cache=deps.intake_accounts
    )
    return types.ChannelAccount.from_domain(saved)


async def sweep_channel_account(
    info: Info,
    channel: Annotated[types.SalesChannel, strawberry.argument(description="The channel.")],
    account: Annotated[str, strawberry.argument(description="The channel account's code.")],
    since: Annotated[
        datetime, strawberry.argument(description="Orders changed at or after this time.")
    ],
    until: Annotated[
        datetime | None,
        strawberry.argument(description="Orders changed at or before this time (default now)."),
    ] = None,
) -> types.IntakeSweep:
    deps = info.context.deps
    found = await sweep.sweep_range(
        channel.domain,
        account,
        since,
        until,
        apis=deps.channel_apis,
        uow=deps.uow,
        clock=deps.clock,
    )
    if found.fed:
        deps.wake_intake()
    return types.IntakeSweep.from_domain(found)


async def replay_intake_message(info: Info, id: MessageId) -> types.IntakeMessage:
    deps = info.context.deps
    replayed = await ops.replay(str(id), _actor(info), uow=deps.uow, clock=deps.clock)
    deps.wake_intake()
    return types.IntakeMessage.from_domain(replayed, deps.clock.now())


async def replay_intake_messages(
    info: Info,
    status: Annotated[
        types.IntakeStatus,
        strawberry.argument(
            description="Replay every message in this status (DEAD, REJECTED, IGNORED, "
            "DISCARDED or RETRYING)."
        ),
    ],
    channel: OnlyChannel = None,
    account: OnlyAccount = None,
) -> int:
    deps = info.context.deps
    replayed = await ops.replay_many(
        status=status.domain,
        channel=channel.domain if channel is not None else None,
        account=account,
        actor=_actor(info),
        uow=deps.uow,
        clock=deps.clock,
    )
    deps.wake_intake()
    return replayed


async def discard_intake_message(
    info: Info,
    id: MessageId,
    reason: Annotated[
        str, strawberry.argument(description="Why it is given up on (1 to 500 characters).")
    ],
) -> types.IntakeMessage:
    deps = info.context.deps
    discarded = await ops.discard(str(id), reason, _actor(info), uow=deps.uow, clock=deps.clock)
    return types.IntakeMessage.from_domain(discarded, deps.clock.now())


async def resubmit_intake_message(
    info: Info,
    id: MessageId,
    order: Annotated[
        types.ChannelOrderInput,
        strawberry.argument(
            description="The corrected order: same channel, account and externalId; it runs "
            "again from validation."
        ),
    ],
) -> types.IntakeMessage:
    deps = info.context.deps
    resubmitted = await ops.resubmit(
        str(id), _order(order), _actor(info), uow=deps.uow, clock=deps.clock
    )
    deps.wake_intake()
    return types.IntakeMessage.from_domain(resubmitted, deps.clock.now())


def _actor(info: Info) -> str:
    return info.context.require_actor().subject


def _mapping(pairs: Iterable[tuple[str, V]], field: str) -> dict[str, V]:
    """A list of input pairs as a map; a key given twice with different values is refused
    (a map cannot keep both, and silently keeping one would hide the mistake)."""
    found: dict[str, V] = {}
    for key, value in pairs:
        if found.get(key, value) != value:
            raise BadInput(f"{field} names {key[:60]!r} twice, differently.", field=field)
        found[key] = value
    return found


# --- the corrected order --------------------------------------------------------------------------


def _order(order: types.ChannelOrderInput) -> domain.ChannelOrder:
    """The input as a canonical order, every field checked (BadInput names it: order.lines[2].
    unitPrice.currency); what the validation rules judge (SKUs, quantities, stores) is left to
    them, as for any channel's order."""
    if not 1 <= len(order.external_id) <= MAX_EXTERNAL_ID or not order.external_id.isprintable():
        raise BadInput(
            f"externalId must be 1 to {MAX_EXTERNAL_ID} printable characters.",
            field="order.externalId",
        )
    if len(order.lines) > MAX_ORDER_LINES:
        raise BadInput(
            f"An order takes at most {MAX_ORDER_LINES} lines, got {len(order.lines)}.",
            field="order.lines",
        )
    customer = order.customer or types.ChannelCustomerInput()
    return domain.ChannelOrder(
        channel=order.channel.domain,
        account=order.account,
        external_id=order.external_id,
        external_number=_text(order.external_number, "order.externalNumber"),
        event=domain.OrderEvent[order.event.name],
        placed_at=_moment(order.placed_at, "order.placedAt"),
        updated_at=_moment(order.updated_at, "order.updatedAt"),
        status=_text(order.status, "order.status"),
        cancelled=order.cancelled,
        customer=domain.Customer(
            id=_text(customer.id, "order.customer.id"),
            email=_text(customer.email, "order.customer.email"),
            guest=customer.id is None if customer.guest is None else customer.guest,
        ),
        currency=_currency(order.currency, "order.currency"),
        presentment_currency=_currency(order.presentment_currency, "order.presentmentCurrency"),
        total=_money(order.total, "order.total"),
        lines=tuple(_line(line, f"order.lines[{i}]") for i, line in enumerate(order.lines)),
        pickup=domain.Pickup(
            requested=order.pickup.requested,
            channel_location_id=_text(
                order.pickup.channel_location_id, "order.pickup.channelLocationId"
            ),
            store_id=_text(
                str(order.pickup.store_id) if order.pickup.store_id is not None else None,
                "order.pickup.storeId",
            ),
        ),
        customer_location=_point(order),
    )


def _line(line: types.ChannelOrderLineInput, field: str) -> domain.OrderLine:
    return domain.OrderLine(
        sku=_text(line.sku, f"{field}.sku"),
        quantity=line.quantity,
        channel_product_id=_text(line.channel_product_id, f"{field}.channelProductId"),
        name=_text(line.name, f"{field}.name"),
        unit_price=_money(line.unit_price, f"{field}.unitPrice"),
        line_id=_text(line.line_id, f"{field}.lineId"),
    )


def _text(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise BadInput(f"{field} has at most {MAX_TEXT} characters.", field=field)
    return value


def _moment(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise BadInput(f"{field} needs a time zone offset, e.g. Z or +01:00.", field=field)
    return value


def _currency(value: str | None, field: str) -> str | None:
    if value is not None and not _CURRENCY.fullmatch(value):
        raise BadInput(f"{field} must be an ISO 4217 code such as EUR.", field=field)
    return value


def _money(value: types.MoneyInput | None, field: str) -> domain.Money | None:
    if value is None:
        return None
    if not value.amount.is_finite():
        raise BadInput(f"{field}.amount must be a finite number.", field=f"{field}.amount")
    currency = _currency(value.currency, f"{field}.currency")
    assert currency is not None
    return domain.Money(value.amount, currency)


def _point(order: types.ChannelOrderInput) -> GeoPoint | None:
    point = order.customer_location
    if point is None:
        return None
    for name, value, bound in (("lat", point.lat, 90.0), ("lon", point.lon, 180.0)):
        if not (math.isfinite(value) and -bound <= value <= bound):
            field = f"order.customerLocation.{name}"
            raise BadInput(f"{field} must be between -{bound:g} and {bound:g}.", field=field)
    return GeoPoint(point.lat, point.lon)
