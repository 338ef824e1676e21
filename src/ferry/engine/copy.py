"""Copy one object: stream in large blocks, checksum on the fly, write to a temporary name
beside the destination, verify, then move into place. Nothing half-written is ever left behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from ferry.domain.transfers import Checksum, Overwrite
from ferry.engine.checksums import RunningChecksum, format_checksum, new_checksum
from ferry.engine.errors import classify
from ferry.engine.local_copy import (
    WHOLE_READ_MAX,
    ReadBack,
    SourceChanged,
    create_new,
    kernel_copy,
    open_source,
    read_back,
    read_whole,
    write_all,
)
from ferry.engine.stall import DEFAULT_STALL_S, watched_reads
from ferry.engine.storages import StorageFS
from ferry.engine.throttle import Throttle
from ferry.engine.unzip import archive_checksum, is_archive, unpack
from ferry.errors import (
    ChecksumMismatch,
    PermanentError,
    TransferCanceled,
    TransferError,
    TransientError,
)

BLOCK_SIZE = 4 * 1024 * 1024


class CopyState(StrEnum):
    DONE = "DONE"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class CopyRequest:
    source: StorageFS
    source_path: str
    destination: StorageFS
    destination_path: str
    checksum: Checksum = Checksum.ADLER32
    overwrite: Overwrite = Overwrite.NEVER
    tag: str = "0"  # makes the temporary name unique per task and stable across its attempts
    attempt: int = 1
    unzip: bool = False  # an archive is unpacked into the destination's folder
    bandwidth: int | None = None  # bytes per second
    stall_s: float | None = DEFAULT_STALL_S  # no data for that long aborts the attempt

    @property
    def source_label(self) -> str:
        return f"{self.source.name}:{self.source_path}"

    @property
    def destination_label(self) -> str:
        return f"{self.destination.name}:{self.destination_path}"


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    state: CopyState
    bytes: int = 0
    checksum: str | None = None


def temporary_name(destination: str, tag: str, attempt: int = 1) -> str:
    """Beside the destination, hidden, unique per task and attempt: an attempt whose lease was
    taken away never writes into the file of the attempt that replaced it."""
    folder, name = posixpath.split(destination)
    return posixpath.join(folder, f".{name}.ferry-{tag}-{attempt}.part")


def copy_object(
    request: CopyRequest,
    *,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CopyOutcome:
    """Copy one object; raise a ``TransferError`` subclass on failure, with no partial output.
    Errors are classified by the side they come from, and name that side's location."""
    try:
        return _copy(request, progress or (lambda _n: None), should_stop)
    except _DestinationError as exc:
        cause = exc.__cause__ or exc
        raise classify(cause, request.destination_label, destination=True) from cause
    except Exception as exc:
        raise classify(exc, request.source_label) from exc


class _DestinationError(Exception):
    """Carries an exception raised on the destination side out of ``_copy``."""


