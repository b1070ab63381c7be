"""Validation profiles: the named rules every canonical order passes before ROPOS acts on it.

A rule looks for one thing (a line without SKU, a pickup location no store is mapped to) and,
when it finds it, takes the action its profile gives it:

- `REJECT`: refuse the order (the message ends REJECTED with the rule's code);
- `REPAIR`: fix it the documented way (trim a SKU, map a product id, merge duplicate lines);
- `WARN`: let the order through as it is and record the finding;
- `SHADOW`: act on nothing, only record what the rule would have done ("would REJECT: ..."), with
  its strongest action (REJECT where allowed, else REPAIR, else WARN). It is how a new rule, or a
  stricter action, is tried on real traffic before it can refuse an order by mistake.

Not every rule allows every action (only some can REPAIR, some never REJECT); WARN and SHADOW are
always allowed. A profile is the action of every rule: the rule's own default, then its channel's
default (`DEFAULTS`), then the account's overrides (`profile`).

`validate` runs every rule in the order of `RULES` (repairs before the checks that depend on them)
on the order as the rules before it left it; a rule set to WARN or SHADOW leaves the order as if
it did not exist, so the checks after it see what it did not repair. Every finding is a
`Decision`, with the action taken and the field it is about, in the API's names (`lines[2].sku`,
`pickup.storeId`; line indexes count the lines as that rule saw them: the received lines before
`lines.duplicate_sku`, the merged ones, as in the verdict's order, after it). `code` is set on a
decision that refuses the order, or would (SHADOW). Messages hold SKUs, ids and amounts, never the
customer's name or email: ops read them and logs keep them.

Choices that keep good orders flowing:
- all the rules run even after one rejects, so ops see every problem at once; the verdict's
  `rejected` is the first REJECT;
- a rule that can refuse an order only looks at orders ROPOS will act on, pickup orders being
  created or updated: a CANCEL is never refused (it releases whatever the order holds, whatever
  its lines say) and an order not for pickup is the service's to ignore, not a rule's to reject;
- money is a WARN: totals carry tax, shipping and discounts that the lines do not show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from domain.commands import MAX_CODE_LENGTH, MAX_LINES, MAX_UNITS_PER_LINE
from domain.errors import BadInput
from domain.intake import (
    ChannelOrder,
    Decision,
    Money,
    OrderEvent,
    OrderLine,
    RuleAction,
    SalesChannel,
)

REJECT = RuleAction.REJECT
REPAIR = RuleAction.REPAIR
WARN = RuleAction.WARN
SHADOW = RuleAction.SHADOW
# The strongest action first: what a SHADOW rule says it would have done.
_STRENGTH = (REJECT, REPAIR, WARN)

# How far ahead of now an order may say it was placed before it is a clock or time zone error.
FUTURE_SLACK = timedelta(days=1)
# The total may fall to a quarter of the lines (discounts) or reach twice them (tax, shipping,
# fees) before it is a mismatch: wide enough for what merchants really charge, narrow enough to
# catch an amount read in the wrong unit (minor units as major, a line total as a unit price).
TOTAL_FLOOR = Decimal("0.25")
TOTAL_CEILING = Decimal(2)
# Findings recorded per rule before the rest are summed up in one decision: an order of 500 lines
# without SKUs needs ten examples, not 500 decisions.
MAX_FINDINGS_PER_RULE = 10


@dataclass(frozen=True)
class AccountFacts:
    """What the rules know of the channel account: its maps, its pickup settings and, where the
    caller looked them up, the SKUs and stores that exist (None: not checked here)."""

    products: Mapping[str, str] = field(default_factory=dict)
    locations: Mapping[str, str] = field(default_factory=dict)
    default_store_id: str | None = None
    assume_pickup: bool = False
    known_skus: frozenset[str] | None = None
    known_stores: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a rule found: the field, the problem, and what REPAIR does (past tense)."""

    field: str | None
    problem: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a check found, and the order as REPAIR leaves it (None: nothing to repair)."""

    findings: tuple[Finding, ...] = ()
    repaired: ChannelOrder | None = None


NOTHING = Outcome()

Check = Callable[[ChannelOrder, AccountFacts, datetime], Outcome]


@dataclass(frozen=True)
class Rule:
    """A named check, the actions it allows and the one it takes unless a profile says
    otherwise. `code` is what a REJECT carries; a rule without one cannot REJECT."""

    name: str
    description: str
    actions: frozenset[RuleAction]
    default: RuleAction
    check: Check
    code: str | None = None

    def __post_init__(self) -> None:
        if not {WARN, SHADOW} <= self.actions or self.default not in self.actions:
            raise ValueError(f"{self.name}: WARN, SHADOW and the default must be allowed.")
        if (REJECT in self.actions) != (self.code is not None):
            raise ValueError(f"{self.name}: a rule rejects with a code, and only then.")

    @property
    def strongest(self) -> RuleAction:
        return next(action for action in _STRENGTH if action in self.actions)

    def allow(self, action: str) -> RuleAction:
        """`action` as a RuleAction this rule allows; BadInput (field "action") otherwise."""
        try:
            chosen = RuleAction(action)
        except ValueError:
            raise BadInput(
                f"{str(action)[:20]!r} is not an action.", field="action", rule=self.name
            ) from None
        if chosen not in self.actions:
            allowed = sorted(self.actions)
            raise BadInput(
                f"Rule {self.name} cannot {chosen.value}; it allows {', '.join(allowed)}.",
                field="action",
                rule=self.name,
                allowed=allowed,
            )
        return chosen

    def looks_at(self, order: ChannelOrder) -> bool:
        """A rule that can refuse an order only looks at pickup orders being created or updated."""
        if REJECT not in self.actions:
            return True
        return order.event is not OrderEvent.CANCEL and order.pickup.requested

    def decide(self, finding: Finding, action: RuleAction) -> Decision:
        message = finding.problem
        if action is REPAIR and finding.fix:
            message = f"{message}; {finding.fix}"
        code = self.code if action is REJECT else None
        if action is SHADOW:
            would = self.strongest
            message = f"would {would.value}: {message}"
            if would is REPAIR and finding.fix:
                message = f"{message}; {finding.fix}"
            code = self.code if would is REJECT else None
        return Decision(self.name, action, f"{message}.", finding.field, code)


@dataclass(frozen=True)
class Verdict:
    """The order as the rules left it, what they decided, and the first REJECT (None: go on)."""

    order: ChannelOrder
    decisions: tuple[Decision, ...]
    rejected: Decision | None


# --- helpers ----------------------------------------------------------------------------------


def _show(text: str, limit: int = 40) -> str:
    """A SKU or id for a message: quoted, invisible characters escaped, long ones cut."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _line_field(index: int, name: str) -> str:
    return f"lines[{index}].{name}"


