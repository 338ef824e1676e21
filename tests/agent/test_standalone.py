"""The engine on its own (``StandaloneCopy``): a retryable failure is tried again and the
object ends DONE with its attempts counted; a permanent one ends FAILED at once; what is left
when the copy is stopped ends CANCELED, with no partial file; the small files of a local tree
are copied by processes of their own, which stop with the copy, and a process that dies leaves
its batch FAILED with the reason and the rest to the threads."""

from __future__ import annotations

import os
import signal
import zlib
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from ferry.agent.standalone import CANCELED, DONE, FAILED, SKIPPED, StandaloneCopy
from ferry.domain.locations import Location
from ferry.domain.transfers import TransferOptions
from ferry.engine.storages import StorageFS


class _Damaged:
    """Reads whose first byte is inverted."""

    def __init__(self, handle) -> None:
        self._handle, self._done = handle, False

    def read(self, size: int = -1) -> bytes:
        data = bytes(self._handle.read(size))
        if not self._done and data:
            data, self._done = bytes([data[0] ^ 0xFF]) + data[1:], True
        return data

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class OnceDamaged(LocalFileSystem):
    """The first file opened for reading is damaged; the others are not."""

    damaged = 0

    def open(self, path, mode="rb", **kwargs):
        handle = super().open(path, mode, **kwargs)
        if "r" in mode and OnceDamaged.damaged == 0:
            OnceDamaged.damaged += 1
            return _Damaged(handle)
        return handle


def _storages(tmp_path: Path) -> dict[str, StorageFS]:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    OnceDamaged.damaged = 0
    return {
        "src": StorageFS("src", OnceDamaged(skip_instance_cache=True), str(tmp_path / "src")),
        "dst": StorageFS("dst", LocalFileSystem(skip_instance_cache=True), str(tmp_path / "dst")),
    }


def test_a_retryable_failure_is_tried_again_and_ends_done(tmp_path: Path) -> None:
    storages = _storages(tmp_path)
    data = os.urandom(50_000)
    (tmp_path / "src" / "a.bin").write_bytes(data)
    job = StandaloneCopy(storages, TransferOptions(verify_source=True, retries=2))
    report = job.run([Location("src", "a.bin")], Location("dst", "in"), tree=False)
    (ended,) = report.ended
    assert ended.status == DONE
    assert ended.attempts == 2  # the first attempt's two reads differed
    assert (tmp_path / "dst" / "in" / "a.bin").read_bytes() == data
    assert report.status == "COMPLETED"


def test_no_retries_left_ends_failed_with_the_error(tmp_path: Path) -> None:
    storages = _storages(tmp_path)
    (tmp_path / "src" / "a.bin").write_bytes(os.urandom(50_000))
    job = StandaloneCopy(storages, TransferOptions(verify_source=True, retries=0))
    report = job.run([Location("src", "a.bin")], Location("dst", "in"), tree=False)
    (ended,) = report.ended
    assert ended.status == FAILED
    assert ended.error_class == "checksum"
    assert "read twice gave different bytes" in (ended.error or "")
    assert report.status == "FAILED"
    assert list((tmp_path / "dst").rglob("*.part")) == []


def test_a_stopped_copy_ends_what_is_left_canceled(tmp_path: Path) -> None:
    storages = _storages(tmp_path)
    OnceDamaged.damaged = 1  # no damage here
    for number in range(20):
        (tmp_path / "src" / f"f{number:02}").write_bytes(b"x" * 1000)
    ended = []

    def stop_after_the_first(one) -> None:
        ended.append(one)
        job.stop()

    job = StandaloneCopy(
        storages, TransferOptions(), workers=1, on_ended=stop_after_the_first, processes=0
    )
    report = job.run([Location("src", "")], Location("dst", "out"), tree=True)
    statuses = [e.status for e in report.ended]
    assert statuses.count(DONE) >= 1
    assert CANCELED in statuses
    assert report.failed
    assert len(list((tmp_path / "dst" / "out").iterdir())) == statuses.count(DONE)


class PidsRecorded(LocalFileSystem):
    """Each file opened for reading writes the opening process's id into ``pids`` (beside the
    tree); a file named ``kill-me`` kills the copy process that opens it."""

    def open(self, path, mode="rb", **kwargs):
        if "r" in mode:
            pids = Path(self._parent(self._parent(path))) / "pids"
            with pids.open("a") as record:
                record.write(f"{os.getpid()}\n")
            if path.endswith("kill-me") and os.getpid() != PidsRecorded.parent:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().open(path, mode, **kwargs)

    parent = os.getpid()


