"""What every scenario shares: timing, interleaved rounds, the printed table and the results
file that ``bench/report.py`` turns into ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# `make bench` gives each invocation a folder of its own: scenarios run by hand meanwhile (in the
# default folder) do not mix their figures into the report.
RESULTS = Path(os.environ.get("FERRY_BENCH_RESULTS") or Path(__file__).parent / "results")
RCLONE = ["rclone", "--config", ""]  # no configuration file: local and http backends need none
GFAL2 = ["/usr/bin/python3", str(Path(__file__).parent / "gfal2_copy.py")]


@dataclass
class Goal:
    """One line of the issue's goals table, with the figure measured against it."""

    goal: str
    measured: str
    met: bool


@dataclass
class Result:
    """A scenario's table (first cell of each row names it), goals and plot bars."""

    scenario: str
    title: str
    setup: str
    columns: list[str]
    rows: list[list[Any]]
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot_label: str = ""
    bars: dict[str, float] = field(default_factory=dict)
    reference: float | None = None  # drawn across the bars: 1 for ratios, else the goal

    def show(self) -> None:
        print(f"{self.title}: {self.setup}")
        first = max(14, *(len(str(row[0])) + 2 for row in self.rows))
        widths = [max(12, len(column) + 2) for column in self.columns[1:]]
        for row in [self.columns, *self.rows]:
            name, *values = (cell(value) for value in row)
            line = (f"{value:>{width}}" for value, width in zip(values, widths, strict=True))
            print(f"{name:<{first}}" + "".join(line))
        for note in self.notes:
            print(note)
        for goal in self.goals:
            print(f"goal: {goal.goal}: {goal.measured} ({'met' if goal.met else 'missed'})")

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.scenario}.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def cell(value: Any) -> str:
    """Seconds and ratios with two decimals (three below 0.1), counts with separators."""
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "—" if value is None else str(value)


def timed(action: Callable[[], object]) -> float:
    # What the previous tool wrote is still being flushed to disk: flushed first, untimed, so
    # that no tool pays for the one before it.
    os.sync()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(command: list[str], **kwargs: Any) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kwargs)


def rounds(
    tools: dict[str, Callable[[int], object]],
    runs: int,
    cleanup: Callable[[], object] = lambda: None,
) -> dict[str, list[float]]:
    """Time each tool ``runs`` times, interleaved (one of each per round, in a rotating order)
    so that the noise of a shared machine hits every tool alike; ``cleanup`` runs untimed
    after each copy."""
    times: dict[str, list[float]] = {name: [] for name in tools}
    names = list(tools)
    for i in range(runs):
        # Each round starts one tool later: no tool always follows the same one (a tool that
        # leaves the disk or the caches busy slows whichever runs next).
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(timed(lambda action=tools[name], i=i: action(i)))
            cleanup()
    return times


def comparison(
    times: dict[str, list[float]], ferry: Iterable[str] = ("ferry",)
) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of median, min and max seconds, and each Ferry variant's ratio to
    every tool (below 1: Ferry is faster)."""
    ferry = list(ferry)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio_names = ["ferry ÷ tool"] if ferry == ["ferry"] else [f"{f} ÷ tool" for f in ferry]
    columns = ["tool", "median s", "min s", "max s", *ratio_names]
    rows = [
        [
            name,
            medians[name],
            min(values),
            max(values),
            *(medians[f] / medians[name] for f in ferry),
        ]
        for name, values in times.items()
    ]
    return columns, rows


def timing_result(
    scenario: str, title: str, setup: str, times: dict[str, list[float]], ferry: tuple[str, ...]
) -> Result:
    """The table of a timed comparison, with each Ferry variant's ratio to each peer as bars."""
    columns, rows = comparison(times, ferry)
    bars = {
        f"{variant} ÷ {name}" if len(ferry) > 1 else name: median_ratio(times, variant, name)
        for variant in ferry
        for name in times
        if name not in ferry
    }
    label = "ferry ÷ tool (below 1: ferry is faster)"
    return Result(scenario, title, setup, columns, rows, bars=bars, plot_label=label, reference=1)


def gfal2_available() -> bool:
    """Whether Debian's python3-gfal2 is installed (it lives outside the venv)."""
    found = subprocess.run(["/usr/bin/python3", "-c", "import gfal2"], capture_output=True)
    return found.returncode == 0


def median_ratio(times: dict[str, list[float]], ferry: str, tool: str) -> float:
    return statistics.median(times[ferry]) / statistics.median(times[tool])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
