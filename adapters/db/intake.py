"""Storage of the order intake: channel accounts, intake messages (the raw body stored before the
edge answers), and what ROPOS holds for each channel order."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db.fast import Statements
from adapters.db.queue import claim_due
from adapters.db.tables import (
    channel_accounts,
    channel_orders,
    insert_on_conflict,
    intake_counts,
    intake_messages,
)
from domain.intake import (
    ChannelAccount,
    ChannelOrder,
    Decision,
    HeldOrder,
    IntakeClaim,
    IntakeCount,
    IntakeLane,
    IntakeMessage,
    IntakeStatus,
    OrderState,
    RuleAction,
    SalesChannel,
    decision_from_json,
    decision_to_json,
    from_json,
    to_json,
)
from domain.intake_health import Sampled, StatusCount

WAITING = (IntakeStatus.RECEIVED.value, IntakeStatus.RETRYING.value)


_ORDER_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock(
        sa.func.hashtextextended(sa.bindparam("b_key", type_=sa.Text), sa.literal_column("0"))
    )
)


def account_from_row(row: Any) -> ChannelAccount:
    return ChannelAccount(
        channel=SalesChannel(row.channel),
        account=row.account,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_until=row.previous_secret_until,
        default_store_id=row.default_store_id,
        locations=dict(row.locations or {}),
        products=dict(row.products or {}),
        rules={name: RuleAction(action) for name, action in (row.rules or {}).items()},
        api_base_url=row.api_base_url,
        api_token=row.api_token,
        assume_pickup=row.assume_pickup,
        notification_url=row.notification_url,
        max_backlog=row.max_backlog,
        weight=row.weight,
        enabled=row.enabled,
        auth_failures=row.auth_failures,
        swept_until=row.swept_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fair_turns(
    now: datetime, limit: int, exclude: Collection[tuple[SalesChannel, str]] = ()
) -> sa.Select[Any]:
    """The ids of the first `limit` due messages in turn order, each with `due`, how many of
    its account's messages were due: an account's k-th due message (0-based; cancels, then
    new, then again, each highest value first, then oldest first) has turn k / weight; ties go
    to the one due first. None of the `exclude`d accounts'."""
    m = intake_messages
    due = [m.c.status.in_(WAITING), m.c.next_attempt_at <= now]
    if exclude:
        due.append(
            sa.tuple_(m.c.channel, m.c.account).not_in(
                [(channel.value, account) for channel, account in sorted(exclude)]
            )
        )
    nth = sa.func.row_number().over(
        partition_by=(m.c.channel, m.c.account),
        order_by=(m.c.lane, m.c.order_value.desc().nulls_last(), m.c.next_attempt_at, m.c.id),
    )
    weight = sa.func.coalesce(channel_accounts.c.weight, 1)
    ranked = (
        sa.select(
            m.c.id,
            m.c.next_attempt_at,
            (sa.cast(nth - 1, sa.Float) / weight).label("turn"),
            sa.func.count().over(partition_by=(m.c.channel, m.c.account)).label("due"),
        )
        .select_from(
            m.outerjoin(
                channel_accounts,
                (channel_accounts.c.channel == m.c.channel)
                & (channel_accounts.c.account == m.c.account),
            )
        )
        .where(*due)
        .subquery("ranked")
    )
    return (
        sa.select(ranked.c.id, ranked.c.due)
        .order_by(ranked.c.turn, ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )


def _due_of(rows: Sequence[Any]) -> dict[tuple[SalesChannel, str], int]:
    """Each claimed account's messages that were due when claimed (those claimed included)."""
    return {(SalesChannel(row.channel), row.account): int(row.due) for row in rows}


class ChannelAccountRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, channel: SalesChannel, account: str) -> ChannelAccount | None:
        row = (
            await self.conn.execute(
                sa.select(channel_accounts).where(
                    channel_accounts.c.channel == channel.value,
                    channel_accounts.c.account == account,
                )
            )
        ).first()
        return account_from_row(row) if row else None

    async def list(self, channel: SalesChannel | None) -> list[ChannelAccount]:
        query = sa.select(channel_accounts).order_by(
            channel_accounts.c.channel, channel_accounts.c.account
        )
        if channel is not None:
            query = query.where(channel_accounts.c.channel == channel.value)
        return [account_from_row(row) for row in (await self.conn.execute(query)).all()]

    async def upsert(self, account: ChannelAccount, now: datetime) -> ChannelAccount:
        values = {
            "secret": account.secret,
            "previous_secret": account.previous_secret,
            "previous_secret_until": account.previous_secret_until,
            "default_store_id": account.default_store_id,
            "locations": account.locations,
            "products": account.products,
            "rules": {name: action.value for name, action in account.rules.items()},
            "api_base_url": account.api_base_url,
            "api_token": account.api_token,
            "assume_pickup": account.assume_pickup,
            "notification_url": account.notification_url,
            "max_backlog": account.max_backlog,
            "weight": account.weight,
            "enabled": account.enabled,
            "updated_at": now,
        }
        stmt = insert_on_conflict(self.conn, channel_accounts).values(
            channel=account.channel.value, account=account.account, created_at=now, **values
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[channel_accounts.c.channel, channel_accounts.c.account],
                set_=values,
            )
        )
        found = await self.get(account.channel, account.account)
        assert found is not None
        return found

    async def mark_swept(self, channel: SalesChannel, account: str, until: datetime) -> None:
        """The gap sweep has asked the account's API up to `until` (never moved back)."""
        c = channel_accounts.c
        await self.conn.execute(
            sa.update(channel_accounts)
            .where(c.channel == channel.value, c.account == account)
            .where(sa.or_(c.swept_until.is_(None), c.swept_until < until))
            .values(swept_until=until)
        )

    async def count_refusal(
        self, channel: SalesChannel, account: str, what: IntakeCount, n: int = 1
    ) -> None:
        """The account's running total of a refusal (its `authFailures`, `oversized`)."""
        column = {
            IntakeCount.SIGNATURE_FAILURE: channel_accounts.c.auth_failures,
            IntakeCount.OVERSIZED: channel_accounts.c.oversized,
        }.get(what)
        if column is None:
            return
        await self.conn.execute(
            sa.update(channel_accounts)
            .where(
                channel_accounts.c.channel == channel.value, channel_accounts.c.account == account
            )
            .values({column: column + n})
        )


