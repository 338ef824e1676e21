"""A copy through Python, block by block: read (from an offset, for a resumed copy), sum,
write, and read back into a local file as it is written; the throttle and the checkpoints of a
resumable copy (``engine.resume``) between blocks."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from ferry.engine.checksums import RunningChecksum, new_checksum
from ferry.engine.local_copy import UnnamedFile
from ferry.engine.requests import BLOCK_SIZE, CopyRequest, on_destination
from ferry.engine.resume import PartFile, Resumption
from ferry.engine.stall import watched_reads
from ferry.engine.storages import StorageFS
from ferry.engine.summed_copy import ReadBack
from ferry.engine.throttle import Throttle
from ferry.errors import TransferCanceled

log = logging.getLogger("ferry.engine")


def stream(
    request: CopyRequest,
    source: str,
    temporary: str,
    unnamed: UnnamedFile | None,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
    resumption: Resumption | None = None,
) -> tuple[int, str | None, str | None]:
    """Copy block by block; return the bytes the file holds, the checksum of what was read
    and, into an ``unnamed`` local file, the checksum of what was read back while copying
    (``None`` elsewhere: read back once the copy is complete). A ``resumption`` gives the
    offset to go on from and the running checksums, fed with the bytes kept."""
    dst: Any
    stall_s = request.stall_s if request.source.reads_may_stall else None
    with (
        _source_from(request, source, resumption) as src,
        watched_reads(src, request.source_label, stall_s) as read,
        contextlib.ExitStack() as stack,
    ):
        offset = resumption.offset if resumption else 0
        running = resumption.source_sum if resumption else new_checksum(request.checksum)
        with on_destination:
            if unnamed is None:
                dst = stack.enter_context(_destination_from(request, temporary, offset))
                read_back = None
            else:
                if isinstance(unnamed, PartFile):
                    unnamed.cut(offset)  # where the source is read from (0: no Range)
                dst = unnamed
                read_back = stack.enter_context(_read_back(request, unnamed, resumption))
        copied = _blocks(
            request, read, dst, running, read_back, progress, should_stop, offset, resumption
        )
        with on_destination:
            written = read_back.hexdigest() if read_back is not None else None
    return copied, running.hexdigest() if running is not None else None, written


def _blocks(
    request: CopyRequest,
    read: Callable[[int], bytes],
    dst: Any,
    running: RunningChecksum | None,
    read_back: ReadBack | None,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
    copied: int,
    resumption: Resumption | None,
) -> int:
    throttle = Throttle(request.bandwidth) if request.throttles else None
    while block := read(throttle.block_size if throttle else BLOCK_SIZE):
        if should_stop():
            raise TransferCanceled(request.source_label)
        if throttle is not None and request.bandwidth_now is not None:
            rate = request.bandwidth_now()  # None: unlimited now, where its lease allows that
            throttle.set_rate(rate if request.throttled else rate or throttle.rate)
        if running is not None:
            running.update(block)
        with on_destination:
            dst.write(block)
            if read_back is not None:
                dst.flush()
                read_back.written(copied, len(block))
            copied += len(block)
            if resumption is not None:
                resumption.reached(copied, lambda: _make_durable(dst))
        progress(len(block))
        if throttle is not None:
            throttle.consume(len(block))
    return copied


def _make_durable(dst: Any) -> None:
    """What was written to ``dst`` is on the disk: a local file's (``fsync``), an SFTP
    server's where it offers ``fsync`` (its writes are acknowledged, whichever)."""
    if isinstance(dst, UnnamedFile):
        os.fsync(dst.fd)
        return
    dst.flush()
    fsync = getattr(dst, "fsync", None)
    if fsync is not None:
        with contextlib.suppress(Exception):  # a server without the extension
            fsync()


@contextlib.contextmanager
def _read_back(
    request: CopyRequest, unnamed: UnnamedFile, resumption: Resumption | None
) -> Iterator[ReadBack]:
    checksum = resumption.written_sum if resumption else new_checksum(request.checksum)
    assert checksum is not None  # an unnamed file is made only to be read back
    read_back = ReadBack(unnamed.fd, checksum)
    try:
        yield read_back
    finally:
        read_back.close()


@contextlib.contextmanager
def _destination_from(request: CopyRequest, temporary: str, offset: int) -> Iterator[Any]:
    """The temporary file opened to be written, from ``offset`` (cut back to it)."""
    fs = request.destination.fs
    if not offset:
        with fs.open(temporary, "wb") as handle:
            yield handle
        return
    with fs.open(temporary, "r+b") as handle:
        handle.truncate(offset)
        handle.seek(offset)
        yield handle


@contextlib.contextmanager
def _source_from(request: CopyRequest, path: str, resumption: Resumption | None) -> Iterator[Any]:
    """The object opened to be read once, front to back, from where a resumed copy goes on.
    Over HTTP that is one streamed GET (the default random-access file fetches each block with
    a request of its own), with a ``Range`` from an offset; a server that answers with the
    whole object starts the copy from 0."""
    storage = request.source
    offset = resumption.offset if resumption else 0
    if not storage.is_web:
        with storage.fs.open(path, "rb") as handle:
            if offset:
                handle.seek(offset)
            yield handle
        return
    handle = _ranged(storage, path, offset) if offset else None
    if offset and handle is None and resumption is not None:
        log.warning(
            "%s: the server answered a Range request with the whole object: copying from 0",
            request.source_label,
        )
        resumption.start_over()
    if handle is None:
        handle = storage.fs.open(path, "rb", block_size=0)
    with handle:
        yield handle


def _ranged(storage: StorageFS, path: str, offset: int) -> Any:
    """The object streamed from ``offset``, or ``None`` where the server sends it whole."""
    fs: Any = storage.fs
    headers = {**fs.kwargs.get("headers", {}), "Range": f"bytes={offset}-"}
    # Its size given (any will do for a stream): no HEAD request asked first.
    handle = fs.open(path, "rb", block_size=0, headers=headers, size=offset)
    response = getattr(handle, "r", None)
    ranged = (
        response is not None
        and response.status == 206
        and response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
    )
    if not ranged:
        handle.close()
        return None
    return handle
