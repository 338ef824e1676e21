"""Small objects from a local disk to a local disk: plain system calls, the same guarantees as
the general path (verified bytes, nothing partial, nothing written through a link)."""

from __future__ import annotations

import os
import threading
import zlib

import pytest

import ferry.engine.copy as engine
import ferry.engine.local_copy as local_copy
from ferry.domain.transfers import Checksum
from ferry.engine.copy import CopyRequest, CopyState, copy_object
from ferry.engine.local_copy import kernel_copy, read_whole
from ferry.engine.requests import SourceChanged
from ferry.engine.storages import open_storage
from ferry.errors import ChecksumMismatch, TransferCanceled, TransientError


def request(src, dst, **kwargs) -> CopyRequest:  # type: ignore[no-untyped-def]
    return CopyRequest(src, "d/a.bin", dst, "out/deep/a.bin", **kwargs)


@pytest.fixture
def small(src_root) -> bytes:  # type: ignore[no-untyped-def]
    data = os.urandom(4096)
    (src_root / "d").mkdir()
    (src_root / "d" / "a.bin").write_bytes(data)
    return data


def parts(root) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.name for p in root.rglob("*.part")]


@pytest.mark.parametrize("checksum", [Checksum.ADLER32, Checksum.NONE])
def test_a_small_object_never_goes_through_fsspec(src, dst, dst_root, small, checksum, monkeypatch):  # type: ignore[no-untyped-def]
    for fs in (src.fs, dst.fs):
        monkeypatch.setattr(fs, "open", lambda *a, **k: pytest.fail("opened through fsspec"))
    outcome = copy_object(request(src, dst, checksum=checksum))
    assert outcome.state is CopyState.DONE
    assert outcome.bytes == len(small)
    expected = f"adler32:{zlib.adler32(small):08x}" if checksum is Checksum.ADLER32 else None
    assert outcome.checksum == expected
    assert (dst_root / "out" / "deep" / "a.bin").read_bytes() == small
    assert parts(dst_root) == []


def test_a_byte_damaged_on_its_way_to_the_disk_is_a_checksum_mismatch(
    src, dst, dst_root, small, monkeypatch
):  # type: ignore[no-untyped-def]
    def damaging(fd: int, data: bytes) -> None:
        os.write(fd, bytes([data[0] ^ 0xFF]) + data[1:])

    monkeypatch.setattr(local_copy, "write_all", damaging)
    with pytest.raises(ChecksumMismatch, match=r"dst:out/deep/a\.bin"):
        copy_object(request(src, dst))
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


@pytest.mark.parametrize("checksum", [Checksum.ADLER32, Checksum.NONE])
def test_a_short_write_is_transient_and_leaves_nothing(
    src, dst, dst_root, small, checksum, monkeypatch
):  # type: ignore[no-untyped-def]
    def short(*args: object, **kwargs: object) -> None:
        fd = args[-1]  # write_all(fd, data=...) and kernel_copy(source_fd, fd, size=...)
        assert isinstance(fd, int)
        os.write(fd, b"only this")

    monkeypatch.setattr(local_copy, "write_all", short)
    monkeypatch.setattr(local_copy, "kernel_copy", short)
    with pytest.raises(TransientError, match=r"short write to dst:out/deep/a\.bin"):
        copy_object(request(src, dst, checksum=checksum))
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


def test_an_earlier_leftover_at_the_temporary_name_is_replaced(src, dst, dst_root, small):  # type: ignore[no-untyped-def]
    folder = dst_root / "out" / "deep"
    folder.mkdir(parents=True)
    (folder / ".a.bin.ferry-0-1.part").write_bytes(b"stale bytes of a killed attempt")
    assert copy_object(request(src, dst)).state is CopyState.DONE
    assert (folder / "a.bin").read_bytes() == small
    assert parts(dst_root) == []