def _with_lines(order: ChannelOrder, lines: Iterable[OrderLine]) -> ChannelOrder:
    return order.with_lines(tuple(lines))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _capped(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    if len(findings) <= MAX_FINDINGS_PER_RULE:
        return findings
    rest = len(findings) - MAX_FINDINGS_PER_RULE
    summary = Finding("lines", f"and {rest} more like these", "repaired likewise")
    return (*findings[:MAX_FINDINGS_PER_RULE], summary)


# --- the checks -------------------------------------------------------------------------------


def _cancelled_on(event: OrderEvent) -> Check:
    def check(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
        if order.event is not event or not order.cancelled:
            return NOTHING
        finding = Finding(
            "event",
            f"The {event.value} event is for an order the channel says is cancelled",
            "treated as a CANCEL",
        )
        return Outcome((finding,), replace(order, event=OrderEvent.CANCEL))

    return check


def _sku_normalize(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    findings: list[Finding] = []
    lines = list(order.lines)
    for i, line in enumerate(order.lines):
        if line.sku is None:
            continue
        trimmed = line.sku.strip()
        if trimmed == line.sku and trimmed:
            continue
        fix = f"trimmed to {_show(trimmed)}" if trimmed else "left without a SKU"
        problem = f"SKU {_show(line.sku)} has spaces around it"
        findings.append(Finding(_line_field(i, "sku"), problem, fix))
        lines[i] = replace(line, sku=trimmed or None)
    return Outcome(tuple(findings), _with_lines(order, lines)) if findings else NOTHING


def _sku_map_product_id(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    findings: list[Finding] = []
    lines = list(order.lines)
    for i, line in enumerate(order.lines):
        if line.sku is not None or line.channel_product_id is None:
            continue
        sku = facts.products.get(line.channel_product_id)
        if sku is None:
            continue
        problem = (
            f"lines[{i}] has no SKU; its product id {_show(line.channel_product_id)} "
            f"maps to SKU {_show(sku)}"
        )
        findings.append(Finding(_line_field(i, "sku"), problem, "took the mapped SKU"))
        lines[i] = replace(line, sku=sku)
    return Outcome(tuple(findings), _with_lines(order, lines)) if findings else NOTHING


def _sku_product_id_conflict(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    findings: list[Finding] = []
    lines = list(order.lines)
    for i, line in enumerate(order.lines):
        if line.sku is None or line.channel_product_id is None:
            continue
        mapped = facts.products.get(line.channel_product_id)
        if mapped is None or mapped == line.sku:
            continue
        problem = (
            f"lines[{i}] has SKU {_show(line.sku)} but its product id "
            f"{_show(line.channel_product_id)} maps to SKU {_show(mapped)}"
        )
        findings.append(Finding(_line_field(i, "sku"), problem, "took the mapped SKU"))
        lines[i] = replace(line, sku=mapped)
    return Outcome(tuple(findings), _with_lines(order, lines)) if findings else NOTHING


def _pickup_assumed(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    if not facts.assume_pickup or order.pickup.requested:
        return NOTHING
    finding = Finding(
        "pickup.requested",
        "The order does not ask for pickup, but every order of this account is a pickup order",
        "made it a pickup order",
    )
    return Outcome((finding,), replace(order, pickup=replace(order.pickup, requested=True)))


def _pickup_store_resolved(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    pickup = order.pickup
    location = pickup.channel_location_id
    store = facts.locations.get(location or "")
    if not pickup.requested or pickup.store_id is not None or location is None or store is None:
        return NOTHING
    finding = Finding(
        "pickup.storeId",
        f"Pickup location {_show(location)} maps to store {_show(store)}",
        "set it as the pickup store",
    )
    return Outcome((finding,), replace(order, pickup=replace(pickup, store_id=store)))


def _quantity_not_positive(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    findings = tuple(
        Finding(
            _line_field(i, "quantity"),
            f"lines[{i}] has quantity {line.quantity}",
            "dropped the line",
        )
        for i, line in enumerate(order.lines)
        if line.quantity < 1
    )
    if not findings:
        return NOTHING
    return Outcome(findings, _with_lines(order, (ln for ln in order.lines if ln.quantity >= 1)))


def _lines_duplicate_sku(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    where: dict[str, list[int]] = {}
    for i, line in enumerate(order.lines):
        if line.sku is not None:
            where.setdefault(line.sku, []).append(i)
    groups = {sku: indexes for sku, indexes in where.items() if len(indexes) > 1}
    if not groups:
        return NOTHING
    findings: list[Finding] = []
    merged: list[OrderLine] = []
    for i, line in enumerate(order.lines):
        indexes = None if line.sku is None else groups.get(line.sku)
        if indexes is None:
            merged.append(line)
        elif i == indexes[0]:
            quantity = sum(order.lines[j].quantity for j in indexes)
            merged.append(replace(line, quantity=quantity))
            findings.append(_duplicate_finding(order, indexes, quantity))
    return Outcome(tuple(findings), _with_lines(order, merged))


def _duplicate_finding(order: ChannelOrder, indexes: list[int], quantity: int) -> Finding:
    sku = order.lines[indexes[0]].sku or ""
    prices = {order.lines[j].unit_price for j in indexes}
    problem = f"lines {', '.join(map(str, indexes))} have the same SKU {_show(sku)}"
    fix = f"merged into lines[{indexes[0]}] with quantity {quantity}"
    if len(prices) > 1:
        problem += " at different prices"
        fix += " at its price"
    return Finding(_line_field(indexes[1], "sku"), problem, fix)


def _sku_missing(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    findings: list[Finding] = []
    for i, line in enumerate(order.lines):
        if line.sku is not None:
            continue
        if line.channel_product_id is None:
            problem = f"lines[{i}] has no SKU and no product id"
        else:
            problem = (
                f"lines[{i}] has no SKU and its product id "
                f"{_show(line.channel_product_id)} is not mapped to one"
            )
        findings.append(Finding(_line_field(i, "sku"), problem, "dropped the line"))
    if not findings:
        return NOTHING
    return Outcome(
        tuple(findings), _with_lines(order, (ln for ln in order.lines if ln.sku is not None))
    )


def _sku_invalid(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    return Outcome(
        tuple(
            Finding(
                _line_field(i, "sku"),
                f"SKU {_show(line.sku)} is not 1 to {MAX_CODE_LENGTH} printable characters",
            )
            for i, line in enumerate(order.lines)
            if line.sku is not None
            and not (0 < len(line.sku) <= MAX_CODE_LENGTH and line.sku.isprintable())
        )
    )


def _sku_unknown(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    known = facts.known_skus
    if known is None:
        return NOTHING
    return Outcome(
        tuple(
            Finding(_line_field(i, "sku"), f"SKU {_show(line.sku)} is not in the catalog")
            for i, line in enumerate(order.lines)
            if line.sku is not None and line.sku not in known
        )
    )


def _lines_empty(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    if order.lines:
        return NOTHING
    return Outcome((Finding("lines", "The order has no lines"),))


def _lines_too_many(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    if len(order.lines) <= MAX_LINES:
        return NOTHING
    problem = f"The order has {len(order.lines)} lines; a reservation takes at most {MAX_LINES}"
    return Outcome((Finding("lines", problem),))


def _quantity_too_large(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    return Outcome(
        tuple(
            Finding(
                _line_field(i, "quantity"),
                f"lines[{i}] asks for {line.quantity} units; a reservation takes at most "
                f"{MAX_UNITS_PER_LINE} of a SKU",
            )
            for i, line in enumerate(order.lines)
            if line.quantity > MAX_UNITS_PER_LINE
        )
    )


def _pickup_location_unmapped(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    pickup = order.pickup
    location = pickup.channel_location_id
    if not pickup.requested or pickup.store_id is not None or location is None:
        return NOTHING
    if location in facts.locations:
        return NOTHING
    problem = f"Pickup location {_show(location)} is not mapped to a store"
    return Outcome((Finding("pickup.channelLocationId", problem),))


def _pickup_store_unknown(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    store = order.pickup.store_id
    known = facts.known_stores
    if not order.pickup.requested or store is None or known is None or store in known:
        return NOTHING
    return Outcome((Finding("pickup.storeId", f"Store {_show(store)} is not a known store"),))


def _pickup_no_store(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    if not order.pickup.requested or order.pickup.store_id is not None:
        return NOTHING
    if order.customer_location is not None or facts.default_store_id is not None:
        return NOTHING
    problem = (
        "The order asks for pickup but names no store, no mapped location and no customer "
        "location, and the account has no default store"
    )
    return Outcome((Finding("pickup.storeId", problem),))


def _currency_mixed(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    priced: list[tuple[str, Money]] = [
        (_line_field(i, "unitPrice"), line.unit_price)
        for i, line in enumerate(order.lines)
        if line.unit_price is not None
    ]
    if order.total is not None:
        priced.insert(0, ("total", order.total))
    currency = order.currency or (priced[0][1].currency if priced else None)
    return Outcome(
        tuple(
            Finding(field, f"{field} is in {money.currency}, the order in {currency}")
            for field, money in priced
            if money.currency != currency
        )
    )


def _total_mismatch(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    total = order.total
    prices = [line.unit_price for line in order.lines]
    if total is None or not prices:
        return NOTHING
    if any(price is None or price.currency != total.currency for price in prices):
        return NOTHING  # not comparable: a line without a price, or currency.mixed's finding
    lines = sum(
        (line.unit_price.amount * line.quantity for line in order.lines if line.unit_price),
        Decimal(0),
    )
    if lines * TOTAL_FLOOR <= total.amount <= lines * TOTAL_CEILING and total.amount >= 0:
        return NOTHING
    problem = (
        f"The total {total.amount} {total.currency} is outside {TOTAL_FLOOR} to {TOTAL_CEILING} "
        f"times the lines' {lines} {total.currency}"
    )
    return Outcome((Finding("total", problem),))


def _placed_in_future(order: ChannelOrder, facts: AccountFacts, now: datetime) -> Outcome:
    placed = order.placed_at
    if placed is None or _aware(placed) <= _aware(now) + FUTURE_SLACK:
        return NOTHING
    finding = Finding(
        "placedAt",
        f"The order says it was placed at {placed.isoformat(timespec='seconds')}, more than "
        f"a day after now ({now.isoformat(timespec='seconds')})",
        "set to now",
    )
    return Outcome((finding,), replace(order, placed_at=now))


# --- the rules, in the order they run ---------------------------------------------------------

_CHECKS = frozenset({WARN, SHADOW})
_REPAIRS = _CHECKS | {REPAIR}
_REJECTS = _CHECKS | {REJECT}
_ANY = _REPAIRS | {REJECT}


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({rule.name: rule for rule in rules})


RULES: Mapping[str, Rule] = _rules(
    # What the event is comes first: a cancellation is never refused for what its lines say.
    Rule(
        "order.cancelled_on_create",
        "A CREATE for an order the channel already says is cancelled. REPAIR makes it a "
        "CANCEL (nothing is reserved, anything held is released); WARN acts on it as a CREATE.",
        _REPAIRS,
        REPAIR,
        _cancelled_on(OrderEvent.CREATE),
    ),
    Rule(
        "order.cancelled_on_update",
        "An UPDATE for an order the channel says is cancelled. REPAIR makes it a CANCEL, so "
        "that the reservation is released rather than amended.",
        _REPAIRS,
        REPAIR,
        _cancelled_on(OrderEvent.UPDATE),
    ),
    # Repairs, before the checks that depend on them.
    Rule(
        "sku.normalize",
        "A SKU with spaces around it. REPAIR trims them (only that: "
        "SKUs are case-sensitive and kept as they are inside); a SKU of nothing but spaces "
        "becomes no SKU.",
        _REPAIRS,
        REPAIR,
        _sku_normalize,
    ),
    Rule(
        "sku.map_product_id",
        "A line with no SKU whose channel product id the account maps to one. REPAIR gives "
        "the line that SKU; WARN and SHADOW leave it without one.",
        _REPAIRS,
        REPAIR,
        _sku_map_product_id,
    ),
    Rule(
        "sku.product_id_conflict",
        "A line whose SKU differs from the one the account maps its product id to (a stale "
        "map, or a SKU edited in the channel). REPAIR takes the mapped SKU.",
        _REPAIRS,
        WARN,
        _sku_product_id_conflict,
    ),
    Rule(
        "pickup.assumed",
        "The account sells only reserve-and-collect and the order does not ask for pickup. "
        "REPAIR makes it a pickup order.",
        _REPAIRS,
        REPAIR,
        _pickup_assumed,
    ),
    Rule(
        "pickup.store_resolved",
        "A pickup order with no store but a channel location the account maps to one. REPAIR "
        "sets that store.",
        _REPAIRS,
        REPAIR,
        _pickup_store_resolved,
    ),
    Rule(
        "quantity.not_positive",
        "A line for zero or fewer units (adapters refuse them; the generic channel may not). "
        "REPAIR drops the line.",
        _ANY,
        REJECT,
        _quantity_not_positive,
        "INVALID_QUANTITY",
    ),
    Rule(
        "lines.duplicate_sku",
        "Two or more lines with the same SKU. REPAIR merges them into the first, adding up the "
        "quantities and keeping its name and price.",
        _ANY,
        REPAIR,
        _lines_duplicate_sku,
        "DUPLICATE_LINES",
    ),
    # Checks.
    Rule(
        "sku.missing",
        "A line still without a SKU: nothing to reserve it by. REPAIR drops the line and "
        "reserves the rest (for accounts whose orders carry lines that are not stock, such as "
        "gift cards or services).",
        _ANY,
        REJECT,
        _sku_missing,
        "UNKNOWN_SKU",
    ),
    Rule(
        "sku.invalid",
        f"A SKU that is not 1 to {MAX_CODE_LENGTH} printable characters, which no reservation "
        "can take.",
        _REJECTS,
        REJECT,
        _sku_invalid,
        "INVALID_SKU",
    ),
    Rule(
        "sku.unknown",
        "A SKU the catalog does not hold (checked only when the caller gives the known SKUs).",
        _REJECTS,
        REJECT,
        _sku_unknown,
        "UNKNOWN_SKU",
    ),
    Rule(
        "lines.empty",
        "An order with no lines: nothing to reserve.",
        _REJECTS,
        REJECT,
        _lines_empty,
        "NO_LINES",
    ),
    Rule(
        "lines.too_many",
        f"More than {MAX_LINES} lines (after merging), more than a reservation takes.",
        _REJECTS,
        REJECT,
        _lines_too_many,
        "TOO_MANY_LINES",
    ),
    Rule(
        "quantity.too_large",
        f"A line for more than {MAX_UNITS_PER_LINE} units, the reservation limit.",
        _REJECTS,
        REJECT,
        _quantity_too_large,
        "QUANTITY_TOO_LARGE",
    ),
    Rule(
        "pickup.location_unmapped",
        "A pickup order from a channel location the account maps to no store. By default a "
        "warning: the service falls back to the nearest or the default store.",
        _REJECTS,
        WARN,
        _pickup_location_unmapped,
        "UNKNOWN_LOCATION",
    ),
    Rule(
        "pickup.store_unknown",
        "A pickup store that is not a known store (checked only when the caller gives the "
        "known stores). A warning by default: the reservation itself refuses a store that does "
        "not exist, and a caller that looked up only some stores must not cause a reject.",
        _REJECTS,
        WARN,
        _pickup_store_unknown,
        "UNKNOWN_STORE",
    ),
    Rule(
        "pickup.no_store",
        "A pickup order with no store, no mapped location, no customer location to find the "
        "nearest store from, and no default store for the account.",
        _REJECTS,
        REJECT,
        _pickup_no_store,
        "NO_PICKUP_STORE",
    ),
    Rule(
        "currency.mixed",
        "A line price or the total in another currency than the order's.",
        _REJECTS,
        WARN,
        _currency_mixed,
        "CURRENCY_MISMATCH",
    ),
    Rule(
        "total.mismatch",
        f"A total below {TOTAL_FLOOR} or above {TOTAL_CEILING} times the lines' prices: more "
        "than discounts, tax and shipping explain.",
        _REJECTS,
        WARN,
        _total_mismatch,
        "TOTAL_MISMATCH",
    ),
    Rule(
        "order.placed_in_future",
        "An order placed more than a day after now: a clock or time zone error. REPAIR sets "
        "the time to now, so that later events of the order are not taken for older ones.",
        _REPAIRS,
        WARN,
        _placed_in_future,
    ),
)

# Where a channel's default differs from the rule's own.
DEFAULTS: Mapping[SalesChannel, Mapping[str, RuleAction]] = MappingProxyType(
    {
        # Square's lines name catalog objects, not SKUs: the account's map of them is the
        # merchant's own word on which SKU a line is, so it wins over any SKU text.
        SalesChannel.SQUARE: MappingProxyType({"sku.product_id_conflict": REPAIR}),
        # The generic channel is ROPOS's own format, and the merchant's integration writes both
        # the location map and the orders: a location it did not map is a bug there, and falling
        # back to another store would send the shopper where they did not ask. (Strict only where
        # the order cannot be acted on as asked: duplicate lines or a price in another currency
        # are valid orders on every channel, so they stay a repair and a warning.)
        SalesChannel.GENERIC: MappingProxyType({"pickup.location_unmapped": REJECT}),
    }
)

_NO_OVERRIDES: Mapping[str, RuleAction] = MappingProxyType({})


def profile(
    channel: SalesChannel, overrides: Mapping[str, RuleAction] = _NO_OVERRIDES
) -> Mapping[str, RuleAction]:
    """The action of every rule for an account: the rule's default, then the channel's, then
    the account's overrides. BadInput for an override of an unknown rule (field "rule") or
    with an action the rule does not allow (field "action")."""
    actions = {name: rule.default for name, rule in RULES.items()}
    actions.update(DEFAULTS.get(channel, _NO_OVERRIDES))
    for name, action in overrides.items():
        rule = RULES.get(name)
        if rule is None:
            raise BadInput(f"There is no rule {name[:60]!r}.", field="rule", rule=name[:60])
        actions[name] = rule.allow(action)
    return MappingProxyType(actions)


def validate(
    order: ChannelOrder, facts: AccountFacts, actions: Mapping[str, RuleAction], now: datetime
) -> Verdict:
    """Runs every rule in the order of `RULES` with its action in `actions` (a `profile`; a rule
    it leaves out takes its own default) and returns the repaired order and every decision."""
    decisions: list[Decision] = []
    for name, rule in RULES.items():
        action = rule.allow(actions.get(name, rule.default))
        if not rule.looks_at(order):
            continue
        outcome = rule.check(order, facts, now)
        decisions.extend(rule.decide(finding, action) for finding in _capped(outcome.findings))
        if action is REPAIR and outcome.repaired is not None:
            order = outcome.repaired
    rejected = next((d for d in decisions if d.action is REJECT), None)
    return Verdict(order, tuple(decisions), rejected)


__all__ = [
    "DEFAULTS",
    "RULES",
    "AccountFacts",
    "Finding",
    "Outcome",
    "Rule",
    "Verdict",
    "profile",
    "validate",
]
