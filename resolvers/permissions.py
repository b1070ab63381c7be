"""Permission classes for fields: who may call what, scoped to stores and reservations."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from domain.access import Actor, Role
from domain.errors import Forbidden, NotFound
from domain.reservations import Reservation
from schema.context import Info


class IsAuthenticated(BasePermission):
    """Any valid token."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_actor()
        return True


class HasRole(BasePermission):
    """One of the named roles."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        if actor.role not in self.roles:
            allowed = ", ".join(sorted(self.roles))
            raise Forbidden(f"This needs one of the roles: {allowed}; your token is {actor.role}.")
        return True


class ActsForStore(BasePermission):
    """Staff and POS of the store named by the argument, ops, and any role in `every_store`."""

    def __init__(self, argument: str = "store_id", *, every_store: tuple[Role, ...] = ()) -> None:
        self.argument = argument
        self.every_store = frozenset(every_store)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        store_id = str(kwargs[self.argument])
        if actor.role not in self.every_store and not actor.acts_for_store(store_id):
            raise Forbidden(f"Your token does not act for store {store_id}.")
        return True


class SeesStoreFigures(BasePermission):
    """One store's figures: its staff and POS, and ops; every store's: ops."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        store_id = kwargs.get("store_id")
        if store_id is None:
            if actor.role is not Role.OPS:
                raise Forbidden("The figures of every store are for ops; name your store.")
        elif not actor.acts_for_store(str(store_id)):
            raise Forbidden(f"Your token does not act for store {store_id}.")
        return True


class _OnReservation(BasePermission):
    """The reservation named by the argument, for callers who may see it: to anyone else it does
    not exist (NOT_FOUND), so nobody learns which ids are real. Those who see it but may not do
    this to it (`may`) get FORBIDDEN."""

    def __init__(self, argument: str = "id") -> None:
        self.argument = argument

    def may(self, actor: Actor, reservation: Reservation) -> bool:
        return True

    def refusal(self, reservation_id: str) -> str:
        return f"Your token cannot do this to reservation {reservation_id}."

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        reservation_id = str(kwargs[self.argument])
        reservation = await info.context.loaders.reservation.load(reservation_id)
        if reservation is None or not actor.can_view(reservation):
            raise NotFound(f"No reservation {reservation_id}.")
        if not self.may(actor, reservation):
            raise Forbidden(self.refusal(reservation_id))
        return True


class SeesReservation(_OnReservation):
    """The reservation is one the caller may see: their own (customer), their store's (staff,
    POS), their channel's, or any (ops); with `to_cancel`, one they may also cancel."""

    def __init__(self, argument: str = "id", *, to_cancel: bool = False) -> None:
        super().__init__(argument)
        self.to_cancel = to_cancel

    def may(self, actor: Actor, reservation: Reservation) -> bool:
        return not self.to_cancel or actor.can_cancel(reservation)

    def refusal(self, reservation_id: str) -> str:
        return f"Your token cannot cancel reservation {reservation_id}."


class HandsOverReservation(_OnReservation):
    """Staff or POS of the reservation's store: they run its handoff."""

    def may(self, actor: Actor, reservation: Reservation) -> bool:
        return actor.hands_over(reservation)

    def refusal(self, reservation_id: str) -> str:
        return "Only the store's staff and POS hand over its reservations."


class ShopperOfReservation(_OnReservation):
    """The reservation's customer (its store, its channel and ops see it, and are refused)."""

    def may(self, actor: Actor, reservation: Reservation) -> bool:
        return actor.is_shopper_of(reservation)

    def refusal(self, reservation_id: str) -> str:
        return "Only the reservation's customer checks in for it."


def allow(*permissions: BasePermission) -> list[FieldExtension]:
    """Field extensions that run the permissions, in order, before the resolver."""
    return [PermissionExtension(permissions=list(permissions), use_directives=False)]
