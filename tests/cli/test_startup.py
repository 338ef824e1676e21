"""What ``ferry`` loads before it does anything: every command pays for its imports, so the
command line itself and ``--help`` load neither the server's stack nor httpx, pydantic or rich."""

from __future__ import annotations

import json
import subprocess
import sys

# Runs the CLI as the ``ferry`` script does, then prints the names of the modules it loaded.
PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "ferry"
{body}
"""

SERVER_STACK = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "fsspec"}
CLIENT_STACK = {"httpx", "httpcore", "pydantic", "pydantic_core", "rich"}


def loaded(body: str, *args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """The standard output of ``body`` run in a new interpreter, and the top-level packages it
    had imported when it exited."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    modules = json.loads(result.stderr.strip().splitlines()[-1])
    return result.stdout, {name.partition(".")[0] for name in modules}


def test_importing_the_command_line_loads_no_server_and_no_client_stack() -> None:
    _, packages = loaded("import ferry.cli.main")
    assert "ferry" in packages
    assert "typer" in packages
    assert packages.isdisjoint(SERVER_STACK | CLIENT_STACK), packages & (
        SERVER_STACK | CLIENT_STACK
    )


def test_help_is_printed_without_the_client_stack() -> None:
    output, packages = loaded("from ferry.cli.main import main\nmain()", "--help")
    for command in ("server", "submit", "status", "ls", "outcomes", "storage", "push"):
        assert command in output
    assert packages.isdisjoint(SERVER_STACK | CLIENT_STACK), packages & (
        SERVER_STACK | CLIENT_STACK
    )
