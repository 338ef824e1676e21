"""The benchmark scripts use the code's own pieces (the store's row builders, the client's
schemas): each must still import and parse its arguments, or `make bench` breaks halfway."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


def scenarios_of_make_bench() -> list[str]:
    """The scenarios ``make bench`` runs, as the Makefile lists them."""
    makefile = (BENCH.parent / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if line.startswith("SCENARIOS :="))
    return line.split(":=")[1].split()


SCENARIOS = scenarios_of_make_bench()


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_scenario_starts_and_answers_help(name: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(BENCH / f"{name}.py"), run_name="__main__")
    assert ended.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_make_bench_runs_every_scenario_script() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py")}
    helpers = {"ferry_process", "scores", "gfal2_copy", "report"}
    assert sorted(scripts - helpers) == sorted(SCENARIOS)
