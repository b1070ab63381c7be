"""What `ropos simulate` prints and draws: the parameters, the day's KPIs (as the `kpis` query
answered) beside the seed's targets, the channels, the worst stores, what happened in the world,
and a PNG of the figures hour by hour."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.simulate import Outcome
from services.simulation import Parameters

WORST = 5


def _pct(rate: float | None, digits: int = 1) -> str:
    return "-" if rate is None else f"{100 * rate:.{digits}f} %"


def _min(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "NOT MET")


def json_text(outcome: Outcome) -> str:
    """The run as `--json` writes it: the same seed gives the same bytes (keys sorted, no wall
    clock in it)."""
    return json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n"


def header(p: Parameters) -> str:
    """Printed before the run starts: what is simulated."""
    return "\n".join(
        [
            f"ropos simulate: {p.stores} stores, {p.shoppers} shoppers, {p.day} from "
            f"{p.opens:%H:%M} for {p.hours:g} h ({p.timezone}), seed {p.seed}",
            "",
            "Parameters",
            *_columns([(f"  {name}", value) for name, value in p.described()]),
            "",
        ]
    )


def text(outcome: Outcome, took_seconds: float, plot: str | None) -> str:
    lines = [
        *_headline(outcome.kpis),
        "",
        *_details(outcome.kpis),
        "",
        *_channels(outcome.kpis),
        "",
        *_worst(outcome.kpis),
        "",
        "What happened in the world (the simulation's own counts)",
        *_columns([(f"  {what}", f"{n:,}") for what, n in outcome.happened.items()]),
        "",
    ]
    if plot:
        lines.append(f"Plot of the day by hour: {plot}")
    lines.append(f"Took {took_seconds:.0f} s (wall clock).")
    return "\n".join(lines)


def _columns(rows: Sequence[tuple[str, str]]) -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [f"{name:<{width}}  {value}" for name, value in rows]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    shown = [header, *rows]
    return [
        (
            "  "
            + "  ".join(
                f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}"
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        ).rstrip()
        for row in shown
    ]


def _headline(kpis: dict[str, Any]) -> list[str]:
    targets = kpis["targets"]
    success, wait = kpis["reservationSuccess"], kpis["pickupWait"]
    accuracy = kpis["stockAccuracy"]["overall"]["rate"]
    rows = [
        ("KPI", "figure", "target", ""),
        (
            "reservation success rate (where stock existed)",
            _pct(success["rateWhereStockExisted"], 2),
            _pct(targets["reservationSuccessRate"]),
            _met(success["met"]),
        ),
        (
            "average pickup wait (check-in to collected)",
            _min(wait["meanSeconds"]),
            f"< {_min(targets['pickupWaitSeconds'])}",
            _met(wait["meanWithinTarget"]),
        ),
        (
            "stock accuracy of reserved items",
            _pct(accuracy, 2),
            _pct(targets["stockAccuracy"]),
            _met(None if accuracy is None else accuracy >= targets["stockAccuracy"]),
        ),
    ]
    return [
        f"The day's KPIs (the kpis query, {kpis['since']} to {kpis['until']})",
        *_table(rows[0], rows[1:]),
    ]


def _details(kpis: dict[str, Any]) -> list[str]:
    s, e = kpis["reservationSuccess"], kpis["endings"]
    ready, wait, held = kpis["timeToReady"], kpis["pickupWait"], kpis["readyToCollected"]
    accuracy = kpis["stockAccuracy"]
    return _columns(
        [
            (
                "  reserve attempts",
                f"{s['asked']:,}: reserved {s['reserved']:,}, out of stock {s['outOfStock']:,}, "
                f"over a limit {s['limitExceeded']:,}, bad input {s['badInput']:,}, "
                f"technical failures {s['technicalFailures']:,} (of all: {_pct(s['rate'])})",
            ),
            (
                "  time to ready",
                _durations(ready) + f"; within target {_pct(ready['shareWithinTarget'])}",
            ),
            ("  pickup wait", _durations(wait)),
            ("  ready to collected", _durations(held)),
            (
                "  endings",
                f"collected {e['collected']:,}, cancelled {e['cancelled']:,}, expired "
                f"{e['expired']:,} (no-shows {e['noShows']:,}: {_pct(e['noShowRate'])} of those "
                f"made ready)",
            ),
            (
                "  picks",
                f"{e['picked']:,} picked, {e['shortPicked']:,} short ({_pct(e['shortPickRate'], 2)})",
            ),
            (
                "  stock accuracy",
                f"at pick {_accuracy(accuracy['pick'])}, at reconciliation "
                f"{_accuracy(accuracy['reconciliation'])}",
            ),
        ]
    )


def _durations(d: dict[str, Any]) -> str:
    return (
        f"mean {_min(d['meanSeconds'])}, p50 {_min(d['p50Seconds'])}, "
        f"p90 {_min(d['p90Seconds'])} (n {d['count']:,})"
    )


def _accuracy(a: dict[str, Any]) -> str:
    return f"{_pct(a['rate'], 2)} of {a['lines']:,} lines"


def _figure_row(name: str, f: dict[str, Any], accuracy: float | None) -> list[str]:
    s, wait, ready, e = f["reservationSuccess"], f["pickupWait"], f["timeToReady"], f["endings"]
    return [
        name,
        f"{s['asked']:,}",
        _pct(s["rateWhereStockExisted"]),
        _pct(s["rate"]),
        _min(ready["p50Seconds"]),
        _min(wait["meanSeconds"]),
        _min(wait["p90Seconds"]),
        _pct(e["noShowRate"]),
        _pct(accuracy),
    ]


HEADER = ["", "asked", "success", "of all", "ready p50", "wait", "wait p90", "no-shows", "accuracy"]


def _channels(kpis: dict[str, Any]) -> list[str]:
    rows = [_figure_row(c["channel"] or "(none)", c["figures"], None) for c in kpis["perChannel"]]
    return [
        "Per channel (success: where stock existed; wait: mean)",
        *_table(["channel", *HEADER[1:]], rows),
    ]


def _worst(kpis: dict[str, Any]) -> list[str]:
    accuracy = {s["storeId"]: s["overall"]["rate"] for s in kpis["stockAccuracy"]["perStore"]}

    def success(store: dict[str, Any]) -> float:
        rate = store["figures"]["reservationSuccess"]["rateWhereStockExisted"]
        return 1.0 if rate is None else float(rate)

    def wait(store: dict[str, Any]) -> float:
        return float(store["figures"]["pickupWait"]["meanSeconds"] or 0)

    stores = kpis["perStore"]
    by_success = sorted(stores, key=lambda s: (success(s), s["storeId"]))[:WORST]
    by_wait = sorted(stores, key=lambda s: (-wait(s), s["storeId"]))[:WORST]
    return [
        f"Worst stores: the {WORST} lowest success rates, then the {WORST} longest pickup waits",
        *_table(
            ["store", *HEADER[1:]],
            [
                _figure_row(s["storeId"], s["figures"], accuracy.get(s["storeId"]))
                for s in by_success
            ]
            + [["", *[""] * (len(HEADER) - 1)]]
            + [
                _figure_row(s["storeId"], s["figures"], accuracy.get(s["storeId"])) for s in by_wait
            ],
        ),
    ]


# --- the plot ----------------------------------------------------------------------------------


def plot(outcome: Outcome, path: Path) -> None:
    """Six panels over the day by hour. On the left the seed's three KPIs, each with its target:
    the success rate, the pickup wait and the stock accuracy of reserved items; on the right
    what explains them: reserve attempts and their refusals, time to ready, how reservations
    ended."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = outcome.hourly
    targets = outcome.kpis["targets"]
    x = list(range(len(hours)))
    labels = [h["hour"] for h in hours]
    figure, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    figure.suptitle(
        f"ropos simulate: {outcome.params.stores} stores, {outcome.params.shoppers} shoppers, "
        f"seed {outcome.params.seed} (each point: the hour ending then)"
    )
    _rate_panel(
        axes[0][0],
        x,
        [h["successRate"] for h in hours],
        targets["reservationSuccessRate"],
        "reservation success rate (%)\n(where stock existed)",
    )
    _minutes_panel(
        axes[1][0],
        x,
        hours,
        (("waitMeanSeconds", "mean"), ("waitP90Seconds", "p90")),
        "pickup wait (min)\n(check-in to collected)",
        targets["pickupWaitSeconds"] / 60,
    )
    _rate_panel(
        axes[2][0],
        x,
        [h["stockAccuracy"] for h in hours],
        targets["stockAccuracy"],
        "stock accuracy of\nreserved items (%)",
    )
    attempts = axes[0][1]
    reserved = [h["reserved"] for h in hours]
    short = [h["outOfStock"] for h in hours]
    other = [h["asked"] - h["reserved"] - h["outOfStock"] for h in hours]
    attempts.bar(x, reserved, color="#9ecae1", label="reserved")
    attempts.bar(x, short, bottom=reserved, color="#fdae6b", label="out of stock")
    tops = [r + s for r, s in zip(reserved, short, strict=True)]
    attempts.bar(x, other, bottom=tops, color="#de2d26", label="over a limit, bad input, failures")
    attempts.set_ylabel("reserve attempts per hour")
    attempts.legend(loc="upper left", fontsize=8)
    _minutes_panel(
        axes[1][1],
        x,
        hours,
        (("readyP50Seconds", "p50"), ("readyP90Seconds", "p90")),
        "time to ready (min)",
        None,
    )
    ended = axes[2][1]
    ended.bar(
        [i - 0.2 for i in x],
        [h["collected"] for h in hours],
        0.4,
        label="collected",
        color="#74c476",
    )
    ended.bar(
        [i + 0.2 for i in x], [h["expired"] for h in hours], 0.4, label="expired", color="#fd8d3c"
    )
    ended.plot(x, [h["noShows"] for h in hours], "o-", color="#a50f15", label="of them no-shows")
    ended.set_ylabel("reservations ended per hour")
    ended.legend(loc="upper left", fontsize=8)
    for axis in axes[2]:
        axis.set_xticks(x, labels, rotation=60, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(figure)


def _percent(rate: float | None) -> float:
    return float("nan") if rate is None else 100 * rate


def _minutes(seconds: float | None) -> float:
    return float("nan") if seconds is None else seconds / 60


def _rate_panel(
    axis: Any, x: list[int], rates: list[float | None], target: float, label: str
) -> None:
    """A rate hour by hour beside its target; the axis starts low enough to show the worst
    hour, and never higher than 5 points under the target."""
    shown = [_percent(r) for r in rates]
    lowest = min([v for v in shown if v == v] + [100 * target])  # v == v: not NaN
    axis.plot(x, shown, "o-", color="#08519c", label="the hour")
    axis.axhline(100 * target, ls="--", color="grey", label=f"target {100 * target:g} %")
    axis.set_ylim(min(100 * target - 5, lowest - 1), 100.5)
    axis.set_ylabel(label)
    axis.legend(loc="lower left", fontsize=8)


def _minutes_panel(
    axis: Any,
    x: list[int],
    hours: list[dict[str, Any]],
    series: tuple[tuple[str, str], ...],
    label: str,
    target: float | None,
) -> None:
    for (key, name), style in zip(series, ("o-", "s--"), strict=False):
        axis.plot(x, [_minutes(h[key]) for h in hours], style, label=name)
    if target is not None:
        axis.axhline(target, ls="--", color="grey", label="target (mean)")
    axis.set_ylabel(label)
    axis.set_ylim(bottom=0)
    axis.legend(loc="upper left", fontsize=8)