def _tree_of(tmp_path: Path, count: int, *, kill: bool = False) -> dict[str, StorageFS]:
    (tmp_path / "src" / "tree").mkdir(parents=True)
    (tmp_path / "dst").mkdir()
    for number in range(count):
        name = f"f{number:03}" + ("-kill-me" if kill and number == 40 else "")
        (tmp_path / "src" / "tree" / name).write_bytes(number.to_bytes(2, "big") * 500)
    PidsRecorded.parent = os.getpid()
    return {
        "src": StorageFS("src", PidsRecorded(skip_instance_cache=True), str(tmp_path / "src")),
        "dst": StorageFS("dst", LocalFileSystem(skip_instance_cache=True), str(tmp_path / "dst")),
    }


def _pids(tmp_path: Path) -> set[int]:
    return {int(line) for line in (tmp_path / "src" / "pids").read_text().split()}


def test_the_small_files_of_a_local_tree_are_copied_by_processes(tmp_path: Path) -> None:
    storages = _tree_of(tmp_path, 200)
    moved: list[int] = []
    job = StandaloneCopy(storages, TransferOptions(), workers=2, processes=2, progress=moved.append)
    report = job.run([Location("src", "tree")], Location("dst", "out"), tree=True)

    assert report.status == "COMPLETED"
    assert [e.status for e in report.ended] == [DONE] * 200
    for number in range(200):
        copy = tmp_path / "dst" / "out" / f"f{number:03}"
        assert copy.read_bytes() == number.to_bytes(2, "big") * 500
    pids = _pids(tmp_path)
    assert len(pids) == 2
    assert os.getpid() not in pids
    assert sum(moved) == report.bytes == 200_000


def test_each_object_comes_back_from_a_copy_process_with_all_it_told(tmp_path: Path) -> None:
    storages = _tree_of(tmp_path, 60)
    (tmp_path / "dst" / "out").mkdir()
    (tmp_path / "dst" / "out" / "f005").write_bytes(b"older")
    job = StandaloneCopy(storages, TransferOptions(), workers=2, processes=2)
    report = job.run([Location("src", "tree")], Location("dst", "out"), tree=True)

    ended = {e.destination: e for e in report.ended}
    skipped, done = ended["dst:out/f005"], ended["dst:out/f006"]
    assert (skipped.source, skipped.status, skipped.bytes, skipped.attempts) == (
        "src:tree/f005",
        SKIPPED,
        0,
        1,
    )
    assert "exists" in (skipped.error or "")
    sent = (6).to_bytes(2, "big") * 500
    assert (done.source, done.status, done.bytes, done.attempts, done.error) == (
        "src:tree/f006",
        DONE,
        1000,
        1,
        None,
    )
    assert done.checksum == f"adler32:{zlib.adler32(sent):08x}"
    assert (tmp_path / "dst" / "out" / "f005").read_bytes() == b"older"
    assert os.getpid() not in _pids(tmp_path)  # the processes copied every object


def test_a_stop_reaches_the_copy_processes(tmp_path: Path) -> None:
    storages = _tree_of(tmp_path, 300)

    def stop_at_the_first(_ended) -> None:
        job.stop()

    job = StandaloneCopy(
        storages, TransferOptions(), workers=1, processes=1, on_ended=stop_at_the_first
    )
    report = job.run([Location("src", "tree")], Location("dst", "out"), tree=True)

    statuses = [e.status for e in report.ended]
    # The first batch came back whole; what the process had not begun when the stop was
    # told, and what was still being listed, did not start.
    assert 0 < statuses.count(DONE) < 300
    assert statuses.count(DONE) + statuses.count(CANCELED) == len(statuses)
    assert len(list((tmp_path / "dst" / "out").iterdir())) == statuses.count(DONE)
    assert list((tmp_path / "dst").rglob("*.part")) == []


def test_a_copy_process_that_dies_leaves_its_batch_failed_and_the_rest_to_threads(
    tmp_path: Path,
) -> None:
    storages = _tree_of(tmp_path, 100, kill=True)
    job = StandaloneCopy(storages, TransferOptions(), workers=1, processes=1)
    report = job.run([Location("src", "tree")], Location("dst", "out"), tree=True)

    failed = [e for e in report.ended if e.status == FAILED]
    assert failed
    assert all("exit code -9" in (e.error or "") for e in failed)
    assert "dst:out/f040-kill-me" in {e.destination for e in failed}
    done = [e for e in report.ended if e.status == DONE]
    assert len(done) + len(failed) == 100
    assert len(done) >= 100 - 32  # only the batch of kill-me was lost with its process
    assert os.getpid() in _pids(tmp_path)  # the thread copied what came after it
    assert report.status == "COMPLETED_WITH_ERRORS"
