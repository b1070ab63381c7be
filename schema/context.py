"""The typed context of one GraphQL operation: the caller, DataLoaders fresh for the operation,
and what the process wires together (`Services`, which gateway.deps.Deps provides)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import strawberry
from strawberry.dataloader import DataLoader

from domain.access import Actor
from domain.catalog import Store
from domain.clock import Clock
from domain.errors import Unauthenticated
from domain.intake import ChannelApi, SalesChannel
from domain.reservations import Reservation
from domain.wms import WmsPort
from services.intake.edge import AccountCache, EdgeCounts
from services.kpis import AttemptCounts
from services.queries import ReadPort
from services.unit_of_work import UnitOfWorkFactory


class Message(Protocol):
    """One message a subscription receives from the broker."""

    @property
    def message(self) -> str: ...


class Subscriptions(Protocol):
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]: ...


class Services(Protocol):
    """What resolvers and types use of the process's collaborators."""

    @property
    def uow(self) -> UnitOfWorkFactory: ...
    @property
    def read(self) -> ReadPort: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def qr_key(self) -> bytes: ...
    @property
    def broadcast(self) -> Subscriptions: ...
    @property
    def wms(self) -> WmsPort | None: ...
    @property
    def resource_radius_km(self) -> float: ...
    @property
    def intake_accounts(self) -> AccountCache: ...
    @property
    def channel_apis(self) -> Mapping[SalesChannel, ChannelApi]: ...
    @property
    def intake_counts(self) -> EdgeCounts: ...
    @property
    def reserve_attempts(self) -> AttemptCounts: ...
    def wake_intake(self) -> None: ...


class Loaders:
    """DataLoaders, fresh for each operation so nothing stale outlives a request."""

    def __init__(self, read: ReadPort) -> None:
        self._read = read

    @cached_property
    def store(self) -> DataLoader[str, Store | None]:
        async def load(ids: list[str]) -> list[Store | None]:
            found = await self._read.stores_by_ids(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def reservation(self) -> DataLoader[str, Reservation | None]:
        async def load(ids: list[str]) -> list[Reservation | None]:
            found = await self._read.reservations_by_ids(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)


@dataclass
class Context:
    deps: Services
    actor: Actor | None
    # A token that was sent but is not valid: why, for the fields that need a caller.
    auth_problem: str | None = None
    request: Any = None
    # The connection_init payload of a WebSocket (strawberry sets it).
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.fresh_loaders()

    def fresh_loaders(self) -> None:
        """New DataLoaders: once per operation (a WebSocket's context lives as long as it does)."""
        self.loaders = Loaders(self.deps.read)

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise Unauthenticated(
                self.auth_problem or "Sign in: send 'Authorization: Bearer <token>'."
            )
        return self.actor


Info = strawberry.Info[Context, None]
