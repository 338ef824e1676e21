"""``ferry`` loads a command's module only when that command runs: the table of commands in
``ferry.cli.main`` must name every command the modules register, and nothing else."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import typer

import ferry.cli
from ferry.cli.main import COMMANDS

PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "ferry"
from ferry.cli.main import main
main()
"""


def registered() -> dict[str, str]:
    """Every top-level command each module of ``ferry.cli`` registers, and that module."""
    found: dict[str, str] = {}
    for module in pkgutil.iter_modules(ferry.cli.__path__):
        loaded = importlib.import_module(f"ferry.cli.{module.name}")
        if not hasattr(loaded, "register"):
            continue
        app = typer.Typer()
        loaded.register(app)
        group = typer.main.get_group(app)
        for name in group.commands:
            assert name not in found, f"{name} registered by {found.get(name)} and {module.name}"
            found[name] = module.name
    return found


def test_the_table_names_every_command_and_its_module() -> None:
    assert registered() == COMMANDS


def test_a_command_loads_its_own_module_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "schedule", "preview", "--every", "day", "--count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 2  # the two occurrences
    modules = set(json.loads(result.stderr.strip().splitlines()[-1]))
    commands = {name for name in modules if name.startswith("ferry.cli.")}
    assert commands == {"ferry.cli.main", "ferry.cli.common", "ferry.cli.schedules"}, commands


def test_an_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "sumbit"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "No such command 'sumbit'" in result.stderr


def test_agent_pause_manages_an_agent_and_agent_alone_runs_one() -> None:
    shown = subprocess.run(
        [sys.executable, "-c", PROBE, "agent", "pause", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Usage: ferry agent pause [OPTIONS] {name}")
    daemon = subprocess.run(
        [sys.executable, "-c", PROBE, "agent", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--secret" in daemon.stdout