class _OnDestination:
    """Marks what goes wrong inside as the destination's. A class, not a generator: it is
    entered a few times per object, and a generator-based context manager cost more than the
    system calls it wraps on a small file."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, TransferError):
            raise _DestinationError() from exc


_ON_DESTINATION = _OnDestination()


def _on_destination() -> _OnDestination:
    return _ON_DESTINATION


def _copy(
    request: CopyRequest, progress: Callable[[int], None], should_stop: Callable[[], bool]
) -> CopyOutcome:
    if _plain_local(request) and (done := _copy_small_local(request, progress)) is not None:
        return done
    src_fs, dst_fs = request.source.fs, request.destination.fs
    source = request.source.resolve(request.source_path)
    info = src_fs.info(source)
    if info.get("type") == "directory":
        raise IsADirectoryError(source)
    if request.unzip and is_archive(source):
        return _unpack(request, source, progress, should_stop)
    with _on_destination():
        destination = request.destination.resolve(request.destination_path)
        if dst_fs.exists(destination):
            if dst_fs.isdir(destination):
                raise PermanentError(
                    f"{request.destination_label} is a folder: not replaced by a file"
                )
            if request.overwrite is Overwrite.NEVER:
                return _already_there(request, source, destination, info)
            if not _worth_replacing(request, source, destination, info):
                return CopyOutcome(CopyState.SKIPPED)
        dst_fs.makedirs(posixpath.dirname(destination), exist_ok=True)
        request.destination.resolve(request.destination_path)  # again, now that the folders exist
        remove_earlier_attempts(request.destination, destination, request.tag, request.attempt)
    # Always a temporary name, renamed into place once verified. (Writing an object store's key
    # directly is tempting, but its client commits whatever was written when the file is closed,
    # even on an error: a cut-short upload would replace the user's object.)
    temporary = temporary_name(destination, request.tag, request.attempt)
    with _on_destination():
        clear_temporary(request.destination, temporary)
    try:
        if _kernel_copy_applies(request):
            copied = _kernel_copy(request, source, temporary, progress)
            digest = read_back = None
        else:
            copied, digest, read_back = _stream(request, source, temporary, progress, should_stop)
        with _on_destination():
            request.destination.resolve(request.destination.relative(temporary))
            _verify(request, info, dst_fs.size(temporary), copied)
            _verify_checksum(request, temporary, digest, read_back)
            request.destination.move_into_place(temporary, destination)
    except BaseException:
        with contextlib.suppress(Exception):
            dst_fs.rm_file(temporary)
        raise
    checksum = format_checksum(request.checksum, digest) if digest is not None else None
    return CopyOutcome(CopyState.DONE, copied, checksum)


def _plain_local(request: CopyRequest) -> bool:
    """Local to local through fsspec's own local filesystem (a subclass may do more than
    the system calls), a first attempt, nothing to unpack or to throttle."""
    return (
        type(request.source.fs) is LocalFileSystem
        and type(request.destination.fs) is LocalFileSystem
        and request.attempt == 1
        and not request.unzip
        and not request.bandwidth
    )


def _copy_small_local(request: CopyRequest, progress: Callable[[int], None]) -> CopyOutcome | None:
    """A small object whose destination does not exist yet, in a handful of system calls
    (``engine.local_copy``); ``None`` for anything else (a large object, a folder, an existing
    destination), which the general path handles."""
    source, status = request.source.resolve_local(request.source_path)
    if status is None or stat.S_ISLNK(status.st_mode):
        status = os.stat(source)  # not there (raises), or a link that stays inside the storage
    size = status.st_size
    if not stat.S_ISREG(status.st_mode) or size > WHOLE_READ_MAX:
        return None
    with _on_destination():
        destination, existing = request.destination.resolve_local(request.destination_path)
        if existing is not None:
            return None
    try:
        if request.checksum is Checksum.NONE:  # the kernel copies, as on the general path
            digest = None
            source_fd = open_source(source)
            try:
                with _on_destination():
                    fill = functools.partial(kernel_copy, source_fd, size=size)
                    _write_into_place(request, destination, fill, size, None)
            finally:
                os.close(source_fd)
        else:
            data = read_whole(source, size)
            digest = _digest(request.checksum, data)
            with _on_destination():
                fill = functools.partial(write_all, data=data)
                _write_into_place(request, destination, fill, size, digest)
    except SourceChanged as exc:
        raise TransientError(f"{request.source_label} changed while being copied: {exc}") from exc
    progress(size)
    checksum = format_checksum(request.checksum, digest) if digest is not None else None
    return CopyOutcome(CopyState.DONE, size, checksum)


def _write_into_place(
    request: CopyRequest,
    destination: str,
    fill: Callable[[int], None],
    size: int,
    digest: str | None,
) -> None:
    """A new temporary file filled by ``fill``, verified, then renamed to ``destination``."""
    temporary = temporary_name(destination, request.tag, request.attempt)
    fd = _create_temporary(request, temporary)
    try:
        try:
            fill(fd)
            _verify_written(request, fd, size, digest)
        finally:
            os.close(fd)
        os.rename(temporary, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _create_temporary(request: CopyRequest, temporary: str) -> int:
    try:
        return create_new(temporary)
    except FileNotFoundError:  # the first object of its folder
        os.makedirs(posixpath.dirname(temporary), exist_ok=True)
        request.destination.resolve(request.destination_path)  # again, now that they exist
        return create_new(temporary)


def _verify_written(request: CopyRequest, fd: int, size: int, digest: str | None) -> None:
    """The bytes read back through the same descriptor match the ones read from the source."""
    if digest is None:
        written = os.fstat(fd).st_size
        if written != size:
            raise TransientError(
                f"short write to {request.destination_label}: {written} of {size} bytes"
            )
        return
    back = read_back(fd, size)
    if len(back) != size:
        raise TransientError(
            f"short write to {request.destination_label}: {len(back)} of {size} bytes"
        )
    found = _digest(request.checksum, back)
    if found != digest:
        raise ChecksumMismatch(
            request.destination_label,
            format_checksum(request.checksum, digest),
            format_checksum(request.checksum, found or ""),
        )


def _digest(algorithm: Checksum, data: bytes) -> str | None:
    running = new_checksum(algorithm)
    if running is None:
        return None
    running.update(data)
    return running.hexdigest()


def clear_temporary(storage: StorageFS, temporary: str) -> None:
    """Nothing may already sit at the temporary name: on a local disk a planted symlink there
    would send the write outside the storage."""
    if storage.is_local and os.path.lexists(temporary):
        os.unlink(temporary)


def _kernel_copy_applies(request: CopyRequest) -> bool:
    """Local to local with nothing to compute on the bytes: the kernel copies them
    (``copy_file_range``/``sendfile``) without their passing through Python."""
    return (
        request.source.is_local
        and request.destination.is_local
        and request.checksum is Checksum.NONE
        and not request.bandwidth
    )


def _kernel_copy(
    request: CopyRequest, source: str, temporary: str, progress: Callable[[int], None]
) -> int:
    with _on_destination():
        shutil.copyfile(source, temporary)
        size = os.path.getsize(temporary)
    progress(size)
    return size


def _unpack(
    request: CopyRequest,
    source: str,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> CopyOutcome:
    """The archive's members go into the folder the archive itself would have gone to."""
    folder = posixpath.dirname(request.destination_path)
    with request.source.fs.open(source, "rb") as archive:
        _members, written = unpack(
            archive,
            request.source_label,
            request.destination,
            folder,
            f"{request.tag}-{request.attempt}",
            overwrite=request.overwrite,
            should_stop=should_stop,
            progress=progress,
        )
    checksum = archive_checksum(request.source, source, request.checksum)
    return CopyOutcome(CopyState.DONE, written, checksum)


