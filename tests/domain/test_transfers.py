"""Transfers turned into tasks, run outcomes, roles and options."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ferry.domain.locations import Location, parse_location
from ferry.domain.options import Checksum, Overwrite
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import (
    Role,
    RunCounts,
    TransferKind,
    TransferOptions,
    TransferSpec,
    file_task,
    run_outcome,
    transfer_status_after,
    tree_task,
)
from ferry.errors import InvalidRequest, PathOutsideStorage


def test_file_task_keeps_the_source_name_under_the_destination_folder():
    task = file_task(parse_location("src:in/a.csv"), parse_location("dst:out"))
    assert task.source == Location("src", "in/a.csv")
    assert task.destination == Location("dst", "out/a.csv")
    assert task.state is TaskState.QUEUED
    assert task.size is None


def test_file_task_into_the_destination_root():
    task = file_task(parse_location("src:a.csv"), parse_location("dst:"))
    assert task.destination == Location("dst", "a.csv")


def test_file_task_refuses_a_storage_root_as_source():
    with pytest.raises(InvalidRequest, match="use a tree"):
        file_task(parse_location("src:"), parse_location("dst:out"))


def test_tree_task_keeps_the_structure_below_the_root():
    task = tree_task(parse_location("src:data"), "x/y z/é.bin", parse_location("dst:copy"), 42)
    assert task.source == Location("src", "data/x/y z/é.bin")
    assert task.destination == Location("dst", "copy/x/y z/é.bin")
    assert task.size == 42


def test_tree_task_from_the_storage_root():
    task = tree_task(parse_location("src:"), "a/b", parse_location("dst:"), 0)
    assert (task.source.path, task.destination.path) == ("a/b", "a/b")


def test_tree_task_refuses_a_relative_path_that_climbs_out():
    with pytest.raises(PathOutsideStorage):
        tree_task(parse_location("src:data"), "../../etc/passwd", parse_location("dst:"), 1)


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        (RunCounts(), RunStatus.COMPLETED),
        (RunCounts(total=3, done=3), RunStatus.COMPLETED),
        (RunCounts(total=3, skipped=3), RunStatus.COMPLETED),
        (RunCounts(total=3, done=1, skipped=2), RunStatus.COMPLETED),
        (RunCounts(total=3, done=2, failed=1), RunStatus.COMPLETED_WITH_ERRORS),
        (RunCounts(total=3, skipped=2, failed=1), RunStatus.COMPLETED_WITH_ERRORS),
        (RunCounts(total=2, failed=2), RunStatus.FAILED),
        (RunCounts(total=3, failed=2, canceled=1), RunStatus.FAILED),
    ],
    ids=[
        "zero-objects",
        "all-done",
        "all-skipped",
        "done-and-skipped",
        "some-failed-some-done",
        "some-failed-some-skipped",
        "all-failed",
        "failed-and-canceled",
    ],
)
def test_run_outcome(counts, status):
    assert run_outcome(counts) is status


def test_run_counts_finished_adds_every_final_state():
    counts = RunCounts(total=10, done=1, failed=2, skipped=3, canceled=4)
    assert counts.finished == 10


@pytest.mark.parametrize(
    "status", [RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_ERRORS, RunStatus.FAILED]
)
def test_transfer_status_after_a_run_mirrors_it(status):
    assert transfer_status_after(status) == TransferStatus(status.value)


LADDER = [Role.READ, Role.WRITE, Role.ADMINISTRATOR]


@pytest.mark.parametrize("have", LADDER)
@pytest.mark.parametrize("need", LADDER)
def test_role_ladder(have, need):
    assert have.allows(need) is (LADDER.index(have) >= LADDER.index(need))


@pytest.mark.parametrize("other", LADDER)
def test_daemon_is_outside_the_ladder(other):
    assert not Role.DAEMON.allows(other)
    assert not other.allows(Role.DAEMON)


def test_daemon_allows_daemon():
    assert Role.DAEMON.allows(Role.DAEMON)


def test_options_json_round_trip():
    options = TransferOptions(Checksum.SHA256, Overwrite.ALWAYS, retries=0, priority=5)
    assert TransferOptions.from_json(json.loads(json.dumps(options.to_json()))) == options


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+90s", {"deadline_s": 90}),
        ("+6h", {"deadline_s": 6 * 3600}),
        ("+2d", {"deadline_s": 2 * 86400}),
        ("2030-01-01T13:00:00+01:00", {"deadline_at": "2030-01-01T12:00:00+00:00"}),
    ],
)
def test_a_deadline_is_stored_relative_to_each_run_or_as_an_instant(given, stored):
    options = TransferOptions.from_json({"deadline": given})
    assert {k: v for k, v in options.to_json().items() if k.startswith("deadline")} == stored
    assert TransferOptions.from_json(options.to_json()) == options


def test_a_run_deadline_counts_from_when_it_was_due():
    due = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert TransferOptions(deadline_s=600).run_deadline(due) == due + timedelta(minutes=10)
    at = datetime(2030, 1, 2, tzinfo=UTC)
    assert TransferOptions(deadline_at=at).run_deadline(due) == at
    assert TransferOptions().run_deadline(due) is None
    assert "deadline_s" not in TransferOptions().to_json()  # the spec hash of older ones holds


def test_options_defaults_fill_missing_keys():
    assert TransferOptions.from_json({}) == TransferOptions()
    assert TransferOptions() == TransferOptions(Checksum.ADLER32, Overwrite.NEVER, 3, 3)


def test_options_from_json_refuses_an_unknown_checksum():
    with pytest.raises(ValueError, match="crc99"):
        TransferOptions.from_json({"checksum": "crc99"})


def test_spec_needs_a_source():
    with pytest.raises(InvalidRequest, match="at least one source"):
        TransferSpec(TransferKind.FILE, (), parse_location("dst:"))


def test_spec_json_and_storages():
    spec = TransferSpec(
        TransferKind.TREE,
        (parse_location("a:x"), parse_location("b:y/./z")),
        parse_location("c:out"),
    )
    assert spec.to_json() == {
        "kind": "tree",
        "sources": ["a:x", "b:y/z"],
        "destination": "c:out",
        "options": TransferOptions().to_json(),
    }
    assert spec.storages() == {"a", "b", "c"}


def test_progress_gives_rate_and_time_left():
    from datetime import UTC, datetime, timedelta

    from ferry.domain.states import RunStatus
    from ferry.domain.transfers import Run, RunCounts, run_progress

    started = datetime(2027, 1, 1, tzinfo=UTC)
    run = Run(
        "t",
        1,
        RunStatus.ONGOING,
        started,
        started,
        None,
        True,
        RunCounts(bytes=600),
        None,
        size_total=2000,
    )
    progress = run_progress(run, active_bytes=400, now=started + timedelta(seconds=10))
    assert (progress.bytes_moved, progress.bytes_total, progress.rate_bps, progress.eta_s) == (
        1000,
        2000,
        100.0,
        10.0,
    )
    idle = run_progress(run, active_bytes=0, now=started)
    assert (idle.rate_bps, idle.eta_s) == (None, None)
