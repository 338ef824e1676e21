"""The audit trail against a real server (issue 19, acceptance 5): ``ferry audit verify``
passes on an untouched trail and names the first bad record after a row of the database file
is edited, or removed, with the ``sqlite3`` command line while the server runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

SQLITE3 = shutil.which("sqlite3")


def sqlite3(database: Path, statement: str) -> str:
    assert SQLITE3 is not None, "the sqlite3 command line is needed"
    result = subprocess.run(
        [SQLITE3, "-cmd", ".timeout 5000", str(database), statement],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def records(server, *args: str) -> list[dict[str, Any]]:
    return list(server.cli_json("audit", "ls", *args))


def test_verify_passes_untouched_and_names_an_edited_then_a_removed_record(
    start_server,
) -> None:
    server = start_server()
    database = server.cwd / ".ferry" / "ferry.db"
    server.cli("scope", "set", "physics", "--weight", "2", check=True)
    server.cli("user", "add", "ursula", "--role", "WRITE", "--scope", "physics", check=True)
    server.cli("token", "create", "ursula", check=True)
    server.cli("user", "rm", "ursula", check=True)

    trail = records(server)
    mine = [r for r in trail if r["actor"] == "admin"]
    assert [(r["action"], r["status"]) for r in mine] == [
        ("PUT /api/v1/scopes/{name}", 200),
        ("POST /api/v1/users", 201),
        ("POST /api/v1/tokens", 201),
        ("DELETE /api/v1/users/{name}", 204),
    ]
    assert {r["address"] for r in mine} == {"127.0.0.1"}
    assert mine[1]["target"] == "ursula"
    assert records(server, "--user", "nobody") == []
    assert len(records(server, "--since", "1h")) == len(trail)
    table = server.cli("audit", "ls", check=True).stdout
    assert "DELETE /api/v1/users/{name}" in table
    assert "name=ursula" in table

    whole = server.cli("audit", "verify")
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.startswith(f"audit trail whole: {len(trail)} records, head ")

    edited = mine[1]["seq"]
    sqlite3(database, f"UPDATE audit SET actor = 'mallory' WHERE seq = {edited}")
    assert sqlite3(database, f"SELECT actor FROM audit WHERE seq = {edited}") == "mallory"
    bad = server.cli("audit", "verify")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"error: audit record {edited} is bad:"
        f" record {edited} was changed: its hash does not match its contents"
    ]
    check = json.loads(server.cli("audit", "verify", "--json").stdout)
    assert (check["ok"], check["first_bad"], check["records"]) == (False, edited, edited - 1)

    sqlite3(database, f"UPDATE audit SET actor = 'admin' WHERE seq = {edited}")
    assert server.cli("audit", "verify").returncode == 0  # the chain is its contents

    removed = mine[2]["seq"]
    sqlite3(database, f"DELETE FROM audit WHERE seq = {removed}")
    gone = server.cli("audit", "verify")
    assert gone.returncode == 1
    assert gone.stderr.strip() == (
        f"error: audit record {removed} is bad:"
        f" record {removed} is missing: removed (the next one is {removed + 1})"
    )
    assert server.token not in database.read_bytes().decode(errors="replace")