@pytest.mark.parametrize("actual", [10, 12])
def test_a_file_whose_size_changed_since_its_stat_is_caught(tmp_path, actual):  # type: ignore[no-untyped-def]
    path = tmp_path / "moving"
    path.write_bytes(b"x" * actual)
    with pytest.raises(SourceChanged):
        read_whole(str(path), 11)
    source_fd = os.open(path, os.O_RDONLY)
    target_fd = os.open(tmp_path / "copy", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(SourceChanged):
            kernel_copy(source_fd, target_fd, 11)
    finally:
        os.close(source_fd)
        os.close(target_fd)


def test_a_source_that_changed_is_a_transient_error_naming_it(
    src, dst, dst_root, small, monkeypatch
):  # type: ignore[no-untyped-def]
    def changed(path: str, size: int) -> bytes:
        raise SourceChanged(size - 1, size)

    monkeypatch.setattr(local_copy, "read_whole", changed)
    with pytest.raises(TransientError, match=r"src:d/a\.bin changed while being copied"):
        copy_object(request(src, dst))
    assert not (dst_root / "out").exists()


@pytest.fixture
def large(src_root) -> bytes:  # type: ignore[no-untyped-def]
    data = os.urandom(2 * engine.BLOCK_SIZE + 12345)
    (src_root / "d").mkdir()
    (src_root / "d" / "a.bin").write_bytes(data)
    return data


def test_a_large_local_copy_is_made_by_the_kernel_and_summed_beside_it(
    src, dst, dst_root, large, monkeypatch
):  # type: ignore[no-untyped-def]
    for fs in (src.fs, dst.fs):
        monkeypatch.setattr(fs, "open", lambda *a, **k: pytest.fail("opened through fsspec"))
    monkeypatch.setattr(engine, "checksum_of", lambda *a: pytest.fail("read again afterwards"))
    seen = []
    monkeypatch.setattr(engine, "copy_summed", _recording(engine.copy_summed, seen))
    outcome = copy_object(request(src, dst))
    assert outcome.checksum == f"adler32:{zlib.adler32(large):08x}"
    assert outcome.bytes == len(large)
    assert seen == [(len(large), outcome.checksum[len("adler32:") :])]
    assert (dst_root / "out" / "deep" / "a.bin").read_bytes() == large
    assert parts(dst_root) == []


def _recording(copy, seen):  # type: ignore[no-untyped-def]
    def recorded(*args):  # type: ignore[no-untyped-def]
        copied, read, written = copy(*args)
        seen.append((copied, written))
        return copied, read, written

    return recorded


def test_a_block_damaged_by_the_kernel_copy_is_caught(src, dst, dst_root, large, monkeypatch):  # type: ignore[no-untyped-def]
    real_sendfile, copied = os.sendfile, []

    def damaging(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent = real_sendfile(out_fd, in_fd, offset, count)
        if sent and len(copied) == 1:  # the second block lands with its first byte flipped
            os.pwrite(out_fd, bytes([os.pread(in_fd, 1, offset)[0] ^ 0xFF]), offset)
        copied.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", damaging)
    with pytest.raises(ChecksumMismatch, match=r"dst:out/deep/a\.bin"):
        copy_object(request(src, dst))
    assert copied == [engine.BLOCK_SIZE, engine.BLOCK_SIZE, 12345, 0]
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


def test_a_block_damaged_on_its_way_from_a_stream_to_a_local_file_is_caught(
    dst, dst_root, monkeypatch
):  # type: ignore[no-untyped-def]
    from fsspec.implementations.local import LocalFileOpener

    data = os.urandom(2 * engine.BLOCK_SIZE + 12345)
    source = open_storage("mem", f"memory://ferry-test-{os.getpid()}-{id(data)}")
    source.fs.pipe_file(source.resolve("d/a.bin"), data)
    real_write, damaged = LocalFileOpener.write, []

    def damaging(self, block):  # type: ignore[no-untyped-def]
        if len(damaged) == 1:  # the second block
            block = bytes([block[0] ^ 0xFF]) + bytes(block[1:])
        damaged.append(len(block))
        return real_write(self, block)

    monkeypatch.setattr(LocalFileOpener, "write", damaging)
    try:
        with pytest.raises(ChecksumMismatch, match=r"dst:out/deep/a\.bin"):
            copy_object(request(source, dst))
    finally:
        source.fs.rm(source.root, recursive=True)
    assert len(damaged) == 3
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


def test_an_existing_file_behind_a_linked_folder_is_skipped(src, dst, dst_root, small):  # type: ignore[no-untyped-def]
    real = dst_root / "real"
    real.mkdir()
    (real / "a.bin").write_bytes(b"the user's own")
    (dst_root / "alias").symlink_to(real)  # a link that stays inside the storage
    outcome = copy_object(CopyRequest(src, "d/a.bin", dst, "alias/a.bin"))
    assert outcome.state is CopyState.SKIPPED
    assert (real / "a.bin").read_bytes() == b"the user's own"


def test_a_source_that_changed_under_the_kernel_copy_is_named(
    src, dst, dst_root, small, monkeypatch
):  # type: ignore[no-untyped-def]
    def grown(source_fd: int, fd: int, size: int) -> None:
        raise SourceChanged(size + 1, size)

    monkeypatch.setattr(local_copy, "kernel_copy", grown)
    with pytest.raises(TransientError, match=r"src:d/a\.bin changed while being copied"):
        copy_object(request(src, dst, checksum=Checksum.NONE))
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


def test_a_canceled_large_copy_leaves_no_read_back_thread(src, dst, dst_root, large):  # type: ignore[no-untyped-def]
    blocks: list[int] = []
    with pytest.raises(TransferCanceled):
        copy_object(request(src, dst), progress=blocks.append, should_stop=lambda: bool(blocks))
    assert not [t for t in threading.enumerate() if t.name.startswith("read-back")]
    assert parts(dst_root) == []
