"""Stock accuracy of reserved items: samples of reserved lines that were right or not, taken at
pick time (a short pick) and at reconciliation (the row matched the WMS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class SampleSource(StrEnum):
    PICK = "PICK"  # staff picked the line: found in full, or a short pick
    RECONCILIATION = "RECONCILIATION"  # the line's row compared with the WMS


@dataclass(frozen=True, slots=True)
class AccuracySample:
    """Of `lines` reserved lines of one (store, SKU), `ok` were right. A pick sample names its
    reservation (one sample per reservation, SKU and source); a reconciliation sample names none."""

    store_id: str
    sku: str
    source: SampleSource
    lines: int
    ok: int
    occurred_at: datetime
    reservation_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccuracyCount:
    """Of `lines` reserved lines sampled at one store from one source, `ok` were right."""

    store_id: str
    source: str
    lines: int
    ok: int
