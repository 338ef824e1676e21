"""Copy one object: stream in large blocks, checksum on the fly, write to a temporary name
beside the destination, verify, then move into place. Nothing half-written is ever left behind.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Callable
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from ferry.domain.options import Checksum
from ferry.domain.sync import EXISTS, SYNC_EXISTS, Action, Decision
from ferry.engine import resume
from ferry.engine.checksums import format_checksum
from ferry.engine.errors import classify
from ferry.engine.local_copy import UnnamedFile, copy_small_local, plain_local
from ferry.engine.requests import (
    BLOCK_SIZE,
    NO_FOLDERS,
    CopyOutcome,
    CopyRequest,
    CopyState,
    DestinationError,
    SourceChanged,
    on_destination,
    temporary_name,
)
from ferry.engine.storages import StorageFS, redact
from ferry.engine.streaming import stream as _stream
from ferry.engine.summed_copy import copy_summed
from ferry.engine.sync import checksum_of, judge, modified, plan_object, source_info
from ferry.engine.unzip import archive_checksum, is_archive, unpack
from ferry.errors import (
    PermanentError,
    TransferCanceled,
    TransferError,
)

__all__ = [  # what a copy is asked and answers lives in engine.requests, shown here too
    "BLOCK_SIZE",
    "CopyOutcome",
    "CopyRequest",
    "CopyState",
    "checksum_of",
    "clear_temporary",
    "copy_object",
    "modified",
    "plan_copy",
    "remove_earlier_attempts",
    "temporary_name",
]


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
    except Exception as exc:
        raise classified(request, exc) from _cause(exc)


def plan_copy(request: CopyRequest) -> Decision:
    """What ``copy_object`` would do with ``request`` now (``engine.sync.plan_object``),
    writing nothing; raises the error it would raise before it began, classified as it."""
    try:
        return plan_object(request)
    except Exception as exc:
        raise classified(request, exc) from _cause(exc)


def _cause(exc: Exception) -> BaseException:
    """What went wrong: a destination's error is carried as the cause of ``DestinationError``."""
    return (exc.__cause__ or exc) if isinstance(exc, DestinationError) else exc


def classified(request: CopyRequest, exc: Exception) -> TransferError:
    """``exc``, raised by a copy of ``request``, as the ferry error it stands for: named after
    the side it came from, its message free of either storage's credentials."""
    if isinstance(exc, DestinationError):
        cause = exc.__cause__ or exc
        error = classify(cause, request.destination_label, destination=True)
        error.on_destination = True  # no other replica of the source can help with it
        return _without_secrets(error, request)
    return _without_secrets(classify(exc, request.source_label), request)


def _without_secrets(error: TransferError, request: CopyRequest) -> TransferError:
    """The error, its message cut free of either storage's credentials (a backend may quote
    what it was given: a password in a TypeError reached outcomes, health and logs)."""
    message = redact(error.message, request.source.secrets | request.destination.secrets)
    if message != error.message:
        error.message = message
        error.args = (message, *error.args[1:])
    return error


