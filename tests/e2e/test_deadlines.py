"""A transfer's deadline and late runs (issue 23 item 6) against a real server and agent, from
the command line: at the deadline the objects not done are CANCELED with the reason, the copy
under way stops and leaves no partial file, the run ends CANCELED, within 2 s of the deadline;
a run that comes due while no server runs is told late, once."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from e2e_support import ServerProcess, launch, readers_of, shutdown, wait_for
from storage_servers import sftp_server

MB = 1024 * 1024
FINAL = ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED")


def ended(server: ServerProcess, transfer_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        transfer = server.api("GET", f"/api/v1/transfers/{transfer_id}").json()
        return transfer if transfer["status"] in FINAL else None

    return dict(wait_for(final, timeout=60))


def slow_transfer(server: ServerProcess, destination: str) -> dict[str, Any]:
    """Two objects through one agent, one at a time: 16 MiB at 1 MiB/s, then a small one;
    due to end within 5 s."""
    server.cli("channel", "set", "*", "*", "--max-active", "1", check=True)
    (server.cwd / "in").mkdir()
    (server.cwd / "in" / "big.bin").write_bytes(os.urandom(16 * MB))
    (server.cwd / "in" / "small.bin").write_bytes(b"small")
    return server.cli_json(
        "submit", "--bandwidth", "1M", "--deadline", "+5s",
        "local:in/big.bin", "local:in/small.bin", destination,
    )  # fmt: skip


def check_ended_at_its_deadline(server: ServerProcess, transfer_id: str) -> None:
    final = ended(server, transfer_id)
    assert final["status"] == "CANCELED"
    assert final["error"].startswith("deadline: not done by ")
    [run] = server.api("GET", f"/api/v1/transfers/{transfer_id}/runs").json()
    late = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["due_at"])
    assert 5 <= late.total_seconds() <= 7, late
    assert run["status"] == "CANCELED"
    objects = server.api("GET", f"/api/v1/transfers/{transfer_id}/outcomes").json()["objects"]
    states = {o["source"]: (o["status"], o["error"]) for o in objects}
    assert states["local:in/small.bin"] == ("CANCELED", "deadline")
    assert states["local:in/big.bin"][0] == "CANCELED"
    assert "Traceback" not in server.log.read_text()


def test_a_deadline_ends_a_slow_local_transfer(start_server) -> None:
    server = start_server("--agents", "1", "--heartbeat", "0.5")
    transfer = slow_transfer(server, "local:out")
    shown = server.cli("status", transfer["id"], check=True).stdout
    assert "  deadline: each run ends 5 s after it was due\n" in shown
    wait_for(lambda: readers_of(server, server.cwd / "in" / "big.bin"), timeout=30)

    check_ended_at_its_deadline(server, transfer["id"])
    out = server.cwd / "out"
    assert not out.exists() or list(out.iterdir()) == []  # no partial file, nothing half-made


def test_a_deadline_ends_a_slow_transfer_to_sftp(start_server, tmp_path: Path) -> None:
    with sftp_server(tmp_path / "sftp") as sftp:
        server = start_server("--agents", "1", "--heartbeat", "0.5")
        response = server.api("POST", "/api/v1/storages", json=sftp.registration("remote"))
        assert response.status_code == 201, response.text
        transfer = slow_transfer(server, "remote:out")

        check_ended_at_its_deadline(server, transfer["id"])
        out = tmp_path / "sftp" / "root" / "out"
        assert not out.exists() or sorted(p.name for p in out.rglob("*")) == []


class Hooks:
    """A webhook receiver on loopback: every body it was posted."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def of(self, event: str) -> list[dict[str, Any]]:
        return [body for body in list(self.bodies) if body["event"] == event]


def test_a_run_due_while_no_server_ran_is_told_late_once(start_server, tmp_path: Path) -> None:
    hooks = Hooks()
    try:
        first = start_server("--agents", "1")
        (first.cwd / "a.txt").write_text("a")
        transfer = first.cli_json(
            "submit", "--at", "+5s", "--late-after", "1s", "--notify", hooks.url,
            "local:a.txt", "local:out",
        )  # fmt: skip
        shown = first.cli("status", transfer["id"], check=True).stdout
        assert "  late: a run not started 1 s after it was due is told late\n" in shown
        first.stop()  # before it is due: no server runs while it comes due and goes late
        due = datetime.fromisoformat(transfer["next_run_at"])
        wait_for(lambda: datetime.now(UTC) > due + timedelta(seconds=1.5), timeout=10)

        again = launch(first.cwd, "--agents", "1")
        try:
            wait_for(lambda: hooks.of("run.finished"), timeout=30)
            wait_for(lambda: hooks.of("run.late"), timeout=10)
            [late] = hooks.of("run.late")
            assert (late["transfer"], late["run"], late["late_after_s"]) == (transfer["id"], 1, 1)
            assert datetime.fromisoformat(late["due_at"]) == due
            assert ended(again, transfer["id"])["status"] == "COMPLETED"
        finally:
            shutdown(again)
    finally:
        hooks.httpd.shutdown()
        hooks.httpd.server_close()
