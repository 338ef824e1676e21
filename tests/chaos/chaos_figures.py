"""The figures of the reliability suite: each scenario records what it measured with
``record``, one JSON line per call in the file named by ``FERRY_CHAOS_FIGURES`` (nothing when it
is unset, as under ``make test``). ``make chaos`` runs the suite twice (``FERRY_CHAOS_ROUND`` 1,
then 2) into one file, and write_reliability.py puts both rounds into docs/reliability.md.

A line is ``{"scenario", "round", "figures", "at", "test"}``: ``test`` is the pytest node id of
the test that recorded it, whose docstring (first paragraph) is what the table says holds."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

FIGURES = "FERRY_CHAOS_FIGURES"
ROUND = "FERRY_CHAOS_ROUND"


def record(scenario: str, **figures: object) -> None:
    """Append ``figures`` (JSON values; seconds as floats, counts as ints) for ``scenario``."""
    path = os.environ.get(FIGURES)
    if not path:
        return
    line = {
        "scenario": scenario,
        "round": int(os.environ.get(ROUND, "1")),
        "figures": figures,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "test": current_test(),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def current_test() -> str | None:
    """The node id of the running test (pytest sets ``PYTEST_CURRENT_TEST``: "ID (call)")."""
    running = os.environ.get("PYTEST_CURRENT_TEST")
    return running.rsplit(" ", 1)[0] if running else None
