"""Schedules against a real server and its agents, on the real clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from e2e_support import launch, shutdown, wait_for
from sqlalchemy import create_engine, select, update

from ferry.store import tables as t


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def runs(server, transfer_id: str) -> list[dict]:
    return list(server.cli_json("runs", transfer_id))


def test_an_at_transfer_starts_within_a_second_of_its_due_time(start_server) -> None:
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


def test_status_says_the_schedule_and_the_next_run_in_the_readers_zone(start_server) -> None:
    server = start_server()
    later = server.cli_json("submit", "--at", "2030-01-01T00:00:00Z", "local:a.txt", "local:out")

    shown = server.cli("status", later["id"][:8], "--tz", "Asia/Tokyo", check=True).stdout

    assert "  schedule: once, at 2030-01-01 09:00:00 JST\n" in shown
    assert "  next run: 2030-01-01 09:00:00 JST\n" in shown


def test_every_minute_twice_then_done(start_server) -> None:
    server = start_server()
    (server.cwd / "a.txt").write_text("a")
    args = ["--every", "minute", "--count", "2", "local:a.txt", "local:out"]
    transfer = server.cli_json("submit", *args)
    shown = server.cli("status", transfer["id"][:8], "--tz", "Asia/Tokyo", check=True).stdout
    assert "  schedule: every minute in UTC, from " in shown
    assert " JST, 2 times\n" in shown

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
    # Run 2 is due one minute after run 1 was; when it starts late, its lateness and the due
    # loop's own lines in the server's log say why (the server's clock is the only one read).
    late = (at(second["started_at"]) - at(second["due_at"])).total_seconds()
    why = [line for line in server.log.read_text().splitlines() if "due loop" in line]
    assert 59 <= apart <= 61, f"run 2 started {late:.1f} s after its due time: {why}"
    assert 0 <= late <= 1
    assert [first["status"], second["status"]] == ["COMPLETED", "COMPLETED"]
    assert second["objects"]["skipped"] == 1  # overwrite=never: the file from run 1 is there
    final = server.cli_json("status", transfer["id"])
    assert final["next_run_at"] is None


def test_an_outage_coalesces_into_one_run_then_the_schedule_goes_on(tmp_path) -> None:
    cwd = tmp_path / "work"
    server = launch(cwd)
    try:
        (cwd / "a.txt").write_text("a")
        transfer = server.cli_json(
            "submit", "--every", "minute", "--start", "+3s", "local:a.txt", "local:out"
        )
        wait_for(lambda: [r for r in runs(server, transfer["id"]) if r["finished_at"]], timeout=30)
        server.stop()
    finally:
        shutdown(server)
    # Restarted OUTAGE after the first run came due: the occurrences at +60 s and +120 s
    # passed while it was down, the one at +180 s has not come yet.
    first_due = move_back(cwd / ".ferry" / "ferry.db", transfer["id"], OUTAGE)

    server = launch(cwd)
    restarted = time.time()
    try:
        second = wait_for(lambda: len(r := runs(server, transfer["id"])) >= 2 and r[1], timeout=30)
        assert second["occurrences"] == 2  # the ones due at +60 s and +120 s, in one run
        table = server.cli("runs", transfer["id"], check=True).stdout
        assert "2 (from due on)" in table  # and says so to a person
        assert "occurrences: the due times a run stands for" in table
        assert (at(second["due_at"]) - first_due).total_seconds() == 60
        assert at(second["started_at"]).timestamp() - restarted <= 2
        third = wait_for(lambda: len(r := runs(server, transfer["id"])) >= 3 and r[2], timeout=60)
        assert (at(third["due_at"]) - first_due).total_seconds() == 180
        assert 0 <= (at(third["started_at"]) - at(third["due_at"])).total_seconds() <= 1
    finally:
        shutdown(server)


OUTAGE = timedelta(seconds=150)


def move_back(database: Path, transfer_id: str, outage: timedelta) -> datetime:
    """An outage without its wait: the instants the stopped server stored for the transfer and
    its run (its schedule's start, its next run, the run's times) move back so that the first
    run came due ``outage`` ago, as a server restarted that long after it would find them.
    (The agents' rows are left: the restarted server registers its own.) Returns the moved due
    instant of the first run."""
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        (run,) = conn.execute(select(t.runs).where(t.runs.c.transfer_id == transfer_id)).all()
        by = outage - (datetime.now(UTC) - run.due_at)
        assert by > timedelta(0), f"the first run and the stop took longer than {outage}"
        moved = {
            name: value - by
            for name in ("due_at", "started_at", "finished_at", "last_result_at")
            if (value := getattr(run, name)) is not None
        }
        conn.execute(update(t.runs).where(t.runs.c.transfer_id == transfer_id).values(**moved))
        row = conn.execute(select(t.transfers).where(t.transfers.c.id == transfer_id)).one()
        start = datetime.fromisoformat(row.schedule["start"]) - by
        conn.execute(
            update(t.transfers)
            .where(t.transfers.c.id == transfer_id)
            .values(
                schedule={**row.schedule, "start": start.isoformat()},
                next_run_at=row.next_run_at - by,
                created_at=row.created_at - by,
                updated_at=row.updated_at - by,
            )
        )
    engine.dispose()
    return run.due_at - by
