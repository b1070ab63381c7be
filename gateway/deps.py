"""What the app wires together, once per process in its lifespan: storage, the read side, the
clock, the broker, the WMS client. The GraphQL layer sees it as schema.context.Services; the HTTP
endpoints use it as it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.broker import Broker
from domain.clock import Clock
from domain.intake import ChannelAccount, ChannelApi, SalesChannel
from domain.wms import WmsPort
from services.intake.edge import AccountCache, BacklogGauge, EdgeCounts
from services.kpis import AttemptCounts
from services.queries import ReadPort
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM
from services.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class Deps:
    uow: UnitOfWorkFactory
    read: ReadPort
    clock: Clock
    qr_key: bytes
    # Subscriptions listen on it; the relay publishes through it (memory:// or Redis).
    broadcast: Broker
    # The WMS, when one is configured (reconciliation on demand).
    wms: WmsPort | None = None
    resource_radius_km: float = DEFAULT_RESOURCE_RADIUS_KM
    # Units of work whose every statement commits on its own (the intake edge's one INSERT);
    # None: `uow`.
    single: UnitOfWorkFactory | None = None
    # The intake edge's channel accounts, kept a moment (ROPOS_INTAKE_ACCOUNT_CACHE_SECONDS).
    intake_accounts: AccountCache = field(default_factory=AccountCache)
    # Each account's backlog as the edge last counted it (a full one answers 429).
    intake_backlog: BacklogGauge = field(default_factory=BacklogGauge)
    # What the edge refused or repeated, counted in memory and written each second.
    intake_counts: EdgeCounts = field(default_factory=EdgeCounts)
    # Wakes this process's intake worker, if it runs one (else another process's sweep finds
    # the work): after the edge stores a delivery (naming its account), and after ops replay or
    # resubmit.
    wake: Callable[[tuple[SalesChannel, str] | None], None] | None = None
    # The channels' APIs (fetch-back and the gap sweep), shared with this process's workers.
    channel_apis: dict[SalesChannel, ChannelApi] = field(default_factory=dict)
    # Every reserve attempt's outcome (GraphQL and this process's intake worker), counted in
    # memory and written each second, for the KPIs and /metrics.
    reserve_attempts: AttemptCounts = field(default_factory=AttemptCounts)

    def wake_intake(self, account: ChannelAccount | None = None) -> None:
        """A message was stored (for `account`; None: ops', of any account)."""
        if self.wake is not None:
            self.wake((account.channel, account.account) if account is not None else None)
