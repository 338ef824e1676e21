"""Schedules against a real server and its agents, on the real clock."""

from __future__ import annotations

import time
from datetime import datetime

from e2e_support import launch, shutdown, wait_for


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def runs(server, transfer_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(server.cli_json("runs", transfer_id))


def test_an_at_transfer_starts_within_a_second_of_its_due_time(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    (server.cwd / "a.txt").write_text("a")
    transfer = server.cli_json("submit", "--at", "+3s", "local:a.txt", "local:out")
    assert transfer["status"] == "STANDBY"

    (run,) = wait_for(
        lambda: [r for r in runs(server, transfer["id"]) if r["finished_at"]], timeout=30
    )

    assert at(run["due_at"]) == at(transfer["next_run_at"])
    assert 0 <= (at(run["started_at"]) - at(run["due_at"])).total_seconds() <= 1
    assert server.cli_json("status", transfer["id"])["status"] == "COMPLETED"


def test_every_minute_twice_then_done(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    (server.cwd / "a.txt").write_text("a")
    args = ["--every", "minute", "--count", "2", "local:a.txt", "local:out"]
    transfer = server.cli_json("submit", *args)

    done = wait_for(
        lambda: (
            (t := server.cli_json("status", transfer["id"]))["status"] == "COMPLETED"
            and t["runs"] == 2
        ),
        timeout=100,
        interval=0.5,
    )
    assert done
    first, second = runs(server, transfer["id"])
    apart = (at(second["started_at"]) - at(first["started_at"])).total_seconds()
    assert 59 <= apart <= 61
    assert [first["status"], second["status"]] == ["COMPLETED", "COMPLETED"]
    assert second["objects"]["skipped"] == 1  # overwrite=never: the file from run 1 is there
    final = server.cli_json("status", transfer["id"])
    assert final["next_run_at"] is None


def test_an_outage_coalesces_into_one_run_then_the_schedule_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cwd = tmp_path / "work"
    server = launch(cwd)
    try:
        (cwd / "a.txt").write_text("a")
        transfer = server.cli_json(
            "submit", "--every", "minute", "--start", "+3s", "local:a.txt", "local:out"
        )
        first_due = at(transfer["next_run_at"])
        wait_for(lambda: len(runs(server, transfer["id"])) == 1, timeout=30)
        wait_until(first_due.timestamp() + 30)
        server.stop()  # down before the occurrence at +60 s, and through the one at +120 s
    finally:
        shutdown(server)
    wait_until(first_due.timestamp() + 150)  # restarted two minutes later

    server = launch(cwd)
    restarted = time.time()
    try:
        second = wait_for(lambda: len(r := runs(server, transfer["id"])) >= 2 and r[1], timeout=30)
        assert second["occurrences"] == 2  # the ones due at +60 s and +120 s, in one run
        assert (at(second["due_at"]) - first_due).total_seconds() == 60
        assert at(second["started_at"]).timestamp() - restarted <= 2
        third = wait_for(lambda: len(r := runs(server, transfer["id"])) >= 3 and r[2], timeout=60)
        assert (at(third["due_at"]) - first_due).total_seconds() == 180
        assert 0 <= (at(third["started_at"]) - at(third["due_at"])).total_seconds() <= 1
    finally:
        shutdown(server)


def wait_until(timestamp: float) -> None:
    """The scenario itself needs the wall clock to move: sleep until ``timestamp``."""
    time.sleep(max(0.0, timestamp - time.time()))