def message_from_row(row: Any) -> IntakeMessage:
    """A message from a row read by column name: SQLAlchemy's RowMapping or asyncpg's Record
    (adapters/db/fast.py), which hold the same values."""
    return IntakeMessage(
        id=row["id"],
        channel=SalesChannel(row["channel"]),
        account=row["account"],
        status=IntakeStatus(row["status"]),
        received_at=row["received_at"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        dedupe_key=row["dedupe_key"],
        topic=row["topic"],
        event_id=row["event_id"],
        parent_id=row["parent_id"],
        finished_at=row["finished_at"],
        error_code=row["error_code"],
        error=row["error"],
        decisions=tuple(decision_from_json(d) for d in row["decisions"] or ()),
        order=from_json(row["order_json"]) if row["order_json"] else None,
        external_id=row["external_id"],
        order_value=Decimal(row["order_value"]) if row["order_value"] is not None else None,
        reservation_group_id=row["reservation_group_id"],
        headers=dict(row["headers"] or {}),
        lane=IntakeLane(row["lane"]),
    )


# Every column but the raw body: lists and claims never read bodies.
_MESSAGE_COLUMNS = [c for c in intake_messages.c if c.name != "body"]


def _add(insert: Any) -> Any:
    return (
        insert(intake_messages)
        .on_conflict_do_nothing(
            index_elements=[
                intake_messages.c.channel,
                intake_messages.c.account,
                intake_messages.c.dedupe_key,
            ]
        )
        .returning(intake_messages.c.id)
    )


# A new message, or nothing when its (channel, account, dedupe key) is taken. This statement
# and those below are module-level, so their SQL is compiled once: the edge and the worker run
# them straight on asyncpg on PostgreSQL (adapters/db/fast.py).
_ADD = {"postgresql": _add(postgresql.insert), "sqlite": _add(sqlite.insert)}
_MESSAGE = sa.select(*_MESSAGE_COLUMNS).where(intake_messages.c.id == sa.bindparam("b_id"))
_MESSAGE_FOR_UPDATE = _MESSAGE.with_for_update(of=intake_messages)
# The same, and then (PostgreSQL) the lock of the message's order, as ChannelOrderRepository.lock
# takes it: the row is locked before the function runs, since the CTE yields it locked.
_LOCKED = _MESSAGE_FOR_UPDATE.cte("locked").prefix_with("MATERIALIZED", dialect="postgresql")
_MESSAGE_AND_ORDER_FOR_UPDATE = sa.select(
    _LOCKED,
    sa.func.pg_advisory_xact_lock(
        sa.func.hashtextextended(sa.bindparam("b_order", type_=sa.Text), sa.literal_column("0"))
    ).label("order_locked"),
)
# SET takes the columns of the parameters given (fast.Statements compiles one per set of keys).
_UPDATE_MESSAGE = sa.update(intake_messages).where(intake_messages.c.id == sa.bindparam("b_id"))
# In the words of the partial index's predicate, so that the planner can use the index.
_WAITING_ROWS = sa.text("intake_messages.status IN ('RECEIVED', 'RETRYING')")
_OF_ACCOUNT = (intake_messages.c.channel == sa.bindparam("b_channel")) & (
    intake_messages.c.account == sa.bindparam("b_account")
)
# An account's waiting messages (ix_intake_messages_waiting), and those it finished lately among
# the ones received since `b_horizon` (ix_intake_messages_channel_account_received_at).
_BACKLOG = sa.select(
    sa.select(sa.func.count()).where(_OF_ACCOUNT, _WAITING_ROWS).scalar_subquery().label("waiting"),
    sa.select(sa.func.count())
    .where(
        _OF_ACCOUNT,
        intake_messages.c.received_at >= sa.bindparam("b_horizon"),
        intake_messages.c.finished_at >= sa.bindparam("b_since"),
    )
    .scalar_subquery()
    .label("finished"),
)


class IntakeRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements

    async def count(
        self, channel: SalesChannel, account: str, what: IntakeCount, at: datetime, n: int = 1
    ) -> None:
        """Add `n` to the account's count of `what` in the minute of `at`."""
        minute = at.replace(second=0, microsecond=0)
        stmt = insert_on_conflict(self.conn, intake_counts).values(
            channel=channel.value, account=account, what=what.value, minute=minute, count=n
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    intake_counts.c.channel,
                    intake_counts.c.account,
                    intake_counts.c.what,
                    intake_counts.c.minute,
                ],
                set_={"count": intake_counts.c.count + stmt.excluded.count},
            )
        )

    async def add(self, message: IntakeMessage, body: bytes | None) -> IntakeMessage | None:
        params = {
            "id": message.id,
            "channel": message.channel.value,
            "account": message.account,
            "parent_id": message.parent_id,
            "dedupe_key": message.dedupe_key,
            "topic": message.topic,
            "event_id": message.event_id,
            "body": body,
            "headers": message.headers,
            "received_at": message.received_at,
            "status": message.status.value,
            "attempts": message.attempts,
            "next_attempt_at": message.next_attempt_at,
            "finished_at": message.finished_at,
            "error_code": message.error_code,
            "error": message.error,
            "decisions": [decision_to_json(d) for d in message.decisions],
            "order_json": to_json(message.order) if message.order else None,
            "external_id": message.external_id,
            "order_value": message.order_value,
            "lane": int(message.lane),
        }
        added = await self.statements.first(_ADD[self.conn.dialect.name], params)
        return message if added is not None else None

    # --- health ---------------------------------------------------------------------------

    def _window(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None
    ) -> list[sa.ColumnElement[bool]]:
        m = intake_messages
        where = [m.c.received_at >= since, m.c.received_at <= until]
        if source is not None:
            where += [m.c.channel == source[0].value, m.c.account == source[1]]
        return where

    def _orders_only(self, since: datetime, until: datetime) -> sa.ColumnElement[bool]:
        """Not a body that was split into one message per order (its parts count instead)."""
        parts = intake_messages.alias("parts")
        parents = sa.select(parts.c.parent_id).where(
            parts.c.parent_id.is_not(None),
            parts.c.received_at >= since,
            parts.c.received_at <= until,
        )
        return intake_messages.c.id.not_in(parents)

    async def status_counts(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], list[StatusCount]]:
        """Per account, the messages received in the window that stand for one order each, by
        status and error code, with their worth (each at least 1)."""
        m = intake_messages
        rows = await self.conn.execute(
            sa.select(
                m.c.channel,
                m.c.account,
                m.c.status,
                m.c.error_code,
                sa.func.count(),
                sa.func.sum(sa.func.coalesce(m.c.order_value, 0) + 1),
            )
            .where(*self._window(since, until, source), self._orders_only(since, until))
            .group_by(m.c.channel, m.c.account, m.c.status, m.c.error_code)
        )
        found: dict[tuple[str, str], list[StatusCount]] = {}
        for channel, account, status, code, count, value in rows:
            found.setdefault((channel, account), []).append(
                StatusCount(IntakeStatus(status), code, int(count), Decimal(value or 0))
            )
        return found

    async def deliveries(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], int]:
        """Per account, the deliveries stored in the window (a split body once)."""
        m = intake_messages
        rows = await self.conn.execute(
            sa.select(m.c.channel, m.c.account, sa.func.count())
            .where(*self._window(since, until, source), m.c.parent_id.is_(None))
            .group_by(m.c.channel, m.c.account)
        )
        return {(channel, account): int(n) for channel, account, n in rows}

    async def counted(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], dict[IntakeCount, int]]:
        """Per account, what was counted without a message in the window's minutes."""
        c = intake_counts
        query = (
            sa.select(c.c.channel, c.c.account, c.c.what, sa.func.sum(c.c.count))
            .where(c.c.minute >= since.replace(second=0, microsecond=0), c.c.minute <= until)
            .group_by(c.c.channel, c.c.account, c.c.what)
        )
        if source is not None:
            query = query.where(c.c.channel == source[0].value, c.c.account == source[1])
        found: dict[tuple[str, str], dict[IntakeCount, int]] = {}
        for channel, account, what, n in await self.conn.execute(query):
            found.setdefault((channel, account), {})[IntakeCount(what)] = int(n)
        return found

    async def waiting(
        self, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], tuple[int, datetime]]:
        """Per account, the messages waiting now and when the oldest of them was received."""
        m = intake_messages
        query = (
            sa.select(m.c.channel, m.c.account, sa.func.count(), sa.func.min(m.c.received_at))
            .where(_WAITING_ROWS)
            .group_by(m.c.channel, m.c.account)
        )
        if source is not None:
            query = query.where(m.c.channel == source[0].value, m.c.account == source[1])
        found: dict[tuple[str, str], tuple[int, datetime]] = {}
        for channel, account, n, oldest in await self.conn.execute(query):
            if isinstance(oldest, str):  # SQLite's min() of a timestamp comes back as text
                oldest = datetime.fromisoformat(oldest)
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            found[(channel, account)] = (int(n), oldest)
        return found

    async def sample(
        self, source: tuple[SalesChannel, str], since: datetime, until: datetime, limit: int
    ) -> list[Sampled]:
        """The account's newest messages of the window that stand for one order each."""
        m = intake_messages
        rows = await self.conn.execute(
            sa.select(m.c.status, m.c.received_at, m.c.finished_at, m.c.channel_at, m.c.decisions)
            .where(*self._window(since, until, source), self._orders_only(since, until))
            .order_by(m.c.received_at.desc())
            .limit(limit)
        )
        return [
            Sampled(
                IntakeStatus(status),
                received_at,
                finished_at,
                channel_at,
                tuple(decision_from_json(d) for d in decisions or ()),
            )
            for status, received_at, finished_at, channel_at, decisions in rows
        ]

    async def backlog(
        self, channel: SalesChannel, account: str, since: datetime, horizon: datetime
    ) -> tuple[int, int]:
        """(messages of the account waiting, messages received after `horizon` that it finished
        after `since`)."""
        row = await self.statements.first(
            _BACKLOG,
            {
                "b_channel": channel.value,
                "b_account": account,
                "b_horizon": horizon,
                "b_since": since,
            },
        )
        assert row is not None
        return int(row["waiting"]), int(row["finished"])

    async def find_delivery(
        self, channel: SalesChannel, account: str, dedupe_key: str
    ) -> IntakeMessage | None:
        row = (
            await self.conn.execute(
                sa.select(*_MESSAGE_COLUMNS).where(
                    intake_messages.c.channel == channel.value,
                    intake_messages.c.account == account,
                    intake_messages.c.dedupe_key == dedupe_key,
                )
            )
        ).first()
        return message_from_row(row._mapping) if row else None

    async def get(
        self,
        message_id: str,
        *,
        for_update: bool = False,
        and_order: tuple[SalesChannel, str, str] | None = None,
    ) -> IntakeMessage | None:
        """The message; with `for_update` locked, and with `and_order` (channel, account,
        external id) its order locked too, as ChannelOrderRepository.lock would: one round trip
        where the worker would spend two."""
        if for_update and and_order is not None and self.conn.dialect.name == "postgresql":
            row = await self.statements.first(
                _MESSAGE_AND_ORDER_FOR_UPDATE,
                {"b_id": message_id, "b_order": order_lock_key(*and_order)},
            )
        else:
            query = _MESSAGE_FOR_UPDATE if for_update else _MESSAGE
            row = await self.statements.first(query, {"b_id": message_id})
        return message_from_row(row) if row is not None else None

    async def body(self, message_id: str) -> bytes | None:
        value = (
            await self.conn.execute(
                sa.select(intake_messages.c.body).where(intake_messages.c.id == message_id)
            )
        ).scalar()
        return bytes(value) if value is not None else None

    async def bodies(self, message_ids: Sequence[str]) -> dict[str, bytes | None]:
        rows = (
            await self.conn.execute(
                sa.select(intake_messages.c.id, intake_messages.c.body).where(
                    intake_messages.c.id.in_(list(message_ids))
                )
            )
        ).all()
        return {row.id: bytes(row.body) if row.body is not None else None for row in rows}

    async def claim_due(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        exclude: Collection[tuple[SalesChannel, str]] = (),
    ) -> IntakeClaim:
        """Up to `limit` due messages, fairly across accounts: each account's due messages
        take turns, oldest first, an account of weight w taking w turns to another's one, so a
        quiet account's orders never wait behind a flooding one's backlog. They come back in
        the order they became due (one order's messages in the order they were received), with
        the raw bodies of those that have one to read and each account's due count. On
        PostgreSQL in ONE statement (the pick locked with SKIP LOCKED, leased and returned):
        the worker claims each time a message arrives for an account that can take more, so a
        claim's round trips are on every quiet order's way."""
        turns = _fair_turns(now, limit, exclude).subquery("turns")
        m = intake_messages
        if self.conn.dialect.name != "postgresql":
            rows = await claim_due(
                self.conn,
                sa.select(*_MESSAGE_COLUMNS, turns.c.due)
                .join_from(m, turns, m.c.id == turns.c.id)
                .order_by(m.c.next_attempt_at, m.c.id),
                m,
                lease_until=lease_until,
            )
            messages = [
                replace(message_from_row(row._mapping), attempts=row.attempts + 1) for row in rows
            ]
            wanted = sorted(x.id for x in messages if x.order is None and x.parent_id is None)
            return IntakeClaim(messages, await self.bodies(wanted) if wanted else {}, _due_of(rows))
        picked = (
            sa.select(m.c.id, m.c.next_attempt_at.label("due_at"), turns.c.due)
            .join_from(m, turns, m.c.id == turns.c.id)
            .with_for_update(of=m, skip_locked=True)
            .cte("picked")
        )
        leased = (
            sa.update(m)
            .where(m.c.id == picked.c.id)
            .values(attempts=m.c.attempts + 1, next_attempt_at=lease_until)
            .returning(*_MESSAGE_COLUMNS, m.c.body, picked.c.due_at, picked.c.due)
            .cte("leased")
        )
        rows = (
            await self.conn.execute(sa.select(leased).order_by(leased.c.due_at, leased.c.id))
        ).all()
        return IntakeClaim(
            [message_from_row(row._mapping) for row in rows],
            {row.id: bytes(row.body) if row.body is not None else None for row in rows},
            _due_of(rows),
        )

    async def finish(
        self,
        message_id: str,
        status: IntakeStatus,
        now: datetime,
        *,
        decisions: Sequence[Decision] = (),
        order: ChannelOrder | None = None,
        error_code: str | None = None,
        error: str | None = None,
        group_id: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "b_id": message_id,
            "status": status.value,
            "decisions": [decision_to_json(d) for d in decisions],
            "error_code": error_code,
            "error": error[:1000] if error else None,
            "finished_at": now if status.final else None,
            "next_attempt_at": next_attempt_at or now,
        }
        if order is not None:
            values["order_json"] = to_json(order)
            values["external_id"] = order.external_id
            values["order_value"] = order.value()
            values["channel_at"] = order.version_time
        if group_id is not None:
            values["reservation_group_id"] = group_id
        if status is IntakeStatus.RETRYING:  # runs again after the new deliveries of its account
            values["lane"] = int(IntakeLane.AGAIN)
        await self.statements.run(_UPDATE_MESSAGE, values)

    async def requeue(
        self,
        message_id: str,
        now: datetime,
        *,
        order: ChannelOrder | None = None,
        decisions: Sequence[Decision] = (),
        statuses: Sequence[IntakeStatus],
        lane: IntakeLane = IntakeLane.AGAIN,
    ) -> bool:
        values: dict[str, Any] = {
            "lane": int(lane),
            "status": IntakeStatus.RECEIVED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "finished_at": None,
            "error_code": None,
            "error": None,
            "decisions": [decision_to_json(d) for d in decisions],
            "order_json": to_json(order) if order is not None else None,
        }
        if order is not None:
            values["external_id"] = order.external_id
            values["order_value"] = order.value()
        result = await self.conn.execute(
            sa.update(intake_messages)
            .where(
                intake_messages.c.id == message_id,
                intake_messages.c.status.in_([s.value for s in statuses]),
            )
            .values(values)
        )
        return result.rowcount == 1

    async def search(
        self,
        *,
        statuses: Sequence[IntakeStatus],
        channel: SalesChannel | None,
        account: str | None,
        limit: int,
        by_impact: bool,
        now: datetime,
    ) -> list[IntakeMessage]:
        query = sa.select(*_MESSAGE_COLUMNS)
        if statuses:
            query = query.where(intake_messages.c.status.in_([s.value for s in statuses]))
        if channel is not None:
            query = query.where(intake_messages.c.channel == channel.value)
        if account is not None:
            query = query.where(intake_messages.c.account == account)
        if by_impact:
            # IntakeMessage.impact in SQL, so the database ranks every message that matches
            # (the order's value plus one, times one plus the hours it has waited).
            query = query.order_by(
                self._impact(now).desc(), intake_messages.c.received_at, intake_messages.c.id
            )
        else:
            query = query.order_by(intake_messages.c.received_at.desc(), intake_messages.c.id)
        rows = (await self.conn.execute(query.limit(limit))).all()
        return [message_from_row(row._mapping) for row in rows]

    def _impact(self, now: datetime) -> sa.ColumnElement[Any]:
        received = intake_messages.c.received_at
        waited: sa.ColumnElement[Any]
        if self.conn.dialect.name == "postgresql":
            since = sa.bindparam("b_now", now, type_=received.type) - received
            waited = sa.func.greatest(sa.func.extract("epoch", since), 0.0)
        else:  # SQLite keeps UTC as naive text, which julianday reads
            naive = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            days = sa.func.julianday(naive) - sa.func.julianday(received)
            waited = sa.func.max(days * 86_400.0, 0.0)
        hours = waited / 3600.0
        value = sa.func.coalesce(intake_messages.c.order_value, 0) + 1
        return value * (1 + hours)

    async def children(self, parent_id: str) -> list[IntakeMessage]:
        rows = (
            await self.conn.execute(
                sa.select(*_MESSAGE_COLUMNS)
                .where(intake_messages.c.parent_id == parent_id)
                .order_by(intake_messages.c.dedupe_key)
            )
        ).all()
        return [message_from_row(row._mapping) for row in rows]


