"""Small objects from a local disk to a local disk: plain system calls, the same guarantees as
the general path (verified bytes, nothing partial, nothing written through a link)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

import ferry.engine.copy as engine
import ferry.engine.local_copy as local_copy
import ferry.engine.summed_copy as summed_copy
from ferry.domain.options import Checksum, Overwrite
from ferry.engine.copy import CopyRequest, CopyState, copy_object
from ferry.engine.local_copy import kernel_copy, read_all
from ferry.engine.requests import SourceChanged
from ferry.engine.storages import open_storage, remembered_folders
from ferry.errors import AccessDenied, ChecksumMismatch, TransferCanceled, TransientError


def request(src, dst, **kwargs) -> CopyRequest:
    return CopyRequest(src, "d/a.bin", dst, "out/deep/a.bin", **kwargs)


@pytest.fixture
def small(src_root) -> bytes:
    data = os.urandom(4096)
    (src_root / "d").mkdir()
    (src_root / "d" / "a.bin").write_bytes(data)
    return data


def parts(root) -> list[str]:
    return [p.name for p in root.rglob("*.part")]


@pytest.mark.parametrize("checksum", [Checksum.ADLER32, Checksum.NONE])
def test_a_small_object_never_goes_through_fsspec(src, dst, dst_root, small, checksum, monkeypatch):
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
):
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
):
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


def test_an_earlier_leftover_at_the_temporary_name_is_replaced(src, dst, dst_root, small):
    folder = dst_root / "out" / "deep"
    folder.mkdir(parents=True)
    (folder / ".a.bin.ferry-0-1.part").write_bytes(b"stale bytes of a killed attempt")
    assert copy_object(request(src, dst)).state is CopyState.DONE
    assert (folder / "a.bin").read_bytes() == small
    assert parts(dst_root) == []


@pytest.mark.parametrize("actual", [10, 12])
def test_a_file_whose_size_changed_since_its_stat_is_caught(tmp_path, actual):
    path = tmp_path / "moving"
    path.write_bytes(b"x" * actual)
    source_fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(SourceChanged):
            read_all(source_fd, 11)
    finally:
        os.close(source_fd)
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
):
    def changed(fd: int, size: int) -> bytes:
        raise SourceChanged(size - 1, size)

    monkeypatch.setattr(local_copy, "read_all", changed)
    with pytest.raises(TransientError, match=r"src:d/a\.bin changed while being copied"):
        copy_object(request(src, dst))
    assert not (dst_root / "out").exists()


@pytest.fixture
def large(src_root) -> bytes:
    data = os.urandom(2 * engine.BLOCK_SIZE + 12345)
    (src_root / "d").mkdir()
    (src_root / "d" / "a.bin").write_bytes(data)
    return data


def test_a_large_local_copy_is_made_by_the_kernel_and_summed_beside_it(
    src, dst, dst_root, large, monkeypatch
):
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


def _recording(copy, seen):
    def recorded(*args):
        copied, read, written = copy(*args)
        seen.append((copied, written))
        return copied, read, written

    return recorded


def test_a_block_damaged_by_the_kernel_copy_is_caught(src, dst, dst_root, large, monkeypatch):
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
):
    data = os.urandom(2 * engine.BLOCK_SIZE + 12345)
    source = open_storage("mem", f"memory://ferry-test-{os.getpid()}-{id(data)}")
    source.fs.pipe_file(source.resolve("d/a.bin"), data)
    real_write, damaged = local_copy.UnnamedFile.write, []

    def damaging(self, block):
        if len(damaged) == 1:  # the second block
            block = bytes([block[0] ^ 0xFF]) + bytes(block[1:])
        damaged.append(len(block))
        return real_write(self, block)

    monkeypatch.setattr(local_copy.UnnamedFile, "write", damaging)
    try:
        with pytest.raises(ChecksumMismatch, match=r"dst:out/deep/a\.bin"):
            copy_object(request(source, dst))
    finally:
        source.fs.rm(source.root, recursive=True)
    assert len(damaged) == 3
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


def test_an_existing_file_behind_a_linked_folder_is_skipped(src, dst, dst_root, small):
    real = dst_root / "real"
    real.mkdir()
    (real / "a.bin").write_bytes(b"the user's own")
    (dst_root / "alias").symlink_to(real)  # a link that stays inside the storage
    outcome = copy_object(CopyRequest(src, "d/a.bin", dst, "alias/a.bin"))
    assert outcome.state is CopyState.SKIPPED
    assert (real / "a.bin").read_bytes() == b"the user's own"


def test_a_source_that_changed_under_the_kernel_copy_is_named(
    src, dst, dst_root, small, monkeypatch
):
    def grown(source_fd: int, fd: int, size: int) -> None:
        raise SourceChanged(size + 1, size)

    monkeypatch.setattr(local_copy, "kernel_copy", grown)
    with pytest.raises(TransientError, match=r"src:d/a\.bin changed while being copied"):
        copy_object(request(src, dst, checksum=Checksum.NONE))
    assert not (dst_root / "out" / "deep" / "a.bin").exists()
    assert parts(dst_root) == []


def test_a_canceled_large_copy_leaves_no_read_back_thread(src, dst, dst_root, large):
    blocks: list[int] = []
    with pytest.raises(TransferCanceled):
        copy_object(request(src, dst), progress=blocks.append, should_stop=lambda: bool(blocks))
    assert not [t for t in threading.enumerate() if t.name.startswith("read-back")]
    assert parts(dst_root) == []


def test_a_folder_replaced_by_a_link_during_a_batch_leads_nothing_out(tmp_path, small_tree):
    """A batch holds its folders open, and looks again at a folder it writes into: one
    swapped for a link to outside after the batch's first copy into it is refused."""
    src, dst, dst_root, outside = small_tree
    (dst_root / "d").mkdir()
    with remembered_folders():
        assert copy_object(CopyRequest(src, "d/a.bin", dst, "d/a.bin")).state is CopyState.DONE
        (dst_root / "d").rename(dst_root / "moved")
        (dst_root / "d").symlink_to(outside)
        with pytest.raises(AccessDenied, match="outside storage"):
            copy_object(CopyRequest(src, "d/b.bin", dst, "d/b.bin"))
    assert sorted(p.name for p in (dst_root / "moved").iterdir()) == ["a.bin"]
    assert list(outside.iterdir()) == []


