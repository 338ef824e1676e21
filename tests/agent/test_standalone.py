"""The engine on its own (``StandaloneCopy``): a retryable failure is tried again and the
object ends DONE with its attempts counted; a permanent one ends FAILED at once; what is left
when the copy is stopped ends CANCELED, with no partial file."""

from __future__ import annotations

import os
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from ferry.agent.standalone import CANCELED, DONE, FAILED, StandaloneCopy
from ferry.domain.locations import Location
from ferry.domain.transfers import TransferOptions
from ferry.engine.storages import StorageFS


class _Damaged:
    """Reads whose first byte is inverted."""

    def __init__(self, handle) -> None:  # type: ignore[no-untyped-def]
        self._handle, self._done = handle, False

    def read(self, size: int = -1) -> bytes:
        data = bytes(self._handle.read(size))
        if not self._done and data:
            data, self._done = bytes([data[0] ^ 0xFF]) + data[1:], True
        return data

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._handle, name)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class OnceDamaged(LocalFileSystem):
    """The first file opened for reading is damaged; the others are not."""

    damaged = 0

    def open(self, path, mode="rb", **kwargs):  # type: ignore[no-untyped-def]
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

    def stop_after_the_first(one) -> None:  # type: ignore[no-untyped-def]
        ended.append(one)
        job.stop()

    job = StandaloneCopy(storages, TransferOptions(), workers=1, on_ended=stop_after_the_first)
    report = job.run([Location("src", "")], Location("dst", "out"), tree=True)
    statuses = [e.status for e in report.ended]
    assert statuses.count(DONE) >= 1
    assert CANCELED in statuses
    assert report.failed
    assert len(list((tmp_path / "dst" / "out").iterdir())) == statuses.count(DONE)
