"""An operator who starts an older Ferry on a database a newer one has migrated reads one line
and the server does not start (no traceback, nothing served on a schema it would misread)."""

from __future__ import annotations

import sqlite3
import subprocess

from e2e_support import FERRY, free_port, launch, shutdown


def test_a_server_on_a_database_from_a_later_ferry_refuses_in_one_line(tmp_path) -> None:
    work = tmp_path / "work"
    shutdown(launch(work, "--agents", "0"))  # made and migrated by this Ferry
    with sqlite3.connect(work / ".ferry" / "ferry.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099_from_later'")

    port = str(free_port())
    result = subprocess.run(
        [*FERRY, "server", "--port", port, "--agents", "0"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: the database is at schema revision 0099_from_later")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