def _copy(
    request: CopyRequest, progress: Callable[[int], None], should_stop: Callable[[], bool]
) -> CopyOutcome:
    if request.folder:
        return _make_folder(request)
    if plain_local(request) and (done := copy_small_local(request, progress)) is not None:
        return done
    dst_fs = request.destination.fs
    source, info = source_info(request)
    if request.unzip and is_archive(source):
        return _unpack(request, source, progress, should_stop)
    with on_destination:
        destination = request.destination.resolve(request.destination_path)
    decision = judge(request, source, info, destination)
    if decision.action is Action.SKIP:
        if decision.reason in (EXISTS, SYNC_EXISTS):
            return _already_there(request, source, destination, info, decision.reason)
        return CopyOutcome(CopyState.SKIPPED, reason=decision.reason)
    with on_destination:
        dst_fs.makedirs(posixpath.dirname(destination), exist_ok=True)
        if request.destination.is_local:  # a folder just made could be a link planted meanwhile
            request.destination.resolve(request.destination_path)
    # Always a temporary name, renamed into place once verified. (Writing an object store's key
    # directly is tempting, but its client commits whatever was written when the file is closed,
    # even on an error: a cut-short upload would replace the user's object.)
    temporary = temporary_name(destination, request.tag, request.attempt)
    with on_destination:
        clear_temporary(request.destination, temporary)
        resumption = None
        if resume.resumable(request, info.get("size")):  # an earlier .part may be kept
            resumption = resume.begin(request, destination, list(_identity(info)))
        remove_earlier_attempts(request.destination, destination, request.tag, request.attempt)
    keep = False  # the .part and its record, for the next attempt to continue
    try:
        with contextlib.ExitStack() as stack:
            with on_destination:
                unnamed = _unnamed(request, temporary, stack, resumption)
            try:
                copied, digest, read_back = _fill(
                    request, source, temporary, unnamed, progress, should_stop, resumption
                )
            except SourceChanged:
                raise
            except TransferCanceled:
                keep = _resumable_later(request, resumption, stopped=True)
                raise
            except Exception:
                keep = _resumable_later(request, resumption, stopped=False)
                raise
            if request.checksum is Checksum.NONE:  # summed only for the checkpoints
                digest = read_back = None
            _unchanged_since(request, source, info)
            _same_when_read_again(request, source, digest)
            request.check_expected(digest)
            with on_destination:
                size = os.fstat(unnamed.fd).st_size if unnamed else dst_fs.size(temporary)
                _verify(request, info, size, copied)
                _verify_checksum(request, temporary, digest, read_back)
                _move_into_place(request, temporary, unnamed, destination)
    except BaseException:
        if not keep:
            with contextlib.suppress(Exception):
                dst_fs.rm_file(temporary)
        raise
    finally:
        if resumption is not None and not keep:  # moved into place, or not to be continued
            resumption.remove()
    checksum = format_checksum(request.checksum, digest) if digest is not None else None
    kept = resumption.offset if resumption is not None else 0
    return CopyOutcome(CopyState.DONE, copied, checksum, resumed=kept)


def _resumable_later(
    request: CopyRequest, resumption: resume.Resumption | None, *, stopped: bool
) -> bool:
    """Whether a copy that ended before it was complete keeps its .part and record for the
    next attempt: it has recorded a checkpoint, and it failed, or was stopped by its agent
    shutting down (a cancel removes them)."""
    if resumption is None or not resumption.recorded:
        return False
    return not stopped or (request.stopped_by_agent is not None and request.stopped_by_agent())


def _make_folder(request: CopyRequest) -> CopyOutcome:
    """An empty folder of a tree, made at the destination (``rclone
    --create-empty-src-dirs``, by default here); SKIPPED where folders exist only as the
    prefixes of objects."""
    fs = request.destination.fs
    with on_destination:
        folder = request.destination.resolve(request.destination_path)
        if fs.exists(folder) and not fs.isdir(folder):
            raise PermanentError(f"{request.destination_label} is a file: no folder made there")
        fs.makedirs(folder, exist_ok=True)
        if not fs.isdir(folder):
            return CopyOutcome(CopyState.SKIPPED, reason=NO_FOLDERS)
    return CopyOutcome(CopyState.DONE)


def _unnamed(
    request: CopyRequest,
    temporary: str,
    stack: contextlib.ExitStack,
    resumption: resume.Resumption | None,
) -> UnnamedFile | None:
    """On a local disk, with a checksum to verify, the copy is written to a file that has no
    name until it is moved into place (``UnnamedFile``): no other process can open it between
    the read-back of a block and the rename. A resumable copy's has a name from the start
    (``PartFile``): one that outlives its attempt."""
    if type(request.destination.fs) is not LocalFileSystem:
        return None
    if resumption is not None:
        return stack.enter_context(resume.PartFile(temporary, resumption.offset))
    if request.checksum is Checksum.NONE:
        return None
    return stack.enter_context(UnnamedFile(temporary))


def _fill(
    request: CopyRequest,
    source: str,
    temporary: str,
    unnamed: UnnamedFile | None,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
    resumption: resume.Resumption | None,
) -> tuple[int, str | None, str | None]:
    """The copy made, by the kernel or through Python: the bytes copied, the checksum of what
    was read, and that of what was read back while writing (``None`` where it was not)."""
    if not _kernel_copy_applies(request):
        return _stream(request, source, temporary, unnamed, progress, should_stop, resumption)
    if unnamed is None:  # no checksum: the kernel copies, as ``cp`` does
        return _kernel_copy(request, source, temporary, progress), None, None
    return copy_summed(request, source, unnamed, progress, should_stop, resumption)


