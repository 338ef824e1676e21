"""The plain commands against a real server: they answer with the server's own JSON and load
neither httpx nor pydantic to do it, nor rich unless they print a table.

Pydantic is allowed in only where the command-line library itself requires it (typer 0.29 and
later coerce every parameter through it; the lock holds typer below, requirements/constraints.txt
says why): then it is typer's cost, not Ferry's, and `make test-latest` still passes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires
from typing import Any

import pytest
from e2e_support import ServerProcess

PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "ferry"
from ferry.cli.main import main
main()
"""

TYPER_NEEDS_PYDANTIC = any(re.match(r"pydantic\b", r) for r in requires("typer") or [])
PYDANTIC = set() if TYPER_NEEDS_PYDANTIC else {"pydantic", "pydantic_core"}
HEAVY = {"httpx", "httpcore", "fastapi", "sqlalchemy", "fsspec", *PYDANTIC}


def probe(server: ServerProcess, *args: str) -> tuple[str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=server.cwd,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stderr.strip().splitlines()[-1])
    heavy_of_ours = ("ferry.server", "ferry.client.sync", "ferry.store", "ferry.engine")
    assert not [name for name in modules if name.startswith(heavy_of_ours)]
    return result.stdout, {name.partition(".")[0] for name in modules}


@pytest.fixture(scope="module")
def done(module_server: ServerProcess) -> dict[str, Any]:
    """A finished transfer to look at."""
    (module_server.cwd / "a.txt").write_text("hello")
    return dict(module_server.cli_json("submit", "--wait", "local:a.txt", "local:startup"))


def test_status_as_json_is_the_servers_answer(module_server, done) -> None:
    output, packages = probe(module_server, "status", done["id"], "--json")
    answer = module_server.api("GET", f"/api/v1/transfers/{done['id']}").json()
    assert json.loads(output) == answer
    assert packages.isdisjoint(HEAVY | {"rich"}), packages & (HEAVY | {"rich"})


def test_status_for_a_person_names_the_verdict(module_server, done) -> None:
    output, packages = probe(module_server, "status", done["id"])
    assert output.splitlines()[0] == f"{done['id']}  COMPLETED  (file)"
    assert "objects: 1 total, 1 done, 0 skipped, 0 failed, 0 canceled; 5 bytes" in output
    assert packages.isdisjoint(HEAVY | {"rich"}), packages & (HEAVY | {"rich"})


@pytest.mark.parametrize(
    "args",
    [
        ("ls", "--json"),
        ("runs", "{id}", "--json"),
        ("outcomes", "{id}", "--json"),
        ("agents", "--json"),
        ("storage", "ls", "--json"),
    ],
)
def test_plain_lists_print_json_without_the_client_stack(module_server, done, args) -> None:
    output, packages = probe(module_server, *(a.format(id=done["id"]) for a in args))
    assert json.loads(output)  # something listed: the transfer, its run, object, agents, local
    assert packages.isdisjoint(HEAVY | {"rich"}), packages & (HEAVY | {"rich"})


def test_a_table_loads_rich_and_nothing_heavier(module_server, done) -> None:
    output, packages = probe(module_server, "ls")
    assert done["id"][:8] in output  # tables show 8 characters of an id
    assert "COMPLETED" in output
    assert "rich" in packages
    assert packages.isdisjoint(HEAVY), packages & HEAVY


def test_submit_and_wait_into_a_pipe_loads_neither_the_client_stack_nor_rich(module_server) -> None:
    (module_server.cwd / "w.txt").write_text("waited")
    output, packages = probe(
        module_server, "submit", "--wait", "local:w.txt", "local:startup-wait", "--json"
    )
    ended = json.loads(output)
    assert ended["status"] == "COMPLETED"
    assert ended == module_server.api("GET", f"/api/v1/transfers/{ended['id']}").json()
    assert packages.isdisjoint(HEAVY | {"rich"}), packages & (HEAVY | {"rich"})


def test_watch_follows_the_stream_without_the_client_stack(module_server, done) -> None:
    output, packages = probe(module_server, "watch", done["id"][:8], "--json")
    events = [json.loads(line) for line in output.splitlines()]
    assert events[-1] == events[-1] | {"event": "transfer", "status": "COMPLETED"}
    assert packages.isdisjoint(HEAVY), packages & HEAVY
