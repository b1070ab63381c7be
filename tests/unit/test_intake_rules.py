"""Validation profiles: each rule finding and not finding, each action it allows, the layering of
rule, channel and account, and the order the rules run in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import BadInput
from domain.geo import GeoPoint
from domain.intake import (
    ChannelOrder,
    Customer,
    Decision,
    IntakeLane,
    Money,
    OrderEvent,
    OrderLine,
    Pickup,
    RuleAction,
    SalesChannel,
    backlog_retry_after,
    lane_of,
)
from domain.intake_rules import (
    DEFAULTS,
    MAX_FINDINGS_PER_RULE,
    NOTHING,
    RULES,
    AccountFacts,
    Rule,
    Verdict,
    profile,
    validate,
)

REJECT = RuleAction.REJECT
REPAIR = RuleAction.REPAIR
WARN = RuleAction.WARN
SHADOW = RuleAction.SHADOW

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HERE = GeoPoint(51.5, -0.12)
FACTS = AccountFacts(
    products={"93": "WOO-SINGLE", "808950810": "IPOD2008PINK"},
    locations={"LOC-1": "S001", "LOC-2": "S002"},
    known_skus=frozenset({"SKU-1", "SKU-2", "WOO-SINGLE", "IPOD2008PINK", "Bar3"}),
    known_stores=frozenset({"S001", "S002"}),
)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def line(
    sku: str | None = "SKU-1",
    quantity: int = 1,
    *,
    product: str | None = None,
    price: Money | None = None,
    name: str | None = None,
) -> OrderLine:
    return OrderLine(
        sku=sku, quantity=quantity, channel_product_id=product, unit_price=price, name=name
    )


def order(*lines: OrderLine, **fields: object) -> ChannelOrder:
    built = ChannelOrder(
        channel=SalesChannel.SHOPIFY,
        account="shop1",
        external_id="1001",
        event=OrderEvent.CREATE,
        lines=lines or (line(),),
        pickup=Pickup(requested=True, store_id="S001"),
        currency="USD",
        placed_at=NOW - timedelta(hours=1),
    )
    return replace(built, **fields)  # type: ignore[arg-type]


def run(
    checked: ChannelOrder,
    facts: AccountFacts = FACTS,
    overrides: Mapping[str, RuleAction] | None = None,
) -> Verdict:
    return validate(checked, facts, profile(checked.channel, overrides or {}), NOW)


def only(verdict: Verdict, rule: str) -> Decision:
    found = [d for d in verdict.decisions if d.rule == rule]
    assert len(found) == 1, verdict.decisions
    return found[0]


def rules_of(verdict: Verdict) -> list[str]:
    return [d.rule for d in verdict.decisions]


def unmapped_pickup(**pickup: object) -> Pickup:
    return replace(Pickup(requested=True), **pickup)  # type: ignore[arg-type]


# --- a clean order -----------------------------------------------------------------------------


def test_a_clean_order_produces_no_decisions() -> None:
    clean = order(
        line("SKU-1", 2, price=usd("10.00")),
        line("SKU-2", 1, price=usd("5.00")),
        total=usd("27.50"),
    )

    verdict = run(clean)

    assert verdict.decisions == ()
    assert verdict.rejected is None
    assert verdict.order == clean


def test_every_finding_is_one_decision_with_its_rule_field_and_action() -> None:
    verdict = run(order(line(" SKU-1 ")))

    assert verdict.decisions == (
        Decision(
            "sku.normalize",
            REPAIR,
            "SKU ' SKU-1 ' has spaces around it; trimmed to 'SKU-1'.",
            "lines[0].sku",
            None,
        ),
    )


# --- order.cancelled_on_create / order.cancelled_on_update -------------------------------------


def test_a_create_of_a_cancelled_order_becomes_a_cancel() -> None:
    verdict = run(order(cancelled=True))

    assert verdict.order.event is OrderEvent.CANCEL
    assert only(verdict, "order.cancelled_on_create").action is REPAIR
    assert only(verdict, "order.cancelled_on_create").field == "event"
    assert verdict.rejected is None


def test_a_create_of_an_order_not_cancelled_stays_a_create() -> None:
    verdict = run(order())

    assert verdict.order.event is OrderEvent.CREATE
    assert "order.cancelled_on_create" not in rules_of(verdict)


def test_cancelled_on_create_as_warn_leaves_the_create() -> None:
    verdict = run(order(cancelled=True), overrides={"order.cancelled_on_create": WARN})

    assert verdict.order.event is OrderEvent.CREATE
    assert only(verdict, "order.cancelled_on_create").action is WARN


def test_cancelled_on_create_as_shadow_says_it_would_repair() -> None:
    verdict = run(order(cancelled=True), overrides={"order.cancelled_on_create": SHADOW})

    decision = only(verdict, "order.cancelled_on_create")
    assert verdict.order.event is OrderEvent.CREATE
    assert decision.message.startswith("would REPAIR: ")
    assert decision.message.endswith("treated as a CANCEL.")
    assert decision.code is None


def test_cancelled_on_create_cannot_reject() -> None:
    with pytest.raises(BadInput) as raised:
        profile(SalesChannel.SHOPIFY, {"order.cancelled_on_create": REJECT})

    assert raised.value.details["field"] == "action"


def test_an_update_of_a_cancelled_order_becomes_a_cancel() -> None:
    verdict = run(order(event=OrderEvent.UPDATE, cancelled=True))

    assert verdict.order.event is OrderEvent.CANCEL
    assert rules_of(verdict) == ["order.cancelled_on_update"]


def test_a_cancellation_is_never_rejected_for_its_lines() -> None:
    # Shopify's published orders/create sample: already cancelled, the same SKU on two lines.
    cancelled = order(
        line("IPOD2008PINK", price=usd("199.00")),
        line("IPOD2008PINK", price=usd("199.00")),
        line(None),
        line("NOT-IN-CATALOG", 20_000),
        cancelled=True,
        pickup=Pickup(requested=True),
    )

    verdict = run(cancelled)

    assert verdict.rejected is None
    assert verdict.order.event is OrderEvent.CANCEL
    assert rules_of(verdict) == ["order.cancelled_on_create"]


def test_a_cancel_without_lines_is_not_rejected() -> None:
    verdict = run(order(event=OrderEvent.CANCEL, lines=()))

    assert verdict.rejected is None
    assert verdict.decisions == ()


def test_an_order_not_for_pickup_is_not_rejected() -> None:
    shipping = order(line(None), line("NOT-IN-CATALOG"), pickup=Pickup(requested=False))

    verdict = run(shipping)

    assert verdict.rejected is None
    assert verdict.decisions == ()
    assert verdict.order == shipping


# --- sku.normalize ------------------------------------------------------------------------------


def test_normalize_trims_a_sku_and_keeps_its_case() -> None:
    verdict = run(order(line("  sku-1\t"), line("SKU-2")), overrides={"sku.unknown": WARN})

    assert [ln.sku for ln in verdict.order.lines] == ["sku-1", "SKU-2"]
    assert only(verdict, "sku.normalize").field == "lines[0].sku"


def test_normalize_keeps_the_spaces_inside_a_sku() -> None:
    verdict = run(order(line("A  B")), facts=AccountFacts())

    assert verdict.order.lines[0].sku == "A  B"
    assert verdict.decisions == ()


def test_normalize_makes_a_blank_sku_no_sku_for_the_rules_after_it() -> None:
    verdict = run(order(line("   ", product="93")))

    assert verdict.order.lines[0].sku == "WOO-SINGLE"
    assert rules_of(verdict) == ["sku.normalize", "sku.map_product_id"]
    assert verdict.rejected is None


def test_normalize_as_warn_keeps_the_sku_and_the_catalog_check_sees_it() -> None:
    verdict = run(order(line(" SKU-1")), overrides={"sku.normalize": WARN})

    assert verdict.order.lines[0].sku == " SKU-1"
    assert only(verdict, "sku.normalize").action is WARN
    assert only(verdict, "sku.normalize").message == "SKU ' SKU-1' has spaces around it."
    assert verdict.rejected == only(verdict, "sku.unknown")


def test_normalize_as_shadow_changes_nothing() -> None:
    checked = order(line(" SKU-1"))

    verdict = run(checked, facts=AccountFacts(), overrides={"sku.normalize": SHADOW})

    assert verdict.order == checked
    assert only(verdict, "sku.normalize").message == (
        "would REPAIR: SKU ' SKU-1' has spaces around it; trimmed to 'SKU-1'."
    )


def test_normalize_cannot_reject() -> None:
    with pytest.raises(BadInput) as raised:
        profile(SalesChannel.SHOPIFY, {"sku.normalize": REJECT})

    assert raised.value.details["field"] == "action"


# --- sku.map_product_id / sku.product_id_conflict ----------------------------------------------


def test_a_line_with_only_a_mapped_product_id_gets_its_sku() -> None:
    # WooCommerce's published order 727: a line with "sku": "" and product 93.
    verdict = run(order(line(None, 2, product="93"), line("Bar3")))

    assert verdict.order.lines[0] == line("WOO-SINGLE", 2, product="93")
    decision = only(verdict, "sku.map_product_id")
    assert (decision.action, decision.field) == (REPAIR, "lines[0].sku")
    assert "'93'" in decision.message
    assert "'WOO-SINGLE'" in decision.message
    assert verdict.rejected is None


def test_a_line_with_a_sku_is_not_mapped() -> None:
    verdict = run(order(line("SKU-1", product="unmapped")))

    assert verdict.decisions == ()


def test_map_product_id_as_warn_leaves_the_line_without_sku() -> None:
    verdict = run(order(line(None, product="93")), overrides={"sku.map_product_id": WARN})

    assert verdict.order.lines[0].sku is None
    assert only(verdict, "sku.map_product_id").action is WARN
    assert verdict.rejected == only(verdict, "sku.missing")


def test_map_product_id_as_shadow_records_what_it_would_map() -> None:
    verdict = run(order(line(None, product="93")), overrides={"sku.map_product_id": SHADOW})

    decision = only(verdict, "sku.map_product_id")
    assert verdict.order.lines[0].sku is None
    assert decision.message.startswith("would REPAIR: lines[0] has no SKU")
    assert decision.code is None
    assert verdict.rejected is not None
    assert verdict.rejected.rule == "sku.missing"


def test_a_sku_that_contradicts_the_product_map_is_a_warning() -> None:
    verdict = run(order(line("SKU-1", product="93")))

    assert verdict.order.lines[0].sku == "SKU-1"
    decision = only(verdict, "sku.product_id_conflict")
    assert (decision.action, decision.field) == (WARN, "lines[0].sku")
    assert verdict.rejected is None


def test_on_square_the_product_map_wins_over_the_sku() -> None:
    verdict = run(order(line("SKU-1", product="93"), channel=SalesChannel.SQUARE))

    assert verdict.order.lines[0].sku == "WOO-SINGLE"
    assert only(verdict, "sku.product_id_conflict").action is REPAIR


def test_a_sku_that_agrees_with_the_product_map_is_no_conflict() -> None:
    verdict = run(order(line("WOO-SINGLE", product="93")))

    assert verdict.decisions == ()


# --- pickup.assumed -----------------------------------------------------------------------------


def test_an_account_that_assumes_pickup_makes_every_order_a_pickup_order() -> None:
    facts = replace(FACTS, assume_pickup=True)

    verdict = run(order(pickup=Pickup(requested=False, channel_location_id="LOC-2")), facts)

    assert verdict.order.pickup == Pickup(True, "LOC-2", "S002")
    assert rules_of(verdict) == ["pickup.assumed", "pickup.store_resolved"]
    assert only(verdict, "pickup.assumed").field == "pickup.requested"


def test_pickup_is_not_assumed_when_the_account_does_not_say_so() -> None:
    verdict = run(order(pickup=Pickup(requested=False)))

    assert verdict.order.pickup.requested is False
    assert verdict.decisions == ()


def test_pickup_is_not_assumed_for_an_order_that_asks_for_it() -> None:
    verdict = run(order(), replace(FACTS, assume_pickup=True))

    assert verdict.decisions == ()


def test_assumed_pickup_as_warn_leaves_the_order_not_for_pickup() -> None:
    facts = replace(FACTS, assume_pickup=True)

    verdict = run(order(pickup=Pickup(requested=False)), facts, {"pickup.assumed": WARN})

    assert verdict.order.pickup.requested is False
    assert rules_of(verdict) == ["pickup.assumed"]


# --- pickup.store_resolved / pickup.location_unmapped / pickup.store_unknown / no_store --------


def test_a_mapped_location_sets_the_pickup_store() -> None:
    verdict = run(order(pickup=unmapped_pickup(channel_location_id="LOC-1")))

    assert verdict.order.pickup.store_id == "S001"
    decision = only(verdict, "pickup.store_resolved")
    assert (decision.action, decision.field) == (REPAIR, "pickup.storeId")
    assert verdict.rejected is None


def test_a_store_the_order_names_is_not_replaced_by_the_map() -> None:
    verdict = run(order(pickup=Pickup(True, channel_location_id="LOC-1", store_id="S002")))

    assert verdict.order.pickup.store_id == "S002"
    assert verdict.decisions == ()


def test_a_repaired_location_means_the_order_has_a_store() -> None:
    verdict = run(order(pickup=unmapped_pickup(channel_location_id="LOC-1")))

    assert "pickup.no_store" not in rules_of(verdict)
    assert verdict.rejected is None


def test_store_resolved_as_warn_leaves_no_store_to_reject() -> None:
    verdict = run(
        order(pickup=unmapped_pickup(channel_location_id="LOC-1")),
        overrides={"pickup.store_resolved": WARN},
    )

    assert verdict.order.pickup.store_id is None
    assert rules_of(verdict) == ["pickup.store_resolved", "pickup.no_store"]
    assert verdict.rejected == only(verdict, "pickup.no_store")


def test_an_unmapped_location_is_a_warning_when_there_is_a_fallback() -> None:
    facts = replace(FACTS, default_store_id="S001")

    verdict = run(order(pickup=unmapped_pickup(channel_location_id="LOC-9")), facts)

    decision = only(verdict, "pickup.location_unmapped")
    assert (decision.action, decision.field) == (WARN, "pickup.channelLocationId")
    assert "'LOC-9'" in decision.message
    assert verdict.rejected is None


def test_an_unmapped_location_can_be_rejected() -> None:
    facts = replace(FACTS, default_store_id="S001")
    checked = order(pickup=unmapped_pickup(channel_location_id="LOC-9"))

    verdict = run(checked, facts, {"pickup.location_unmapped": REJECT})

    assert verdict.rejected == only(verdict, "pickup.location_unmapped")
    assert verdict.rejected.code == "UNKNOWN_LOCATION"


def test_the_generic_channel_rejects_an_unmapped_location() -> None:
    checked = order(
        pickup=unmapped_pickup(channel_location_id="LOC-9"), channel=SalesChannel.GENERIC
    )

    verdict = run(checked, replace(FACTS, default_store_id="S001"))

    assert verdict.rejected is not None
    assert verdict.rejected.code == "UNKNOWN_LOCATION"


def test_a_store_not_known_is_a_warning_by_default() -> None:
    verdict = run(order(pickup=Pickup(True, store_id="S404")))

    decision = only(verdict, "pickup.store_unknown")
    assert (decision.action, decision.field) == (WARN, "pickup.storeId")
    assert verdict.rejected is None


def test_a_store_not_known_can_be_rejected() -> None:
    checked = order(pickup=Pickup(True, store_id="S404"))

    verdict = run(checked, overrides={"pickup.store_unknown": REJECT})

    assert verdict.rejected is not None
    assert verdict.rejected.code == "UNKNOWN_STORE"


def test_stores_are_not_checked_when_the_caller_gives_none() -> None:
    verdict = run(order(pickup=Pickup(True, store_id="S404")), replace(FACTS, known_stores=None))

    assert verdict.decisions == ()


def test_a_pickup_order_with_nowhere_to_pick_up_is_rejected() -> None:
    verdict = run(order(pickup=unmapped_pickup(channel_location_id="LOC-9")))

    assert rules_of(verdict) == ["pickup.location_unmapped", "pickup.no_store"]
    assert verdict.rejected == only(verdict, "pickup.no_store")
    assert verdict.rejected.code == "NO_PICKUP_STORE"
    assert verdict.rejected.field == "pickup.storeId"


def test_the_customer_location_is_somewhere_to_pick_up_near() -> None:
    verdict = run(order(pickup=unmapped_pickup(), customer_location=HERE))

    assert verdict.decisions == ()


def test_the_default_store_is_somewhere_to_pick_up() -> None:
    verdict = run(order(pickup=unmapped_pickup()), replace(FACTS, default_store_id="S001"))

    assert verdict.decisions == ()


def test_no_store_as_shadow_says_it_would_reject() -> None:
    verdict = run(order(pickup=unmapped_pickup()), overrides={"pickup.no_store": SHADOW})

    decision = only(verdict, "pickup.no_store")
    assert decision.message.startswith("would REJECT: The order asks for pickup")
    assert decision.code == "NO_PICKUP_STORE"
    assert verdict.rejected is None


# --- quantity.not_positive ----------------------------------------------------------------------


def test_a_line_for_no_units_is_rejected() -> None:
    verdict = run(order(line("SKU-1"), line("SKU-2", 0)))

    assert verdict.rejected == only(verdict, "quantity.not_positive")
    assert verdict.rejected.code == "INVALID_QUANTITY"
    assert verdict.rejected.field == "lines[1].quantity"


def test_a_line_for_no_units_can_be_dropped() -> None:
    verdict = run(
        order(line("SKU-1"), line("SKU-2", 0)), overrides={"quantity.not_positive": REPAIR}
    )

    assert verdict.order.lines == (line("SKU-1"),)
    assert verdict.rejected is None


# --- lines.duplicate_sku ------------------------------------------------------------------------


def test_duplicate_sku_lines_are_merged_into_the_first() -> None:
    first = line("SKU-1", 1, price=usd("10.00"), name="First")
    verdict = run(order(first, line("SKU-2"), line("SKU-1", 3, price=usd("9.00"), name="Second")))

    assert verdict.order.lines == (replace(first, quantity=4), line("SKU-2"))
    decision = only(verdict, "lines.duplicate_sku")
    assert (decision.action, decision.field) == (REPAIR, "lines[2].sku")
    assert decision.message == (
        "lines 0, 2 have the same SKU 'SKU-1' at different prices; "
        "merged into lines[0] with quantity 4 at its price."
    )
    assert verdict.rejected is None


def test_lines_with_different_skus_are_not_merged() -> None:
    verdict = run(order(line("SKU-1"), line("SKU-2")))

    assert len(verdict.order.lines) == 2
    assert verdict.decisions == ()


def test_lines_without_sku_are_not_merged_together() -> None:
    verdict = run(order(line(None), line(None)), overrides={"sku.missing": WARN})

    assert len(verdict.order.lines) == 2
    assert "lines.duplicate_sku" not in rules_of(verdict)


def test_duplicate_skus_can_be_rejected() -> None:
    checked = order(line("SKU-1"), line("SKU-1"))

    verdict = run(checked, overrides={"lines.duplicate_sku": REJECT})

    assert verdict.order == checked
    assert verdict.rejected == only(verdict, "lines.duplicate_sku")
    assert verdict.rejected.code == "DUPLICATE_LINES"


def test_duplicate_skus_as_warn_stay_apart() -> None:
    checked = order(line("SKU-1"), line("SKU-1"))

    verdict = run(checked, overrides={"lines.duplicate_sku": WARN})

    assert verdict.order == checked
    assert only(verdict, "lines.duplicate_sku").action is WARN
    assert verdict.rejected is None


def test_duplicate_skus_as_shadow_say_they_would_reject() -> None:
    checked = order(line("SKU-1"), line("SKU-1"))

    verdict = run(checked, overrides={"lines.duplicate_sku": SHADOW})

    assert verdict.order == checked
    assert only(verdict, "lines.duplicate_sku").message.startswith("would REJECT: lines 0, 1")
    assert verdict.rejected is None


def test_the_generic_channel_merges_duplicate_skus_too() -> None:
    verdict = run(order(line("SKU-1"), line("SKU-1"), channel=SalesChannel.GENERIC))

    assert verdict.order.lines == (line("SKU-1", 2),)
    assert verdict.rejected is None


def test_a_mapped_product_id_that_repeats_another_lines_sku_is_merged() -> None:
    verdict = run(order(line("WOO-SINGLE", 1), line(None, 2, product="93")))

    assert verdict.order.lines == (line("WOO-SINGLE", 3),)
    assert rules_of(verdict) == ["sku.map_product_id", "lines.duplicate_sku"]
    assert verdict.rejected is None


def test_a_trimmed_sku_that_repeats_another_lines_sku_is_merged() -> None:
    verdict = run(order(line("SKU-1"), line("SKU-1 ")))

    assert verdict.order.lines == (line("SKU-1", 2),)


# --- sku.missing / sku.invalid / sku.unknown ----------------------------------------------------


def test_a_line_without_sku_is_rejected_as_unknown_sku() -> None:
    verdict = run(order(line("SKU-1"), line(None, product="unmapped")))

    assert verdict.rejected == only(verdict, "sku.missing")
    assert verdict.rejected.code == "UNKNOWN_SKU"
    assert verdict.rejected.field == "lines[1].sku"
    assert verdict.rejected.message == (
        "lines[1] has no SKU and its product id 'unmapped' is not mapped to one."
    )


def test_a_line_without_sku_can_be_dropped() -> None:
    verdict = run(order(line("SKU-1"), line(None)), overrides={"sku.missing": REPAIR})

    assert verdict.order.lines == (line("SKU-1"),)
    assert only(verdict, "sku.missing").message == (
        "lines[1] has no SKU and no product id; dropped the line."
    )
    assert verdict.rejected is None


def test_dropping_every_line_leaves_an_order_with_no_lines() -> None:
    verdict = run(order(line(None)), overrides={"sku.missing": REPAIR})

    assert verdict.rejected is not None
    assert verdict.rejected.code == "NO_LINES"


def test_a_line_without_sku_can_be_let_through() -> None:
    verdict = run(order(line(None)), overrides={"sku.missing": WARN})

    assert only(verdict, "sku.missing").action is WARN
    assert only(verdict, "sku.missing").code is None
    assert verdict.rejected is None


def test_a_sku_longer_than_a_reservation_takes_is_rejected() -> None:
    verdict = run(order(line("A" * 65)), facts=AccountFacts())

    assert verdict.rejected == only(verdict, "sku.invalid")
    assert verdict.rejected.code == "INVALID_SKU"
    assert "AAAA..." in verdict.rejected.message


def test_a_sku_of_the_longest_length_is_valid() -> None:
    verdict = run(order(line("A" * 64)), facts=AccountFacts())

    assert verdict.decisions == ()


def test_a_sku_with_a_control_character_inside_is_rejected() -> None:
    verdict = run(order(line("SKU\x001")), facts=AccountFacts())

    assert verdict.rejected is not None
    assert verdict.rejected.rule == "sku.invalid"
    assert "'SKU\\x001'" in verdict.rejected.message


def test_a_sku_not_in_the_catalog_is_rejected() -> None:
    verdict = run(order(line("SKU-1"), line("SKU-404")))

    assert verdict.rejected == only(verdict, "sku.unknown")
    assert verdict.rejected.code == "UNKNOWN_SKU"
    assert verdict.rejected.field == "lines[1].sku"


def test_skus_are_not_checked_when_the_caller_gives_none() -> None:
    verdict = run(order(line("SKU-404")), replace(FACTS, known_skus=None))

    assert verdict.decisions == ()


def test_the_catalog_check_is_case_sensitive() -> None:
    verdict = run(order(line("sku-1")))

    assert verdict.rejected is not None
    assert verdict.rejected.rule == "sku.unknown"


# --- lines.empty / lines.too_many / quantity.too_large ------------------------------------------


def test_an_order_without_lines_is_rejected() -> None:
    verdict = run(order(lines=()))

    assert verdict.rejected == only(verdict, "lines.empty")
    assert verdict.rejected.code == "NO_LINES"
    assert verdict.rejected.field == "lines"


def test_an_order_without_lines_as_shadow_is_let_through() -> None:
    verdict = run(order(lines=()), overrides={"lines.empty": SHADOW})

    assert only(verdict, "lines.empty").message == "would REJECT: The order has no lines."
    assert verdict.rejected is None


def test_more_than_a_hundred_lines_are_rejected() -> None:
    many = order(*(line(f"S{i}") for i in range(101)))

    verdict = run(many, facts=AccountFacts())

    assert verdict.rejected == only(verdict, "lines.too_many")
    assert verdict.rejected.code == "TOO_MANY_LINES"


def test_a_hundred_lines_are_fine() -> None:
    verdict = run(order(*(line(f"S{i}") for i in range(100))), facts=AccountFacts())

    assert verdict.decisions == ()


def test_lines_are_counted_after_merging() -> None:
    lines = (*(line(f"S{i}") for i in range(100)), line("S0"))

    verdict = run(order(*lines), facts=AccountFacts())

    assert len(verdict.order.lines) == 100
    assert rules_of(verdict) == ["lines.duplicate_sku"]


def test_a_line_over_the_reservation_limit_is_rejected() -> None:
    verdict = run(order(line("SKU-1", 10_001)))

    assert verdict.rejected == only(verdict, "quantity.too_large")
    assert verdict.rejected.code == "QUANTITY_TOO_LARGE"
    assert verdict.rejected.field == "lines[0].quantity"


def test_a_line_at_the_reservation_limit_is_fine() -> None:
    verdict = run(order(line("SKU-1", 10_000)))

    assert verdict.decisions == ()


def test_quantities_are_checked_after_merging() -> None:
    verdict = run(order(line("SKU-1", 6_000), line("SKU-1", 6_000)))

    assert verdict.rejected is not None
    assert verdict.rejected.rule == "quantity.too_large"
    assert "12000 units" in verdict.rejected.message


def test_too_large_cannot_repair() -> None:
    with pytest.raises(BadInput) as raised:
        profile(SalesChannel.SHOPIFY, {"quantity.too_large": REPAIR})

    assert raised.value.details["field"] == "action"
    assert raised.value.details["rule"] == "quantity.too_large"


# --- currency.mixed / total.mismatch ------------------------------------------------------------


def test_a_line_priced_in_another_currency_is_a_warning() -> None:
    checked = order(line("SKU-1", price=Money(Decimal(10), "EUR")))

    verdict = run(checked)

    decision = only(verdict, "currency.mixed")
    assert (decision.action, decision.field) == (WARN, "lines[0].unitPrice")
    assert decision.message == "lines[0].unitPrice is in EUR, the order in USD."
    assert verdict.rejected is None


def test_a_total_in_another_currency_is_mixed() -> None:
    verdict = run(order(line("SKU-1", price=usd("10")), total=Money(Decimal(10), "EUR")))

    assert only(verdict, "currency.mixed").field == "total"
    assert "total.mismatch" not in rules_of(verdict)


def test_without_an_order_currency_the_total_sets_it() -> None:
    checked = order(line("SKU-1", price=usd("10")), currency=None, total=usd("10"))

    verdict = run(checked)

    assert verdict.decisions == ()


def test_mixed_currencies_can_be_rejected() -> None:
    checked = order(line("SKU-1", price=Money(Decimal(10), "EUR")))

    verdict = run(checked, overrides={"currency.mixed": REJECT})

    assert verdict.rejected is not None
    assert verdict.rejected.code == "CURRENCY_MISMATCH"


@pytest.mark.parametrize(
    "total",
    [
        "10.00",  # the lines exactly
        "12.70",  # with tax and shipping
        "5.00",  # Square's published order: 50% off
        "2.50",  # 75% off
        "20.00",  # twice the lines
    ],
)
def test_a_total_that_tax_shipping_and_discounts_explain_is_no_mismatch(total: str) -> None:
    verdict = run(order(line("SKU-1", 2, price=usd("5.00")), total=usd(total)))

    assert verdict.decisions == ()


@pytest.mark.parametrize("total", ["1000.00", "0.10", "2.49", "20.01", "-1.00"])
def test_a_total_far_from_the_lines_is_a_warning(total: str) -> None:
    verdict = run(order(line("SKU-1", 2, price=usd("5.00")), total=usd(total)))

    decision = only(verdict, "total.mismatch")
    assert (decision.action, decision.field) == (WARN, "total")
    assert f"{total} USD" in decision.message
    assert "10.00 USD" in decision.message
    assert verdict.rejected is None


def test_a_total_is_not_compared_when_a_line_has_no_price() -> None:
    verdict = run(order(line("SKU-1", price=usd("5")), line("SKU-2"), total=usd("1000")))

    assert verdict.decisions == ()


def test_a_total_mismatch_can_be_rejected_but_never_is_by_default() -> None:
    checked = order(line("SKU-1", price=usd("5")), total=usd("1000"))

    verdict = run(checked, overrides={"total.mismatch": REJECT})

    assert verdict.rejected is not None
    assert verdict.rejected.code == "TOTAL_MISMATCH"
    assert all(profile(channel)["total.mismatch"] is WARN for channel in SalesChannel)


# --- order.placed_in_future ---------------------------------------------------------------------


def test_an_order_placed_more_than_a_day_ahead_is_a_warning() -> None:
    placed = NOW + timedelta(days=1, minutes=1)

    verdict = run(order(placed_at=placed))

    decision = only(verdict, "order.placed_in_future")
    assert (decision.action, decision.field) == (WARN, "placedAt")
    assert verdict.order.placed_at == placed
    assert verdict.rejected is None


def test_an_order_placed_up_to_a_day_ahead_is_fine() -> None:
    verdict = run(order(placed_at=NOW + timedelta(days=1)))

    assert verdict.decisions == ()


def test_a_time_in_the_future_can_be_repaired_to_now() -> None:
    checked = order(placed_at=NOW + timedelta(days=3))

    verdict = run(checked, overrides={"order.placed_in_future": REPAIR})

    assert verdict.order.placed_at == NOW


def test_a_time_without_zone_is_taken_as_utc() -> None:
    verdict = run(order(placed_at=datetime(2026, 5, 3, 12, 0)))

    assert rules_of(verdict) == ["order.placed_in_future"]


# --- all the rules together ---------------------------------------------------------------------


def test_every_problem_is_recorded_and_the_first_reject_is_the_verdict() -> None:
    verdict = run(order(line(None), line("SKU-404", 20_000)))

    assert rules_of(verdict) == ["sku.missing", "sku.unknown", "quantity.too_large"]
    assert all(d.action is REJECT for d in verdict.decisions)
    assert verdict.rejected == verdict.decisions[0]


def test_every_rule_as_shadow_changes_nothing_and_rejects_nothing() -> None:
    messy = order(
        line(" SKU-1 ", 0, price=Money(Decimal(1), "EUR")),
        line(None, product="93"),
        line("WOO-SINGLE", 20_000),
        line("SKU-404"),
        line(None),
        pickup=unmapped_pickup(channel_location_id="LOC-1"),
        cancelled=True,
        total=usd("0.01"),
        placed_at=NOW + timedelta(days=5),
    )
    everything = dict.fromkeys(RULES, SHADOW)

    verdict = validate(messy, FACTS, everything, NOW)

    assert verdict.order == messy
    assert verdict.rejected is None
    assert rules_of(verdict) == [
        "order.cancelled_on_create",
        "sku.normalize",
        "sku.map_product_id",
        "pickup.store_resolved",
        "quantity.not_positive",
        "sku.missing",
        "sku.missing",
        "sku.unknown",
        "sku.unknown",
        "quantity.too_large",
        "pickup.no_store",
        "currency.mixed",
        "order.placed_in_future",
    ]
    assert all(d.action is SHADOW for d in verdict.decisions)
    assert all(d.message.startswith("would ") for d in verdict.decisions)


def test_assumed_pickup_as_shadow_leaves_the_order_to_be_ignored() -> None:
    checked = order(line(None), pickup=Pickup(requested=False))
    facts = replace(FACTS, assume_pickup=True)

    verdict = run(checked, facts, {"pickup.assumed": SHADOW})

    assert verdict.order == checked
    assert rules_of(verdict) == ["pickup.assumed"]
    assert verdict.rejected is None


def test_messages_never_hold_the_customers_email() -> None:
    checked = order(
        line(None, name="Gift for jane.doe@example.com"),
        line("SKU-404"),
        customer=Customer(id="c1", email="jane.doe@example.com", guest=False),
        pickup=unmapped_pickup(channel_location_id="LOC-9"),
    )

    verdict = run(checked)

    assert len(verdict.decisions) == 4
    assert not any("jane" in d.message for d in verdict.decisions)


def test_findings_past_the_cap_are_summed_up_in_one_decision() -> None:
    verdict = run(order(*(line(None) for _ in range(MAX_FINDINGS_PER_RULE + 15))))

    missing = [d for d in verdict.decisions if d.rule == "sku.missing"]
    assert len(missing) == MAX_FINDINGS_PER_RULE + 1
    assert missing[-1].message == "and 15 more like these."
    assert missing[-1].field == "lines"


def test_a_rule_the_actions_leave_out_takes_its_own_default() -> None:
    verdict = validate(order(line(None)), FACTS, {}, NOW)

    assert verdict.rejected is not None
    assert verdict.rejected.rule == "sku.missing"


def test_validate_refuses_an_action_a_rule_does_not_allow() -> None:
    with pytest.raises(BadInput) as raised:
        validate(order(), FACTS, {"sku.normalize": REJECT}, NOW)

    assert raised.value.details["field"] == "action"


# --- profiles -----------------------------------------------------------------------------------


def test_a_profile_holds_every_rule_with_its_default() -> None:
    actions = profile(SalesChannel.SHOPIFY)

    assert set(actions) == set(RULES)
    assert all(actions[name] is rule.default for name, rule in RULES.items())
    assert actions["sku.missing"] is REJECT
    assert actions["pickup.location_unmapped"] is WARN
    assert actions["lines.duplicate_sku"] is REPAIR


def test_the_channel_default_overrides_the_rules() -> None:
    assert profile(SalesChannel.GENERIC)["pickup.location_unmapped"] is REJECT
    assert profile(SalesChannel.SHOPIFY)["pickup.location_unmapped"] is WARN
    assert profile(SalesChannel.SQUARE)["sku.product_id_conflict"] is REPAIR
    assert profile(SalesChannel.WOOCOMMERCE)["sku.product_id_conflict"] is WARN


def test_the_account_override_wins_over_the_channel_default() -> None:
    actions = profile(
        SalesChannel.GENERIC, {"pickup.location_unmapped": WARN, "sku.unknown": SHADOW}
    )

    assert actions["pickup.location_unmapped"] is WARN
    assert actions["sku.unknown"] is SHADOW
    assert actions["sku.missing"] is REJECT


def test_an_override_may_be_the_actions_name() -> None:
    actions = profile(SalesChannel.SHOPIFY, {"sku.unknown": "WARN"})  # type: ignore[dict-item]

    assert actions["sku.unknown"] is WARN


def test_an_override_of_an_unknown_rule_is_refused() -> None:
    with pytest.raises(BadInput) as raised:
        profile(SalesChannel.SHOPIFY, {"sku.nonexistent": WARN})

    assert raised.value.details["field"] == "rule"
    assert raised.value.code == "BAD_USER_INPUT"


def test_an_override_that_is_no_action_is_refused() -> None:
    with pytest.raises(BadInput) as raised:
        profile(SalesChannel.SHOPIFY, {"sku.unknown": "IGNORE"})  # type: ignore[dict-item]

    assert raised.value.details["field"] == "action"


def test_an_override_a_rule_does_not_allow_is_refused() -> None:
    with pytest.raises(BadInput) as raised:
        profile(SalesChannel.SHOPIFY, {"pickup.store_resolved": REJECT})

    assert raised.value.details["field"] == "action"
    assert raised.value.details["allowed"] == ["REPAIR", "SHADOW", "WARN"]


def test_the_channel_defaults_name_real_rules_with_allowed_actions() -> None:
    for channel, actions in DEFAULTS.items():
        for name, action in actions.items():
            assert action in RULES[name].actions, (channel, name)
            assert action is not RULES[name].default, (channel, name)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_can_warn_and_shadow_and_rejects_only_with_a_code(name: str) -> None:
    rule = RULES[name]

    assert rule.name == name
    assert rule.description
    assert {WARN, SHADOW} <= rule.actions
    assert rule.default in rule.actions
    assert (REJECT in rule.actions) == (rule.code is not None)


def test_a_rule_must_allow_its_default() -> None:
    with pytest.raises(ValueError, match="default"):
        Rule("x.y", "d", frozenset({WARN, SHADOW}), REPAIR, lambda o, f, n: NOTHING)


def test_a_rule_that_rejects_needs_a_code() -> None:
    with pytest.raises(ValueError, match="code"):
        Rule("x.y", "d", frozenset({WARN, SHADOW, REJECT}), REJECT, lambda o, f, n: NOTHING)


@pytest.mark.parametrize("channel", list(SalesChannel))
def test_the_defaults_let_a_good_order_through_on_every_channel(channel: SalesChannel) -> None:
    good = order(
        line("IPOD2008PINK", price=usd("199.00")),
        line(" IPOD2008PINK ", price=usd("199.00")),
        line(None, 2, product="93", price=usd("3.00")),
        channel=channel,
        pickup=unmapped_pickup(channel_location_id="LOC-2"),
        total=usd("388.00"),
    )

    verdict = run(good)

    assert verdict.rejected is None
    assert verdict.order.pickup.store_id == "S002"
    assert [(ln.sku, ln.quantity) for ln in verdict.order.lines] == [
        ("IPOD2008PINK", 2),
        ("WOO-SINGLE", 2),
    ]


# --- the backlog's bound ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("waiting", "drained_per_second", "expected"),
    [
        (99, 5.0, None),  # room for one more
        (100, 5.0, 2),  # 10 over the resume mark (90) at 5/s
        (150, 5.0, 12),
        (100, 1000.0, 1),  # never less than a second
        (100_000, 1.0, 300),  # never more than five minutes
        (100, 0.0, 60),  # nothing drained lately: a minute
    ],
)
def test_a_full_backlog_says_when_to_send_again_from_how_fast_it_drains(
    waiting: int, drained_per_second: float, expected: int | None
) -> None:
    assert backlog_retry_after(waiting, 100, drained_per_second) == expected


@pytest.mark.parametrize(
    ("topic", "lane"),
    [
        ("orders/cancelled", IntakeLane.CANCEL),
        ("orders/delete", IntakeLane.CANCEL),
        ("observer.sales_order_cancel_after", IntakeLane.CANCEL),
        ("ORDER.DELETED", IntakeLane.CANCEL),
        ("orders/create", IntakeLane.NEW),
        ("orders/updated", IntakeLane.NEW),
        (None, IntakeLane.NEW),
    ],
)
def test_a_delivery_whose_topic_names_a_cancel_goes_in_the_first_lane(
    topic: str | None, lane: IntakeLane
) -> None:
    assert lane_of(topic) is lane
