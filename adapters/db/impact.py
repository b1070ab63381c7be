"""Dead letters ranked by impact in SQL, as the domain computes it (Delivery.impact,
Queued.impact), so the database ranks every row that matches before the list is cut."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from adapters.db.tables import webhook_deliveries, wms_outbound
from domain.webhooks import DEFAULT_EVENT_IMPACT, IMPACT_OF_EVENT
from domain.wms import IMPACT_OF_KIND


def hours_since(column: sa.Column[Any], now: datetime, dialect: str) -> sa.ColumnElement[Any]:
    """Hours from the column's time to now, never below 0."""
    if dialect == "postgresql":
        since = sa.bindparam("b_now", now, type_=column.type) - column
        seconds: sa.ColumnElement[Any] = sa.func.greatest(sa.func.extract("epoch", since), 0.0)
    else:  # SQLite keeps UTC as naive text, which julianday reads
        naive = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        days = sa.func.julianday(naive) - sa.func.julianday(column)
        seconds = sa.func.max(days * 86_400.0, 0.0)
    return seconds / 3600.0


def delivery_impact(now: datetime, dialect: str) -> sa.ColumnElement[Any]:
    """Delivery.impact: the event's weight times one plus the hours since it was queued."""
    d = webhook_deliveries.c
    weight = sa.case(
        {event: weight for event, weight in IMPACT_OF_EVENT.items()},
        value=d.event_type,
        else_=DEFAULT_EVENT_IMPACT,
    )
    return weight * (1 + hours_since(d.created_at, now, dialect))


def movement_impact(now: datetime, dialect: str) -> sa.ColumnElement[Any]:
    """Queued.impact: units (at least 1) times the kind's weight, times one plus the hours
    since it happened."""
    m = wms_outbound.c
    weight = sa.case(
        {kind.value: weight for kind, weight in IMPACT_OF_KIND.items()}, value=m.kind, else_=1
    )
    units = sa.case((sa.func.abs(m.quantity) > 1, sa.func.abs(m.quantity)), else_=1)
    return units * weight * (1 + hours_since(m.occurred_at, now, dialect))
