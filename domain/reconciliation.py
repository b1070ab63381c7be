"""Reconciliation's rules: how one (store, SKU) of ROPOS compares with the WMS's figures, and who
owns the fix. On hand is the WMS's to say, reserved is ROPOS's; a row with movements still on
their way is skipped, and one whose difference has no clear owner is left open for ops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from domain.stock import LevelUpdate, StockLevel
from domain.wms import WmsLevel


class DiscrepancyKind(StrEnum):
    ON_HAND = "ON_HAND"  # the WMS counts other units on hand: its count is taken
    RESERVED = "RESERVED"  # the WMS holds other reserved units: ROPOS's figure is sent
    MISSING_IN_WMS = "MISSING_IN_WMS"  # ROPOS counts stock the WMS keeps no row of
    DEAD_MOVEMENTS = "DEAD_MOVEMENTS"  # movements that never reached the WMS explain it


class DiscrepancyStatus(StrEnum):
    REPAIRED = "REPAIRED"  # set right by its owner's figure
    OPEN = "OPEN"  # no clear owner: for ops
    RESOLVED = "RESOLVED"  # ops looked at it and closed it


@dataclass(frozen=True, slots=True)
class Discrepancy:
    id: str
    run_id: str
    store_id: str
    sku: str
    kind: DiscrepancyKind
    ropos_value: int | None
    wms_value: int | None
    status: DiscrepancyStatus
    resolution: str | None
    detected_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    id: str
    started_at: datetime
    finished_at: datetime | None
    stores: int
    compared: int
    skipped: int
    repaired: int
    open: int
    error: str | None


def differing_skus(ours: Mapping[str, StockLevel], theirs: Mapping[str, WmsLevel]) -> list[str]:
    """The SKUs of a store whose on hand or reserved differ between the two sides, or that only
    one side has: the only rows worth locking to look at closely."""
    return sorted(
        sku
        for sku in set(ours) | set(theirs)
        if sku not in theirs
        or sku not in ours
        or (ours[sku].on_hand, ours[sku].reserved) != (theirs[sku].on_hand, theirs[sku].reserved)
    )


@dataclass(frozen=True, slots=True)
class RowFacts:
    """What is known of one (store, SKU) when it is judged. `ours` is the row as locked (rows
    that differed) or as read (rows that agreed); `gone` says it differed when read and had been
    deleted by the time it was locked."""

    sku: str
    ours: StockLevel | None
    theirs: WmsLevel | None
    differs: bool
    gone: bool = False
    in_flight: bool = False  # movements of the row not yet confirmed by the WMS
    dead_movements: Sequence[str] = ()  # ids of the row's movements the WMS never took
    open_kinds: frozenset[DiscrepancyKind] = frozenset()  # reported before and still open


@dataclass(frozen=True, slots=True)
class Finding:
    kind: DiscrepancyKind
    ropos_value: int | None
    wms_value: int | None
    status: DiscrepancyStatus
    resolution: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do about one row. `compared` False: skipped, left for the next run. `take_count`:
    the WMS's on hand to write (with its sequence when newer than the row's). `send_reserved`:
    ROPOS's reserved units to send the WMS. `accurate`: whether the row's reserved lines count
    as right for stock accuracy (None: the row is not sampled)."""

    compared: bool
    findings: tuple[Finding, ...] = ()
    take_count: LevelUpdate | None = None
    send_reserved: int | None = None
    accurate: bool | None = None


SKIPPED = Verdict(compared=False)


def judge(store_id: str, facts: RowFacts) -> Verdict | None:
    """The verdict on one row; None when there is nothing to judge (dead movements on a row that
    agrees, or a row only ROPOS has, with no stock). A finding still open from an earlier run is
    not reported again."""
    verdict = _judge(store_id, facts)
    if verdict is None or not facts.open_kinds:
        return verdict
    fresh = tuple(
        f
        for f in verdict.findings
        if not (f.status is DiscrepancyStatus.OPEN and f.kind in facts.open_kinds)
    )
    return replace(verdict, findings=fresh)


def _judge(store_id: str, facts: RowFacts) -> Verdict | None:
    if facts.gone or facts.in_flight:
        return SKIPPED
    mine, theirs = facts.ours, facts.theirs
    if facts.dead_movements:
        if not facts.differs:
            return None
        ids = list(facts.dead_movements)
        return Verdict(
            compared=True,
            findings=(
                Finding(
                    DiscrepancyKind.DEAD_MOVEMENTS,
                    mine.reserved if mine else None,
                    theirs.reserved if theirs else None,
                    DiscrepancyStatus.OPEN,
                    f"{len(ids)} movement(s) never reached the WMS ({', '.join(ids[:5])}): "
                    "replay them (wmsMovements, status DEAD).",
                ),
            ),
            accurate=False,
        )
    if theirs is None:
        if mine is None or not (mine.on_hand or mine.reserved):
            return None
        return Verdict(
            compared=True,
            findings=(
                Finding(
                    DiscrepancyKind.MISSING_IN_WMS,
                    mine.on_hand,
                    None,
                    DiscrepancyStatus.OPEN,
                    "The WMS keeps no stock of this SKU here while ROPOS counts some.",
                ),
            ),
            accurate=False,
        )
    if _holds_newer_count(mine, theirs):
        return SKIPPED  # the WMS's figures were read before a count ROPOS has since applied
    return _compare(store_id, facts.sku, mine, theirs)


def _holds_newer_count(mine: StockLevel | None, theirs: WmsLevel) -> bool:
    return (
        mine is not None
        and mine.wms_sequence is not None
        and theirs.sequence is not None
        and mine.wms_sequence > theirs.sequence
    )


def _compare(store_id: str, sku: str, mine: StockLevel | None, theirs: WmsLevel) -> Verdict:
    on_hand = mine.on_hand if mine else 0
    reserved = mine.reserved if mine else 0
    findings: list[Finding] = []
    take_count = None
    send_reserved = None
    if on_hand != theirs.on_hand:
        newer = theirs.sequence is not None and (
            mine is None or mine.wms_sequence is None or theirs.sequence > mine.wms_sequence
        )
        take_count = LevelUpdate(
            store_id, sku, on_hand=theirs.on_hand, sequence=theirs.sequence if newer else None
        )
        findings.append(
            Finding(
                DiscrepancyKind.ON_HAND,
                on_hand,
                theirs.on_hand,
                DiscrepancyStatus.REPAIRED,
                "On hand set to the WMS's count.",
            )
        )
    if reserved != theirs.reserved:
        send_reserved = reserved
        findings.append(
            Finding(
                DiscrepancyKind.RESERVED,
                reserved,
                theirs.reserved,
                DiscrepancyStatus.REPAIRED,
                "ROPOS's reserved units sent to the WMS.",
            )
        )
    return Verdict(
        compared=True,
        findings=tuple(findings),
        take_count=take_count,
        send_reserved=send_reserved,
        accurate=not findings,
    )
