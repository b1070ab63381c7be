"""The root types: each field of Query, Mutation and Subscription bound to its resolver and its
permissions; and `build_schema`, which makes the Schema with its limits and caches."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from domain.access import Role
from resolvers import intake, mutations, queries, subscriptions
from resolvers.errors import OperationRules, log_unexpected
from resolvers.permissions import (
    ActsForStore,
    HandsOverReservation,
    HasRole,
    IsAuthenticated,
    SeesReservation,
    SeesStoreFigures,
    ShopperOfReservation,
    allow,
)
from schema import intake as intake_types
from schema import plain, types


@strawberry.type(description="Read stock, stores and reservations.")
class Query:
    stores: list[types.Store] = strawberry.field(
        resolver=queries.stores,
        description="Stores, nearest first when `near` is given (within radiusKm, default 50).",
    )
    availability: list[types.StoreAvailability] = strawberry.field(
        resolver=queries.availability,
        description="Stores near the point, nearest first, with what they can give of the SKUs.",
    )
    stock_level: types.StockLevel | None = strawberry.field(
        resolver=queries.stock_level,
        description="Stock of one SKU at one store: its staff and POS, ops, the WMS.",
        extensions=allow(ActsForStore(every_store=(Role.WMS,))),
    )
    reservation: types.Reservation | None = strawberry.field(
        resolver=queries.reservation,
        description=(
            "One reservation: the customer's own, their store's for staff and POS, any for ops."
        ),
        extensions=allow(SeesReservation()),
    )
    my_reservations: list[types.Reservation] = strawberry.field(
        resolver=queries.my_reservations,
        description="The signed-in customer's reservations, newest first.",
        extensions=allow(HasRole(Role.CUSTOMER)),
    )
    pickup_queue: list[types.Reservation] = strawberry.field(
        resolver=queries.pickup_queue,
        description="Active reservations of a store, soonest to expire first; arrivedAt and "
        "waitingSeconds say whose shopper is already there.",
        extensions=allow(ActsForStore()),
    )
    webhook_deliveries: list[types.WebhookDelivery] = strawberry.field(
        resolver=queries.webhook_deliveries,
        description="POS webhook deliveries, newest or most impact first; by default the dead "
        "letters (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    reservation_policy: types.ReservationPolicy = strawberry.field(
        resolver=queries.reservation_policy, description="The rules for holds and limits."
    )
    kpis: types.Kpis = strawberry.field(
        resolver=queries.kpis,
        description="The operational figures over a window: one store's (its staff and POS, "
        "ops) or every store's (ops).",
        extensions=allow(SeesStoreFigures()),
    )
    stock_discrepancies: list[types.StockDiscrepancy] = strawberry.field(
        resolver=queries.stock_discrepancies,
        description="What reconciliation found different from the WMS, newest first; by "
        "default the open ones (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    reconciliation_runs: list[types.ReconciliationRun] = strawberry.field(
        resolver=queries.reconciliation_runs,
        description="Reconciliations with the WMS, newest first (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    wms_movements: list[types.WmsMovement] = strawberry.field(
        resolver=queries.wms_movements,
        description="Movements on their way to the WMS, newest or most impact first; by default "
        "the dead letters (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    channel_accounts: list[intake_types.ChannelAccount] = strawberry.field(
        resolver=intake.channel_accounts,
        description="The sales channels' merchant accounts, by channel and code; never their "
        "secrets (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    intake_message: intake_types.IntakeMessage | None = strawberry.field(
        resolver=intake.intake_message,
        description="One intake message: a stored delivery and what became of it (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    intake_messages: list[intake_types.IntakeMessage] = strawberry.field(
        resolver=intake.intake_messages,
        description="Intake messages, newest or most impact first; by default all of them (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    channel_order: intake_types.ChannelOrder | None = strawberry.field(
        resolver=intake.channel_order,
        description="What ROPOS holds for one channel order: the order as last applied, its "
        "state and reservations (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    intake_health: intake_types.IntakeHealth = strawberry.field(
        resolver=intake.intake_health,
        description="One channel account's intake over a window: received, final statuses, "
        "refusals before storing, backlog, latency, lag, reject rates per rule (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    intake_health_by_account: list[intake_types.IntakeHealth] = strawberry.field(
        resolver=intake.intake_health_by_account,
        description="intakeHealth for every channel account at once, the highest failure "
        "impact first (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    validation_profile: list[intake_types.ValidationRule] = strawberry.field(
        resolver=intake.validation_profile,
        description="Every validation rule with its action: a channel's defaults, or an "
        "account's effective profile (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )


@strawberry.type(description="Reserve, cancel, and keep stores, stock and rules up to date.")
class Mutation:
    reserve: types.ReservationGroup = strawberry.field(
        resolver=mutations.reserve,
        description=(
            "Lock every line at one store, or split over the fewest near stores; all or none."
        ),
        extensions=allow(HasRole(Role.CUSTOMER, Role.CHANNEL, Role.STAFF, Role.OPS)),
    )
    cancel_reservation: types.Reservation = strawberry.field(
        resolver=mutations.cancel_reservation,
        description="Cancel an active reservation; its stock is released at once.",
        extensions=allow(IsAuthenticated(), SeesReservation(to_cancel=True)),
    )
    mark_ready_for_pickup: types.Reservation = strawberry.field(
        resolver=mutations.mark_ready_for_pickup,
        description="Picked and waiting at the store: HELD -> READY_FOR_PICKUP (its staff, POS).",
        extensions=allow(HandsOverReservation()),
    )
    check_in: types.Reservation = strawberry.field(
        resolver=mutations.check_in,
        description='The shopper is at the store ("I\'m here"), once, while the reservation is '
        "active: its store's POS is told (CUSTOMER_ARRIVED) and the pickup queue shows the wait "
        "(the reservation's customer).",
        extensions=allow(ShopperOfReservation()),
    )
    scan_pickup: types.Reservation = strawberry.field(
        resolver=mutations.scan_pickup,
        description="Find the reservation a shopper shows at the till, by QR payload or receipt "
        "code; only the store's staff and POS find it (to anyone else it does not exist).",
        extensions=allow(IsAuthenticated()),
    )
    complete_pickup: types.Reservation = strawberry.field(
        resolver=mutations.complete_pickup,
        description="Paid and handed over: the units leave the store and the lock ends. The "
        "same payment reference again returns the same result.",
        extensions=allow(HandsOverReservation()),
    )
    set_store_webhook: types.StoreWebhook = strawberry.field(
        resolver=mutations.set_store_webhook,
        description="Set or remove the URL a store's POS wants its events POSTed to (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    replay_webhook_delivery: types.WebhookDelivery = strawberry.field(
        resolver=mutations.replay_webhook_delivery,
        description="Send a dead-lettered webhook delivery again, now (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    discard_webhook_delivery: types.WebhookDelivery = strawberry.field(
        resolver=mutations.discard_webhook_delivery,
        description="Give up on a dead-lettered webhook delivery, with the reason (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    upsert_stores: list[types.Store] = strawberry.field(
        resolver=mutations.upsert_stores,
        description="Add or update stores (ops, WMS).",
        extensions=allow(HasRole(Role.OPS, Role.WMS)),
    )
    upsert_skus: list[types.Sku] = strawberry.field(
        resolver=mutations.upsert_skus,
        description="Add or update SKUs in the catalogue (ops, WMS).",
        extensions=allow(HasRole(Role.OPS, Role.WMS)),
    )
    sync_stock: types.SyncStockResult = strawberry.field(
        resolver=mutations.sync_stock,
        description="Set absolute on-hand counts per store and SKU (ops, WMS).",
        extensions=allow(HasRole(Role.OPS, Role.WMS)),
    )
    report_short_pick: types.Reservation = strawberry.field(
        resolver=mutations.report_short_pick,
        description="Picking found fewer units of a line than reserved (its store's staff, "
        "POS): the missing units move to a nearby store or are let go, and the customer is told.",
        extensions=allow(HandsOverReservation("reservation_id")),
    )
    reconcile_stock: types.ReconciliationRun = strawberry.field(
        resolver=mutations.reconcile_stock,
        description="Compare stock with the WMS now, and repair what has a clear owner (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    resolve_stock_discrepancy: types.StockDiscrepancy = strawberry.field(
        resolver=mutations.resolve_stock_discrepancy,
        description="Close an open stock discrepancy with a note (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    replay_wms_movement: types.WmsMovement = strawberry.field(
        resolver=mutations.replay_wms_movement,
        description="Send a dead WMS movement again, as the newest of its row (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    discard_wms_movement: types.WmsMovement = strawberry.field(
        resolver=mutations.discard_wms_movement,
        description="Give up on a dead WMS movement, with the reason: it is never sent, and "
        "reconciliation compares its row (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    set_low_stock_thresholds: int = strawberry.field(
        resolver=mutations.set_low_stock_thresholds,
        description="Set or clear low-stock thresholds of (store, SKU) rows; returns how many "
        "(ops, WMS).",
        extensions=allow(HasRole(Role.OPS, Role.WMS)),
    )
    update_reservation_policy: types.ReservationPolicy = strawberry.field(
        resolver=mutations.update_reservation_policy,
        description="Replace the reservation policy (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    upsert_channel_account: intake_types.ChannelAccount = strawberry.field(
        resolver=intake.upsert_channel_account,
        description="Create a channel account, or change the fields given; rotating its secret "
        "keeps the previous one verifying for a grace period (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    sweep_channel_account: intake_types.IntakeSweep = strawberry.field(
        resolver=intake.sweep_channel_account,
        description="Ask a channel account's API now for the orders changed in a range and "
        "feed those ROPOS has not seen into the intake (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    replay_intake_message: intake_types.IntakeMessage = strawberry.field(
        resolver=intake.replay_intake_message,
        description="Run an intake message again from its raw body, now (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    replay_intake_messages: int = strawberry.field(
        resolver=intake.replay_intake_messages,
        description="Run every intake message in a status again (of a channel, of an account); "
        "returns how many (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    discard_intake_message: intake_types.IntakeMessage = strawberry.field(
        resolver=intake.discard_intake_message,
        description="Give up on an intake message, with the reason (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )
    resubmit_intake_message: intake_types.IntakeMessage = strawberry.field(
        resolver=intake.resubmit_intake_message,
        description="Run an intake message again with the order ops corrected, from "
        "validation on (ops).",
        extensions=allow(HasRole(Role.OPS)),
    )


@strawberry.type(description="Live events, over WebSocket (graphql-transport-ws or graphql-ws).")
class Subscription:
    pickup_events: AsyncGenerator[types.PickupEvent, None] = strawberry.subscription(
        resolver=subscriptions.pickup_events,
        description="For a store's POS terminals: a reservation became ready for pickup, its "
        "shopper arrived, it is expiring soon, was collected, cancelled or expired, or lost "
        "units to a stock shortage (staff and POS of the store, ops).",
        extensions=allow(ActsForStore()),
    )
    reservation_updates: AsyncGenerator[types.ReservationEvent, None] = strawberry.subscription(
        resolver=subscriptions.reservation_updates,
        description="For the reservation's app: first its state (SNAPSHOT, with expiresAt and "
        "secondsRemaining for the countdown), then every change; ends after a final state.",
        extensions=allow(SeesReservation()),
    )
    stock_updates: AsyncGenerator[types.StockEvent, None] = strawberry.subscription(
        resolver=subscriptions.stock_updates,
        description="Changes of available units, for storefronts (no token needed).",
    )
    intake_events: AsyncGenerator[intake_types.IntakeEvent, None] = strawberry.subscription(
        resolver=subscriptions.intake_events,
        description="For ops: every intake message's outcome (accepted, ignored, rejected, "
        "retrying, dead, discarded), of one channel account or of all.",
        extensions=allow(HasRole(Role.OPS)),
    )


class BoundedParserCache(ParserCache):
    """The parser cache, for query texts of at most `max_chars` characters: a longer one is
    refused before it is parsed (or hashed for the cache). The token limit bounds what parsing
    costs; this bounds the text itself, the bytes a client makes us hold and scan."""

    def __init__(self, max_chars: int, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_chars = max_chars

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query or ""
        if len(query) > self.max_chars:
            raise GraphQLError(
                f"The query is {len(query)} characters long; at most {self.max_chars} are "
                "accepted (ROPOS_MAX_QUERY_CHARS)."
            )
        yield from super().on_parse()


class RoposSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Rule breaks and bad requests are the client's business; only our failures are logged.
        log_unexpected(errors)


def build_schema(
    *,
    max_depth: int = 10,
    max_aliases: int = 15,
    max_tokens: int = 2_000,
    max_query_chars: int = 20_000,
    introspection: bool = True,
    plain_completion: bool = True,
    schema_class: type[RoposSchema] = RoposSchema,
) -> RoposSchema:
    """The schema. `plain_completion`: complete plain sub-selections by plan (schema.plain),
    unless off, or unless this graphql-core or strawberry lacks what the plan needs (then with a
    warning, on graphql-core's own path). `introspection` off: `__schema` and `__type` are
    refused at validation (`__typename` stays: clients need it). `schema_class`: a subclass,
    such as the gateway's that counts what it runs (gateway/metrics.py)."""
    # The limit rules are made once: the validation cache is keyed by the rule classes, and the
    # limiters make new classes each time they are built, which would make every request a miss.
    limits = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    if not introspection:
        # One more rule of the same fixed class: the validation cache still hits.
        limits.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Any] = [
        lambda: OperationRules(max_tokens, limits),
        lambda: BoundedParserCache(max_query_chars, maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    return schema_class(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=plain.execution_context(enabled=plain_completion),
    )