def test_a_folder_renamed_or_removed_during_a_batch_gets_the_copy_at_its_name(small_tree):
    """A folder rotated away (renamed, then made again) or removed while a batch holds it:
    the next copy lands at its name, as it says, not in the folder that went away."""
    src, dst, dst_root, _outside = small_tree
    with remembered_folders():
        assert copy_object(CopyRequest(src, "d/a.bin", dst, "e/a.bin")).state is CopyState.DONE
        (dst_root / "e").rename(dst_root / "e.old")
        (dst_root / "e").mkdir()
        assert copy_object(CopyRequest(src, "d/b.bin", dst, "e/b.bin")).state is CopyState.DONE
        (dst_root / "e" / "b.bin").unlink()
        (dst_root / "e").rmdir()
        assert copy_object(CopyRequest(src, "d/c.bin", dst, "e/c.bin")).state is CopyState.DONE
    assert sorted(p.name for p in (dst_root / "e.old").iterdir()) == ["a.bin"]
    assert sorted(p.name for p in (dst_root / "e").iterdir()) == ["c.bin"]


def test_a_source_replaced_by_a_link_to_outside_is_not_read(tmp_path, small_tree):
    src, dst, dst_root, outside = small_tree
    (outside / "secret").write_bytes(b"not to be copied")
    source_root = Path(src.root)
    with remembered_folders():
        assert copy_object(CopyRequest(src, "d/a.bin", dst, "x/a.bin")).state is CopyState.DONE
        (source_root / "d" / "b.bin").unlink()
        (source_root / "d" / "b.bin").symlink_to(outside / "secret")
        with pytest.raises(AccessDenied, match="outside storage"):
            copy_object(CopyRequest(src, "d/b.bin", dst, "x/b.bin"))
    assert not (dst_root / "x" / "b.bin").exists()


def test_one_storages_folders_stand_for_nothing_in_another(tmp_path) -> None:
    """A storage whose root is a linked folder inside another's: what a batch opened below
    the inner root says nothing of the link on the way down from the outer one."""
    outer, outside = tmp_path / "data", tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    outer.mkdir()
    (outer / "sub").symlink_to(outside)
    (outer / "in.txt").write_bytes(b"x")
    big = open_storage("big", outer.as_uri())
    sub = open_storage("sub", (outer / "sub").as_uri())
    with remembered_folders():
        assert copy_object(CopyRequest(big, "in.txt", sub, "d/s.txt")).state is CopyState.DONE
        with pytest.raises(AccessDenied, match="outside storage"):
            copy_object(CopyRequest(big, "in.txt", big, "sub/d/escaped.txt"))
    assert sorted(p.name for p in (outside / "d").iterdir()) == ["s.txt"]


@pytest.fixture
def small_tree(tmp_path):
    source_root, dst_root, outside = tmp_path / "s", tmp_path / "t", tmp_path / "outside"
    (source_root / "d").mkdir(parents=True)
    dst_root.mkdir()
    outside.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):
        (source_root / "d" / name).write_bytes(os.urandom(4096))
    src, dst = open_storage("src", source_root.as_uri()), open_storage("dst", dst_root.as_uri())
    return src, dst, dst_root, outside


def test_an_existing_destination_is_left_alone_before_the_source_is_read(
    src, dst, dst_root, small, monkeypatch
):
    """overwrite=never: an object already there is SKIPPED, whatever its source is doing."""
    (dst_root / "out" / "deep").mkdir(parents=True)
    (dst_root / "out" / "deep" / "a.bin").write_bytes(b"the user's own")

    def changed(fd: int, size: int) -> bytes:
        raise SourceChanged(size + 1, size)

    monkeypatch.setattr(local_copy, "read_all", changed)
    assert copy_object(request(src, dst)).state is CopyState.SKIPPED
    assert (dst_root / "out" / "deep" / "a.bin").read_bytes() == b"the user's own"