def _move_into_place(
    request: CopyRequest, temporary: str, unnamed: UnnamedFile | None, destination: str
) -> None:
    if unnamed is not None and unnamed.unnamed:
        unnamed.move_into_place(destination)
        return
    if request.destination.is_local:  # nor may the temporary file have become a link
        request.destination.resolve(request.destination.relative(temporary))
    request.destination.move_into_place(temporary, destination)


def clear_temporary(storage: StorageFS, temporary: str) -> None:
    """Nothing may already sit at the temporary name: on a local disk a planted symlink there
    would send the write outside the storage."""
    if storage.is_local and os.path.lexists(temporary):
        os.unlink(temporary)


def _kernel_copy_applies(request: CopyRequest) -> bool:
    """Local to local through fsspec's own local filesystem (a subclass may do more than the
    system calls), unthrottled: the kernel copies the bytes (``sendfile``) without their
    passing through Python, and with a checksum both ends are summed beside it
    (``copy_summed``)."""
    return (
        type(request.source.fs) is LocalFileSystem
        and type(request.destination.fs) is LocalFileSystem
        and not request.throttles
    )


def _kernel_copy(
    request: CopyRequest, source: str, temporary: str, progress: Callable[[int], None]
) -> int:
    with on_destination:
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
            max_bytes=request.unzip_max_bytes,
            should_stop=should_stop,
            progress=progress,
        )
    checksum = archive_checksum(request.source, source, request.checksum)
    return CopyOutcome(CopyState.DONE, written, checksum)


def remove_earlier_attempts(storage: StorageFS, destination: str, tag: str, attempt: int) -> None:
    """An attempt killed mid-copy leaves its temporary file, and a resumable one its record
    (what the next attempt did not take over); the next attempt removes them."""
    for earlier in range(1, attempt):
        part = temporary_name(destination, tag, earlier)
        for path in (part, resume.record_name(part)):
            with contextlib.suppress(FileNotFoundError):
                storage.fs.rm_file(path)


def _already_there(
    request: CopyRequest, source: str, destination: str, info: dict[str, Any], why: str
) -> CopyOutcome:
    """An existing destination is SKIPPED (overwrite never, sync exists) unless this task put
    it there itself: an earlier attempt may have moved it into place and died before it could
    report. On a retry, a destination equal to the source in size and checksum is that
    attempt's verified work."""
    if request.attempt <= 1 or request.destination.fs.size(destination) != info.get("size"):
        return CopyOutcome(CopyState.SKIPPED, reason=why)
    algorithm = Checksum.ADLER32 if request.checksum is Checksum.NONE else request.checksum
    ours = checksum_of(request.source, source, algorithm)
    if ours != checksum_of(request.destination, destination, algorithm):
        return CopyOutcome(CopyState.SKIPPED, reason=why)
    shown = format_checksum(algorithm, ours) if request.checksum is not Checksum.NONE else None
    return CopyOutcome(CopyState.DONE, int(info["size"]), shown)


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
        raise request.mismatch(digest, written)


def _same_when_read_again(request: CopyRequest, source: str, digest: str | None) -> None:
    """With ``verify_source``, the source is read once more, apart from the copy, and must sum
    to what the copy read: the copy's checksum is computed on the bytes as they were read, so a
    byte damaged on its way out of the source (a flaky disk or controller, a backend's bug) is
    written, read back and matched; only an independent read sees it."""
    if not request.verify_source or digest is None:
        return
    again = checksum_of(request.source, source, request.checksum)
    if again != digest:
        raise request.source_reads_differ(digest, again)


def _unchanged_since(request: CopyRequest, source: str, before: dict[str, Any]) -> None:
    """The source is still the file it was when the copy began (its size, modification time,
    inode or entity tag): a same-size change in place makes a copy of neither version, with a
    checksum that matches it. Asked of a local source always (one ``stat``), of another only
    for a large object, where one more request beside its transfer is noise."""
    if not request.source.is_local and (before.get("size") or 0) < BLOCK_SIZE:
        return
    if _identity(request.source.fs.info(source)) != _identity(before):
        raise request.source_modified()


def _identity(info: dict[str, Any]) -> tuple[Any, ...]:
    return info.get("size"), modified(info), info.get("ino"), info.get("ETag")


def _verify(request: CopyRequest, info: dict[str, Any], written: int, copied: int) -> None:
    expected = info.get("size")
    if written != copied:
        raise request.short_write(written, copied)
    if expected is not None and expected != copied:
        raise request.source_changed(copied, expected)
