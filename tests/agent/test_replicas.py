"""A task whose source has replicas: the agent walks its places within one attempt, on real
local storages (and the mock storage for a transient failure): the first that can give the
object is used and named in the report; the errors of those tried before it are kept; every
place failing fails the attempt, retryable if one failure was; each attempt starts one place
further on."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from ferry.agent.copies import Attempt, Copier
from ferry.agent.held import HeldTask
from ferry.agent.replicas import places_in_turn, walk_replicas
from ferry.api.protocol import LeasedTaskPublic, ReportedState, StorageAccess, TaskReport
from ferry.domain.locations import Location
from ferry.domain.options import Checksum, Overwrite


def leased(
    source: str, replicas: list[str], *, attempt: int = 1, skip: bool = False
) -> LeasedTaskPublic:
    return LeasedTaskPublic(
        id=1,
        lease="lease-1",
        transfer="t1",
        run=1,
        source=source,
        destination="dst:out/data.bin",
        size=None,
        attempt=attempt,
        checksum=Checksum.SHA256,
        overwrite=Overwrite.NEVER,
        skip_source_errors=skip,
        replicas=replicas,
    )


@pytest.fixture
def copier(tmp_path: Path) -> Copier:
    for name in ("a", "b", "c", "dst"):
        (tmp_path / name).mkdir()
    copier = Copier()
    storages = {name: f"file://{tmp_path / name}" for name in ("a", "b", "c", "dst")}
    storages["flaky"] = "mock://flaky"
    copier.learn(
        {
            name: StorageAccess(url=url, options={"fail": 1} if name == "flaky" else {})
            for name, url in storages.items()
        }
    )
    return copier


def copy(copier: Copier, task: LeasedTaskPublic) -> TaskReport:
    return copier.execute(HeldTask.from_lease(task))


def test_the_first_replica_missing_the_second_is_read_and_named(
    copier: Copier, tmp_path: Path
) -> None:
    (tmp_path / "b" / "data.bin").write_bytes(b"from b" * 1000)
    report = copy(copier, leased("a:data.bin", ["b:data.bin", "c:data.bin"]))
    assert report.state is ReportedState.DONE
    assert report.replica == "b:data.bin"
    assert report.error == "read from b:data.bin after: not found: a:data.bin"
    assert report.checksum is not None
    assert report.checksum.startswith("sha256:")
    assert (tmp_path / "dst" / "out" / "data.bin").read_bytes() == b"from b" * 1000
    assert [p.name for p in (tmp_path / "dst" / "out").iterdir()] == ["data.bin"]  # no .part


def test_the_source_itself_is_read_first_and_named(copier: Copier, tmp_path: Path) -> None:
    (tmp_path / "a" / "data.bin").write_bytes(b"a")
    (tmp_path / "b" / "data.bin").write_bytes(b"b")
    report = copy(copier, leased("a:data.bin", ["b:data.bin"]))
    assert (report.state, report.replica, report.error) == (ReportedState.DONE, "a:data.bin", None)
    assert (tmp_path / "dst" / "out" / "data.bin").read_bytes() == b"a"


def test_every_place_failing_fails_with_each_error_retryable_if_one_was(copier: Copier) -> None:
    permanent = copy(copier, leased("a:data.bin", ["b:data.bin"]))
    assert permanent.state is ReportedState.FAILED
    assert permanent.error == "every replica failed: not found: a:data.bin; not found: b:data.bin"
    assert (permanent.error_class, permanent.retryable, permanent.replica) == (
        "not_found",
        False,
        None,
    )

    transient = copy(copier, leased("a:data.bin", ["flaky:obj-1"]))
    assert transient.state is ReportedState.FAILED
    assert transient.retryable is True  # the flaky place may answer next time
    assert transient.error is not None
    assert transient.error.startswith("every replica failed: not found: a:data.bin; ")
    assert "flaky:obj-1" in transient.error


def test_a_transient_failure_moves_on_to_the_next_place(copier: Copier, tmp_path: Path) -> None:
    (tmp_path / "c" / "data.bin").write_bytes(b"c")
    report = copy(copier, leased("flaky:obj-1", ["c:data.bin"]))
    assert (report.state, report.replica) == (ReportedState.DONE, "c:data.bin")
    assert report.error is not None
    assert "flaky:obj-1" in report.error


def test_each_attempt_starts_one_place_further_and_wraps() -> None:
    orders = [
        [
            str(p)
            for p in places_in_turn(HeldTask.from_lease(leased("a:x", ["b:x", "c:x"], attempt=n)))
        ]
        for n in (1, 2, 3, 4)
    ]
    assert orders == [
        ["a:x", "b:x", "c:x"],
        ["b:x", "c:x", "a:x"],
        ["c:x", "a:x", "b:x"],
        ["a:x", "b:x", "c:x"],
    ]


def test_a_retry_reads_from_the_next_place_first(copier: Copier, tmp_path: Path) -> None:
    (tmp_path / "a" / "data.bin").write_bytes(b"a")
    (tmp_path / "b" / "data.bin").write_bytes(b"b")
    report = copy(copier, leased("a:data.bin", ["b:data.bin"], attempt=2))
    assert (report.state, report.replica) == (ReportedState.DONE, "b:data.bin")


def test_skip_source_errors_skips_only_when_every_place_is_missing(
    copier: Copier, tmp_path: Path
) -> None:
    skipped = copy(copier, leased("a:data.bin", ["b:data.bin"], skip=True))
    assert skipped.state is ReportedState.SKIPPED
    assert skipped.error == "every replica failed: not found: a:data.bin; not found: b:data.bin"

    (tmp_path / "b" / "data.bin").write_bytes(b"b")
    found = copy(copier, leased("a:data.bin", ["b:data.bin"], skip=True))
    assert (found.state, found.replica) == (ReportedState.DONE, "b:data.bin")


def test_a_destination_failure_ends_the_walk(copier: Copier, tmp_path: Path) -> None:
    (tmp_path / "a" / "data.bin").write_bytes(b"a")
    (tmp_path / "b" / "data.bin").write_bytes(b"b")
    (tmp_path / "dst" / "out").write_bytes(b"a file where the folder should be")
    report = copy(copier, leased("a:data.bin", ["b:data.bin"]))
    assert report.state is ReportedState.FAILED
    assert report.error is not None
    assert report.error.startswith("every replica failed (1 not tried: the destination failed)")


@pytest.mark.parametrize("attempt", [1, 3], ids=["small-local-path", "general-path"])
def test_an_expected_checksum_is_checked_on_each_places_copy(
    copier: Copier, tmp_path: Path, attempt: int
) -> None:
    good = b"the object" * 100
    (tmp_path / "a" / "data.bin").write_bytes(b"a stale copy" * 100)
    (tmp_path / "b" / "data.bin").write_bytes(good)
    expected = "sha256:" + hashlib.sha256(good).hexdigest()
    task = dataclasses.replace(leased("a:data.bin", ["b:data.bin"]), expected_checksum=expected)
    report = copy(copier, task)
    assert (report.state, report.replica, report.checksum) == (
        ReportedState.DONE,
        "b:data.bin",
        expected,
    )
    assert report.error is not None
    assert report.error.startswith(
        f"read from b:data.bin after: checksum mismatch on a:data.bin: expected {expected}, got"
    )
    assert (tmp_path / "dst" / "out" / "data.bin").read_bytes() == good

    (tmp_path / "b" / "data.bin").write_bytes(b"also stale")
    (tmp_path / "dst" / "out" / "data.bin").unlink()
    failed = copy(copier, task)
    assert (failed.state, failed.error_class, failed.retryable) == (
        ReportedState.FAILED,
        "checksum",
        True,
    )
    assert [p.name for p in (tmp_path / "dst" / "out").iterdir()] == []  # nothing kept


@pytest.mark.parametrize(
    ("shutting_down", "state"),
    [(False, ReportedState.CANCELED), (True, ReportedState.RELEASED)],
)
def test_a_stop_between_places_tries_no_more(shutting_down: bool, state: ReportedState) -> None:
    held = HeldTask.from_lease(leased("a:x", ["b:x", "c:x"]))
    tried = []

    def fail_then_stop(place: Location) -> Attempt:
        tried.append(str(place))
        held.canceled, held.shutting_down = True, shutting_down
        return Attempt(ReportedState.FAILED, error_class="not_found", error=f"not found: {place}")

    ended = walk_replicas(held, fail_then_stop)
    assert tried == ["a:x"]
    assert (ended.state, ended.retryable) == (state, False)
