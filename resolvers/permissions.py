"""Permission classes for fields: who may call what, scoped to stores and reservations."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from domain.access import Role
from domain.errors import Forbidden, NotFound
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


class SeesReservation(BasePermission):
    """The reservation named by the argument is one the caller may see: their own (customer),
    their store's (staff, POS), their channel's, or any (ops). To anyone else it does not exist,
    so nobody learns which ids are real."""

    def __init__(self, argument: str = "id", *, to_cancel: bool = False) -> None:
        self.argument = argument
        self.to_cancel = to_cancel

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        reservation_id = str(kwargs[self.argument])
        reservation = await info.context.loaders.reservation.load(reservation_id)
        if reservation is None or not actor.can_view(reservation):
            raise NotFound(f"No reservation {reservation_id}.")
        if self.to_cancel and not actor.can_cancel(reservation):
            raise Forbidden(f"Your token cannot cancel reservation {reservation_id}.")
        return True


class HandsOverReservation(BasePermission):
    """Staff or POS of the store of the reservation named by the argument. Callers who may not see
    the reservation get NOT_FOUND; those who may see it but not run its handoff, FORBIDDEN."""

    def __init__(self, argument: str = "id") -> None:
        self.argument = argument

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        reservation_id = str(kwargs[self.argument])
        reservation = await info.context.loaders.reservation.load(reservation_id)
        if reservation is None or not actor.can_view(reservation):
            raise NotFound(f"No reservation {reservation_id}.")
        if not actor.hands_over(reservation):
            raise Forbidden("Only the store's staff and POS hand over its reservations.")
        return True


class ShopperOfReservation(BasePermission):
    """The customer of the reservation named by the argument. Callers who may not see the
    reservation get NOT_FOUND; those who may see it but are not its shopper (the store, its
    channel, ops), FORBIDDEN."""

    def __init__(self, argument: str = "id") -> None:
        self.argument = argument

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = info.context.require_actor()
        reservation_id = str(kwargs[self.argument])
        reservation = await info.context.loaders.reservation.load(reservation_id)
        if reservation is None or not actor.can_view(reservation):
            raise NotFound(f"No reservation {reservation_id}.")
        if not actor.is_shopper_of(reservation):
            raise Forbidden("Only the reservation's customer checks in for it.")
        return True


def allow(*permissions: BasePermission) -> list[FieldExtension]:
    """Field extensions that run the permissions, in order, before the resolver."""
    return [PermissionExtension(permissions=list(permissions), use_directives=False)]