def _put_order(insert: Any) -> Any:
    stmt = insert(channel_orders)
    return stmt.on_conflict_do_update(
        index_elements=[
            channel_orders.c.channel,
            channel_orders.c.account,
            channel_orders.c.external_id,
        ],
        set_={name: stmt.excluded[name] for name in _ORDER_VALUES},
    )


_ORDER_VALUES = ("state", "version_time", "group_id", "message_id", "order_json", "updated_at")
_PUT_ORDER = {"postgresql": _put_order(postgresql.insert), "sqlite": _put_order(sqlite.insert)}
_ORDER = sa.select(channel_orders).where(
    channel_orders.c.channel == sa.bindparam("b_channel"),
    channel_orders.c.account == sa.bindparam("b_account"),
    channel_orders.c.external_id == sa.bindparam("b_external_id"),
)
_ORDER_FOR_UPDATE = _ORDER.with_for_update()


def order_lock_key(channel: SalesChannel, account: str, external_id: str) -> str:
    return f"{channel.value}:{account}:{external_id}"


class ChannelOrderRepository:
    def __init__(self, conn: AsyncConnection, statements: Statements) -> None:
        self.conn = conn
        self.statements = statements

    async def lock(self, channel: SalesChannel, account: str, external_id: str) -> None:
        """Hold the order until the transaction ends, whether ROPOS holds a row of it yet or not:
        two workers (of any replica) never act on one order at once. PostgreSQL: a transaction
        advisory lock on the order's key; SQLite has one writer at a time already."""
        if self.conn.dialect.name != "postgresql":
            return
        await self.statements.first(
            _ORDER_LOCK, {"b_key": order_lock_key(channel, account, external_id)}
        )

    async def get(
        self, channel: SalesChannel, account: str, external_id: str, *, for_update: bool = False
    ) -> HeldOrder | None:
        row = await self.statements.first(
            _ORDER_FOR_UPDATE if for_update else _ORDER,
            {"b_channel": channel.value, "b_account": account, "b_external_id": external_id},
        )
        if row is None:
            return None
        return HeldOrder(
            channel=SalesChannel(row["channel"]),
            account=row["account"],
            external_id=row["external_id"],
            state=OrderState(row["state"]),
            version_time=row["version_time"],
            group_id=row["group_id"],
            message_id=row["message_id"],
            order=from_json(row["order_json"]),
        )

    async def put(
        self,
        order: ChannelOrder,
        state: OrderState,
        group_id: str | None,
        message_id: str,
        now: datetime,
    ) -> None:
        await self.statements.run(
            _PUT_ORDER[self.conn.dialect.name],
            {
                "channel": order.channel.value,
                "account": order.account,
                "external_id": order.external_id,
                "state": state.value,
                "version_time": order.version_time,
                "group_id": group_id,
                "message_id": message_id,
                "order_json": to_json(order.without_contact()),
                "updated_at": now,
            },
        )
