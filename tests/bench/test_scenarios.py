"""The benchmark scripts use the code's own pieces (the store's row builders, the client's
schemas): each must still import and parse its arguments, or `make bench` breaks halfway."""

from __future__ import annotations

import runpy
import sqlite3
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
def test_a_scenario_starts_and_answers_help(name: str, monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(BENCH / f"{name}.py"), run_name="__main__")
    assert ended.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_make_runs_every_scenario_script() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py")}
    helpers = {"ferry_process", "scores", "gfal2_copy", "report", "sqlite_replay"}
    assert sorted(scripts - helpers) == sorted(SCENARIOS + LONG_SCENARIOS)
    assert not set(SCENARIOS) & set(LONG_SCENARIOS)


async def test_sqlite_own_work_is_the_store_statements_run_again(tmp_path, monkeypatch) -> None:
    # bench/chunk_store.py's SQLite share: what the store ran, run again through sqlite3 on a
    # copy of the database as it was before, ends with the same rows.
    monkeypatch.syspath_prepend(str(BENCH))
    chunk_store = __import__("chunk_store")

    through_store, through_sqlite = await chunk_store.one_round(tmp_path, 1000)

    assert all(0 < own < spent for own, spent in zip(through_sqlite, through_store, strict=True))
    with sqlite3.connect(tmp_path / "before" / "bench.db") as replayed:
        assert replayed.execute("SELECT count(*) FROM outcomes").fetchone() == (1000,)
        assert replayed.execute("SELECT count(*) FROM tasks WHERE state = 'DONE'").fetchone() == (
            2,
        )