def remove_earlier_attempts(storage: StorageFS, destination: str, tag: str, attempt: int) -> None:
    """An attempt killed mid-copy leaves its temporary file; the next attempt removes it."""
    for earlier in range(1, attempt):
        with contextlib.suppress(FileNotFoundError):
            storage.fs.rm_file(temporary_name(destination, tag, earlier))


def _already_there(
    request: CopyRequest, source: str, destination: str, info: dict[str, Any]
) -> CopyOutcome:
    """An existing destination is SKIPPED (overwrite=never) unless this task put it there itself:
    an earlier attempt may have moved it into place and died before it could report. On a retry,
    a destination equal to the source in size and checksum is that attempt's verified work."""
    if request.attempt <= 1 or request.destination.fs.size(destination) != info.get("size"):
        return CopyOutcome(CopyState.SKIPPED)
    algorithm = Checksum.ADLER32 if request.checksum is Checksum.NONE else request.checksum
    ours = checksum_of(request.source, source, algorithm)
    if ours != checksum_of(request.destination, destination, algorithm):
        return CopyOutcome(CopyState.SKIPPED)
    shown = format_checksum(algorithm, ours) if request.checksum is not Checksum.NONE else None
    return CopyOutcome(CopyState.DONE, int(info["size"]), shown)


def _worth_replacing(
    request: CopyRequest, source: str, destination: str, info: dict[str, Any]
) -> bool:
    """``if-newer``: the source was modified after the destination (unknown times: replace).
    ``if-different``: sizes differ, or else checksums do. ``always``: yes."""
    existing = request.destination.fs.info(destination)
    if request.overwrite is Overwrite.IF_NEWER:
        ours, theirs = modified(info), modified(existing)
        return ours is None or theirs is None or ours > theirs
    if request.overwrite is Overwrite.IF_DIFFERENT:
        if info.get("size") != existing.get("size"):
            return True
        algorithm = Checksum.ADLER32 if request.checksum is Checksum.NONE else request.checksum
        ours_sum = checksum_of(request.source, source, algorithm)
        return ours_sum != checksum_of(request.destination, destination, algorithm)
    return True


