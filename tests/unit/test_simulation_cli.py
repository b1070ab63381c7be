"""`ropos simulate`'s options: what it refuses before it starts (a run takes minutes: nothing
that could only fail at its end is left to fail there)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gateway.cli import main

# A day short enough that a check gone missing fails the test in seconds rather than running the
# default chain's day.
TINY = ["--stores", "1", "--shoppers", "0", "--hours", "1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stores", "29"], "--stores is 1 to 28"),
        (["--stores", "0"], "--stores is 1 to 28"),
        (["--hours", "20"], "hours must be more than 0 and at most 18"),
        (["--shoppers", "-5"], "shoppers must be 0 or more"),
        ([*TINY, "--plot", "/nonexistent-folder/day.png"], "--plot /nonexistent-folder/day.png:"),
        ([*TINY, "--plot", "-", "--json", "/nonexistent-folder/a.json"], "--json /nonexistent-fol"),
    ],
)
def test_simulate_refuses_what_it_cannot_simulate(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["simulate", *args])
    assert message in str(stopped.value.code)
    assert capsys.readouterr().out == ""  # refused before the run began


def test_simulate_without_matplotlib_asks_for_it_or_for_no_plot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "matplotlib" else found(name, *rest),
    )
    with pytest.raises(SystemExit) as stopped:
        main(["simulate", *TINY, "--plot", str(tmp_path / "day.png")])
    assert "needs matplotlib (pip install 'ropos[sim]'), or --plot - for none" in str(
        stopped.value.code
    )
    assert not (tmp_path / "day.png").exists()
