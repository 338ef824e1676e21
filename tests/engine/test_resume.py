"""Resume of an interrupted large copy (engine.resume), between local disks: an attempt that
fails mid-copy keeps its ``.part`` and checkpoint record, the next continues from the last
checkpoint once it has verified it, and anything doubtful starts from byte 0."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ferry.domain.options import Checksum
from ferry.engine.copy import BLOCK_SIZE, CopyRequest, CopyState, copy_object
from ferry.engine.resume import checkpoint_every
from ferry.engine.storages import open_storage
from ferry.errors import TransferCanceled, TransferError

SIZE = 8 * 1024 * 1024 + 12_345
THRESHOLD = 1024 * 1024  # checkpoints every 256 KiB
STOP_AT = 5 * 1024 * 1024


@pytest.fixture
def payload(src_root: Path) -> bytes:
    data = os.urandom(SIZE)
    (src_root / "big.bin").write_bytes(data)
    return data


def request(src, dst, attempt: int, **kwargs) -> CopyRequest:
    return CopyRequest(
        src,
        "big.bin",
        dst,
        "out/big.bin",
        tag="7",
        attempt=attempt,
        resume_min_bytes=THRESHOLD,
        **kwargs,
    )


class Interrupted(Exception):
    """What the first attempt is stopped with, mid-copy (a connection lost, a disk error)."""


def fail_after(limit: int, moved: list[int] | None = None):
    moved = [0] if moved is None else moved

    def progress(n: int) -> None:
        moved[0] += n
        if moved[0] >= limit:
            raise Interrupted(f"stopped after {moved[0]} bytes")

    return progress


def counting():
    moved = [0]

    def progress(n: int) -> None:
        moved[0] += n

    return progress, moved


def interrupted(src, dst, **kwargs) -> int:
    """The first attempt, failed after ``STOP_AT`` bytes or a little more; what it moved."""
    moved = [0]
    with pytest.raises(TransferError, match="stopped after"):
        copy_object(request(src, dst, 1, **kwargs), progress=fail_after(STOP_AT, moved))
    return moved[0]


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".*"))


PATHS = [
    pytest.param({}, id="kernel"),
    pytest.param({"bandwidth": 1 << 34}, id="stream"),  # a throttle takes the Python path
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("checksum", [Checksum.ADLER32, Checksum.SHA256, Checksum.NONE])
def test_a_copy_that_failed_midway_goes_on_from_its_last_checkpoint(
    src, dst, dst_root, payload, path, checksum
):
    first = interrupted(src, dst, checksum=checksum, **path)
    kept = leftovers(dst_root)
    assert kept == [".big.bin.ferry-7-1.part", ".big.bin.ferry-7-1.part.resume"]

    progress, moved = counting()
    outcome = copy_object(request(src, dst, 2, checksum=checksum, **path), progress=progress)

    lag = max(checkpoint_every(THRESHOLD), BLOCK_SIZE)  # the kernel copies whole blocks
    assert outcome.state is CopyState.DONE
    assert outcome.bytes == SIZE
    assert STOP_AT - lag <= outcome.resumed <= first
    assert moved[0] == SIZE - outcome.resumed
    assert (dst_root / "out" / "big.bin").read_bytes() == payload
    if checksum is Checksum.SHA256:  # the whole file's, not the part moved last
        assert outcome.checksum == f"sha256:{hashlib.sha256(payload).hexdigest()}"
    if checksum is Checksum.NONE:
        assert outcome.checksum is None
    assert leftovers(dst_root) == []


def _part(dst_root: Path) -> Path:
    return dst_root / "out" / ".big.bin.ferry-7-1.part"


def _record(dst_root: Path) -> Path:
    return dst_root / "out" / ".big.bin.ferry-7-1.part.resume"


def _flip_a_byte(dst_root: Path) -> None:
    with _part(dst_root).open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0x01]))


def _rewrite_record(dst_root: Path, **changes: object) -> None:
    record = json.loads(_record(dst_root).read_bytes())
    _record(dst_root).write_text(json.dumps({**record, **changes}))


DOUBTS = {
    "tampered": _flip_a_byte,
    "no-record": lambda root: _record(root).unlink(),
    "unreadable-record": lambda root: _record(root).write_bytes(b'{"format": 1, "off'),
    "part-shorter": lambda root: os.truncate(_part(root), 1000),
    "record-longer": lambda root: _rewrite_record(root, offset=SIZE - 1),
    "other-source": lambda root: _rewrite_record(root, source="src:other.bin"),
}


@pytest.mark.parametrize("doubt", DOUBTS.values(), ids=DOUBTS.keys())
def test_anything_doubtful_starts_from_byte_0(src, dst, dst_root, payload, doubt, caplog):
    interrupted(src, dst)
    doubt(dst_root)

    progress, moved = counting()
    outcome = copy_object(request(src, dst, 2), progress=progress)

    assert (outcome.state, outcome.resumed, moved[0]) == (CopyState.DONE, 0, SIZE)
    assert (dst_root / "out" / "big.bin").read_bytes() == payload
    assert leftovers(dst_root) == []
    assert "was not kept" in caplog.text
    assert "copying from byte 0" in caplog.text


def test_a_source_changed_since_the_part_was_written_starts_from_0(
    src, src_root, dst, dst_root, payload, caplog
):
    interrupted(src, dst)
    changed = bytearray(payload)
    changed[10] ^= 0xFF  # the same size, a new modification time
    (src_root / "big.bin").write_bytes(bytes(changed))
    os.utime(src_root / "big.bin", ns=(1, 1))

    outcome = copy_object(request(src, dst, 2))

    assert (outcome.state, outcome.resumed) == (CopyState.DONE, 0)
    assert (dst_root / "out" / "big.bin").read_bytes() == bytes(changed)
    assert "the source changed" in caplog.text


def test_a_canceled_copy_leaves_neither_its_part_nor_its_record(src, dst, dst_root, payload):
    moved = [0]

    def progress(n: int) -> None:
        moved[0] += n

    with pytest.raises(TransferCanceled):
        copy_object(
            request(src, dst, 1, bandwidth=1 << 34),
            progress=progress,
            should_stop=lambda: moved[0] >= STOP_AT,
        )
    assert leftovers(dst_root) == []


def test_a_copy_stopped_by_its_agent_shutting_down_is_resumed_by_the_next(
    src, dst, dst_root, payload
):
    moved = [0]

    def progress(n: int) -> None:
        moved[0] += n

    stopped = request(src, dst, 1, bandwidth=1 << 34, stopped_by_agent=lambda: True)
    with pytest.raises(TransferCanceled):
        copy_object(stopped, progress=progress, should_stop=lambda: moved[0] >= STOP_AT)
    assert len(leftovers(dst_root)) == 2  # the .part and its record

    outcome = copy_object(request(src, dst, 2))

    assert outcome.resumed >= STOP_AT - BLOCK_SIZE
    assert (dst_root / "out" / "big.bin").read_bytes() == payload
    assert leftovers(dst_root) == []


def test_a_small_object_keeps_nothing_when_it_fails(src, src_root, dst, dst_root):
    (src_root / "big.bin").write_bytes(os.urandom(THRESHOLD - 1))
    with pytest.raises(TransferError, match="stopped after"):
        copy_object(request(src, dst, 1), progress=fail_after(THRESHOLD // 2))
    assert leftovers(dst_root) == []


def test_a_part_left_with_no_record_before_its_first_checkpoint_is_removed(
    src, dst, dst_root, payload
):
    with pytest.raises(TransferError, match="stopped after"):
        copy_object(request(src, dst, 1), progress=fail_after(1))
    assert leftovers(dst_root) == []  # nothing worth keeping was recorded yet


@pytest.fixture
def web_without_ranges(src_root: Path):
    """A real HTTP server on loopback that serves ``src_root`` and ignores Range headers
    (the standard library's: it always answers 200 with the whole file)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(src_root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield open_storage("web", f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_ignores_ranges_has_the_copy_start_from_0(
    web_without_ranges, dst, dst_root, payload, caplog
):
    interrupted(web_without_ranges, dst)
    assert len(leftovers(dst_root)) == 2

    progress, moved = counting()
    outcome = copy_object(request(web_without_ranges, dst, 2), progress=progress)

    assert (outcome.state, outcome.resumed, moved[0]) == (CopyState.DONE, 0, SIZE)
    assert (dst_root / "out" / "big.bin").read_bytes() == payload
    assert leftovers(dst_root) == []
    assert "answered a Range request with the whole object" in caplog.text