def modified(info: dict[str, Any]) -> float | None:
    """A file's modification time (POSIX seconds) from whichever key its backend uses."""
    for key in ("mtime", "LastModified", "last_modified", "modified", "updated"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def checksum_of(storage: StorageFS, path: str, algorithm: Checksum) -> str:
    running = new_checksum(algorithm)
    assert running is not None
    with storage.fs.open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            running.update(block)
    return running.hexdigest()


def _stream(
    request: CopyRequest,
    source: str,
    temporary: str,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> tuple[int, str | None, str | None]:
    """Copy block by block; return the bytes copied, the checksum of what was read and, on a
    local disk, the checksum of what was read back while copying (``None`` elsewhere: read
    back once the copy is complete)."""
    running = new_checksum(request.checksum)
    src: Any
    dst: Any
    stall_s = None if request.source.is_local else request.stall_s
    with (
        _open_for_streaming(request.source, source) as src,
        watched_reads(src, request.source_label, stall_s) as read,
    ):
        with _on_destination():
            dst = request.destination.fs.open(temporary, "wb")
            read_back = _read_back_beside(request, temporary)
        try:
            with dst:
                copied = _blocks(request, read, dst, running, read_back, progress, should_stop)
            with _on_destination():
                written = read_back.hexdigest() if read_back is not None else None
        finally:
            if read_back is not None:
                read_back.close()
    return copied, running.hexdigest() if running is not None else None, written


def _blocks(
    request: CopyRequest,
    read: Callable[[int], bytes],
    dst: Any,
    running: RunningChecksum | None,
    read_back: ReadBack | None,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> int:
    copied = 0
    throttle = Throttle(request.bandwidth) if request.bandwidth else None
    block_size = throttle.block_size if throttle else BLOCK_SIZE
    while block := read(block_size):
        if should_stop():
            raise TransferCanceled(request.source_label)
        if running is not None:
            running.update(block)
        with _on_destination():
            dst.write(block)
            if read_back is not None:
                dst.flush()
                read_back.written(copied, len(block))
        copied += len(block)
        progress(len(block))
        if throttle is not None:
            throttle.consume(len(block))
    return copied


def _read_back_beside(request: CopyRequest, temporary: str) -> ReadBack | None:
    """A file on a local disk is read back while it is written; other backends may show
    nothing of an object before it is closed (S3), or nothing at all (mock://)."""
    if type(request.destination.fs) is not LocalFileSystem:
        return None
    checksum = new_checksum(request.checksum)
    return ReadBack(temporary, checksum) if checksum is not None else None


def _open_for_streaming(storage: StorageFS, path: str) -> Any:
    """The object opened to be read once, front to back. Over HTTP that is one streamed GET:
    the default random-access file fetches each block with a request of its own."""
    if storage.is_web:
        return storage.fs.open(path, "rb", block_size=0)
    return storage.fs.open(path, "rb")


def _verify_checksum(
    request: CopyRequest, temporary: str, digest: str | None, read_back: str | None
) -> None:
    """Read back what was written and compare it with what was read: a byte damaged on the way
    (a flaky disk, a proxy, a backend bug) is a ChecksumMismatch, retried, never moved into
    place. A local file was read back while it was written (``read_back``)."""
    if digest is None or getattr(request.destination.fs, "swallows", False):
        return  # nothing to read back from a destination that keeps nothing (mock://)
    written = read_back or checksum_of(request.destination, temporary, request.checksum)
    if written != digest:
        raise ChecksumMismatch(
            request.destination_label,
            format_checksum(request.checksum, digest),
            format_checksum(request.checksum, written),
        )


def _verify(request: CopyRequest, info: dict[str, Any], written: int, copied: int) -> None:
    expected = info.get("size")
    if written != copied:
        raise TransientError(
            f"short write to {request.destination_label}: {written} of {copied} bytes"
        )
    if expected is not None and expected != copied:
        raise TransientError(
            f"{request.source_label} changed while being copied:"
            f" {copied} bytes read, {expected} expected"
        )