def test_a_destination_that_takes_no_more_fails_the_kernel_copy_as_its_own(
    tmp_path: Path,
) -> None:
    # A process limited to files of 1 KiB: the kernel refuses to grow the copy (EFBIG), as a
    # full disk refuses (ENOSPC). Before, either was blamed on the source.
    (tmp_path / "a").write_bytes(b"x" * 4096)
    probe = f"""
import os, resource, signal
from ferry.engine.local_copy import kernel_copy
from ferry.engine.requests import DestinationError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
source = os.open({str(tmp_path / "a")!r}, os.O_RDONLY)
target = os.open({str(tmp_path / "copy")!r}, os.O_WRONLY | os.O_CREAT)
try:
    kernel_copy(source, target, 4096)
except DestinationError as exc:
    print("destination", exc.__cause__.errno)
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.split() == ["destination", str(errno.EFBIG)], result.stderr


def _once_read_back(monkeypatch, act):
    """``act()`` runs once every block of a pass has been read back (a sum was taken)."""
    real = summed_copy.ReadBack.hexdigest

    def then_act(self):
        digest = real(self)
        act()
        return digest

    monkeypatch.setattr(summed_copy.ReadBack, "hexdigest", then_act)


def _tamper_with_parts(root: Path) -> list[str]:
    """What a writer who opens the destination's temporary files by name could change."""
    changed = []
    for part in root.rglob("*.part"):
        with part.open("r+b") as handle:
            handle.write(b"\0" * 16)
        changed.append(part.name)
    return changed


@pytest.mark.parametrize("through", ["kernel", "stream"])
def test_no_byte_can_change_in_a_copy_after_it_was_read_back(
    src, dst, dst_root, large, through, monkeypatch
):
    """Defect 18.4: bytes changed in the ``.part`` after their block was read back were
    renamed into place under the source's checksum. The copy has no name until then."""
    tampered: list[str] = []
    _once_read_back(monkeypatch, lambda: tampered.extend(_tamper_with_parts(dst_root)))
    bandwidth = 1 << 30 if through == "stream" else None  # a throttle takes the streamed path
    outcome = copy_object(request(src, dst, bandwidth=bandwidth))
    landed = (dst_root / "out" / "deep" / "a.bin").read_bytes()
    assert tampered == []
    assert outcome.checksum == f"adler32:{zlib.adler32(landed):08x}"
    assert landed == large


def test_a_source_changed_in_place_during_a_large_copy_is_not_kept(
    src, src_root, dst, dst_root, large, monkeypatch
):
    """Defect 18.4: a same-size change of the source in place, after its block was summed,
    ended DONE with a copy of neither version. Its modification time shows the change."""
    path = src_root / "d" / "a.bin"
    os.utime(path, (1_000_000_000, 1_000_000_000))

    def rewrite_first_block() -> None:
        with path.open("r+b") as handle:
            handle.write(bytes(b ^ 0xFF for b in large[:16]))

    _once_read_back(monkeypatch, rewrite_first_block)
    with pytest.raises(TransientError, match=r"src:d/a\.bin changed while being copied"):
        copy_object(request(src, dst))
    assert not (dst_root / "out").joinpath("deep", "a.bin").exists()
    assert parts(dst_root) == []


def test_a_small_source_changed_in_place_while_read_is_not_kept(
    src, src_root, dst, dst_root, small, monkeypatch
):
    path = src_root / "d" / "a.bin"
    os.utime(path, (1_000_000_000, 1_000_000_000))
    real_read_all = local_copy.read_all

    def read_then_changed(fd: int, size: int) -> bytes:
        data = real_read_all(fd, size)
        path.write_bytes(bytes(b ^ 0xFF for b in small))  # the same size, new bytes
        return data

    monkeypatch.setattr(local_copy, "read_all", read_then_changed)
    with pytest.raises(TransientError, match=r"src:d/a\.bin changed while being copied"):
        copy_object(request(src, dst))
    assert not (dst_root / "out" / "deep" / "a.bin").exists()


def test_where_no_unnamed_file_can_be_made_the_copy_is_made_at_its_temporary_name(
    src, dst, dst_root, large, monkeypatch
):
    monkeypatch.setattr(local_copy, "_CAN_NAME_UNNAMED", False)
    seen: list[list[str]] = []
    outcome = copy_object(request(src, dst), progress=lambda _n: seen.append(parts(dst_root)))
    assert seen[0] == [".a.bin.ferry-0-1.part"]
    assert outcome.checksum == f"adler32:{zlib.adler32(large):08x}"
    assert (dst_root / "out" / "deep" / "a.bin").read_bytes() == large
    assert parts(dst_root) == []


def test_an_unnamed_copy_replaces_an_existing_destination(src, dst, dst_root, large):
    (dst_root / "out" / "deep").mkdir(parents=True)
    (dst_root / "out" / "deep" / "a.bin").write_bytes(b"older")
    outcome = copy_object(request(src, dst, overwrite=Overwrite.ALWAYS))
    assert outcome.state is CopyState.DONE
    assert (dst_root / "out" / "deep" / "a.bin").read_bytes() == large
    assert parts(dst_root) == []
