"""The benchmark scripts use the code's own pieces (the store's row builders, the client's
schemas): each must still import and parse its arguments, or `make bench` breaks halfway."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


def scenarios_of_make(variable: str) -> list[str]:
    """The scenarios a Makefile variable lists: ``SCENARIOS`` (``make bench``) or
    ``LONG_SCENARIOS`` (each with a target of its own)."""
    makefile = (BENCH.parent / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if line.startswith(f"{variable} :="))
    return line.split(":=")[1].split()


SCENARIOS = scenarios_of_make("SCENARIOS")
LONG_SCENARIOS = scenarios_of_make("LONG_SCENARIOS")


@pytest.mark.parametrize("name", SCENARIOS + LONG_SCENARIOS)
def test_a_scenario_starts_and_answers_help(name: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(BENCH / f"{name}.py"), run_name="__main__")
    assert ended.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_make_runs_every_scenario_script() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py")}
    helpers = {"ferry_process", "scores", "gfal2_copy", "report"}
    assert sorted(scripts - helpers) == sorted(SCENARIOS + LONG_SCENARIOS)
    assert not set(SCENARIOS) & set(LONG_SCENARIOS)
