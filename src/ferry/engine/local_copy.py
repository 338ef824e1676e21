"""A small object from one local disk to another in a handful of system calls.

A tree of thousands of small files spends its time per file, not per byte: through fsspec a
4 KiB copy made some fifteen filesystem calls (info, exists, isdir, makedirs, three opens, size,
move), each with its own path handling, and the Python around them cost more than the bytes.
Here the object is read in one call, written in one, read back from the same descriptor and
renamed into place, each relative to its folder's descriptor (``copy_small_local``, which
``copy_object`` tries first when ``plain_local`` says it may). A large copy to a local disk
is written to a file with no name (``UnnamedFile``) and read back while it is written
(``engine.summed_copy``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Callable

from fsspec.implementations.local import LocalFileSystem

from ferry.domain.options import Checksum
from ferry.engine.checksums import format_checksum, new_checksum
from ferry.engine.requests import (
    CopyOutcome,
    CopyRequest,
    CopyState,
    DestinationError,
    SourceChanged,
    on_destination,
    temporary_name,
)
from ferry.engine.storages import batch_folders, close_folders

# An object up to this size is read into memory in one call (larger ones are streamed).
WHOLE_READ_MAX = 4 * 1024 * 1024

_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def read_all(fd: int, size: int) -> bytes:
    """The whole file open at ``fd``, which ``fstat`` said is ``size`` bytes long; one byte
    more is asked for so that a file still growing is caught."""
    data = os.read(fd, size + 1)
    while len(data) < size and (more := os.read(fd, size + 1 - len(data))):
        data += more  # a short read (a network filesystem, a signal)
    if len(data) != size:
        raise SourceChanged(len(data), size)
    return data


def create_new(path: str) -> int:
    """A descriptor on a new file at ``path``, opened for writing and reading back. Whatever
    sits at that name (an earlier attempt's leftover, a planted link) is removed first: the
    name is this task's own, and ``O_NOFOLLOW`` with ``O_EXCL`` never writes through a link."""
    try:
        return os.open(path, _CREATE, 0o666)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, _CREATE, 0o666)


class UnnamedFile:
    """A new file in the folder of ``temporary`` that has no name while it is written, read
    back and verified (``O_TMPFILE``): no other process can open it, so the bytes read back
    are the ones that get a name (a byte changed in a named ``.part`` after its block was read
    back was renamed into place under the source's checksum). ``move_into_place`` links it at
    its final name, or, when something is there to replace, at ``temporary`` and renames it
    over. Where the filesystem makes no unnamed file, it is made at ``temporary`` from the
    start. A copy killed while the file has no name leaves nothing behind."""

    def __init__(self, temporary: str) -> None:
        self.path = temporary
        fd = _unnamed_in(os.path.dirname(temporary) or ".")
        self.unnamed = fd is not None
        self.fd: int = create_new(temporary) if fd is None else fd

    def write(self, block: bytes) -> None:
        write_all(self.fd, block)

    def flush(self) -> None:
        """Nothing is buffered: each block is in the file once ``write`` returns."""

    def move_into_place(self, final: str) -> None:
        """Give the unnamed file its ``final`` name (one made at ``temporary`` from the start
        is renamed by the caller, who checks first that no link took its place)."""
        try:
            _link(self.fd, final)
        except FileExistsError:  # replaced: through a name of its own, then a rename
            self._give_name()
            os.rename(self.path, final)

    def _give_name(self) -> None:
        try:
            _link(self.fd, self.path)
        except FileExistsError:  # an earlier attempt's leftover, or a planted link
            os.unlink(self.path)
            _link(self.fd, self.path)
        self.unnamed = False

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> UnnamedFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _link(fd: int, path: str) -> None:
    """Name the file open at ``fd``: ``linkat`` through its ``/proc`` entry, followed (a
    directory descriptor makes ``os.link`` call ``linkat``; plain ``link`` would try to link
    the ``/proc`` entry itself)."""
    descriptors = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=descriptors, follow_symlinks=True)
    finally:
        os.close(descriptors)


_UNNAMED_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})


def _unnamed_in(folder: str) -> int | None:
    """A descriptor on a new unnamed file in ``folder``, or ``None`` where there is none to be
    had (not Linux, no ``/proc`` to name it through, a filesystem without ``O_TMPFILE``)."""
    if not _CAN_NAME_UNNAMED:
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno in _UNNAMED_UNSUPPORTED:
            return None
        raise


_CAN_NAME_UNNAMED = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_back(fd: int, size: int) -> bytes:
    """What the file now holds, read through the same descriptor: one byte more than was
    written is asked for, so that anything extra shows. A read of a local file stops short
    only at its end, so one that brought ``size`` bytes is not followed by another (it was,
    to find nothing, once per small object)."""
    data = os.pread(fd, size + 1, 0)
    while len(data) < size and (more := os.pread(fd, size + 1 - len(data), len(data))):
        data += more
    return data


def open_source(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


# What only a destination fails a kernel copy with: full, over its quota, a file too large for
# it, read-only. (A failed read, EIO, may be either side's: it stays the source's.)
_DESTINATION_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def send(fd: int, source_fd: int, offset: int, count: int) -> int:
    """``os.sendfile``, its errors that only a destination gives marked as the destination's,
    so that the error names the destination rather than the source."""
    try:
        return os.sendfile(fd, source_fd, offset, count)
    except OSError as exc:
        if exc.errno in _DESTINATION_ERRNOS:
            raise DestinationError() from exc
        raise


def kernel_copy(source_fd: int, fd: int, size: int) -> None:
    """``size`` bytes from ``source_fd`` to ``fd`` by the kernel, none through Python; one
    byte more is tried so that a file still growing is caught."""
    copied = 0
    while copied < size and (sent := send(fd, source_fd, copied, size - copied)):
        copied += sent
    if copied < size or send(fd, source_fd, copied, 1):
        raise SourceChanged(copied if copied < size else size + 1, size)


def plain_local(request: CopyRequest) -> bool:
    """Local to local through fsspec's own local filesystem (a subclass may do more than
    the system calls), a first attempt, nothing to unpack or to throttle, no second read."""
    return (
        type(request.source.fs) is LocalFileSystem
        and type(request.destination.fs) is LocalFileSystem
        and request.attempt == 1
        and not request.unzip
        and not request.throttles
        and not request.verify_source
    )


def copy_small_local(request: CopyRequest, progress: Callable[[int], None]) -> CopyOutcome | None:
    """A small object whose destination does not exist yet, in a handful of system calls
    (``engine.local_copy``); ``None`` for anything else (a large object, a folder, an existing
    destination, a link on either path), which the general path handles.

    Both paths are walked down from their roots through folder descriptors that follow no
    link (``StorageFS.folder_at``), and the file is opened, created and renamed relative to
    its folder's: a link planted on the way after a check cannot lead the copy elsewhere,
    since nothing is looked up by its path twice. Inside ``remembered_folders`` the folders
    stay open for the batch."""
    batch = batch_folders()
    opened = {} if batch is None else batch
    try:
        return _copy_small(request, progress, opened)
    finally:
        if batch is None:
            close_folders(opened)


_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a pipe: no wait at open


def _copy_small(
    request: CopyRequest, progress: Callable[[int], None], opened: dict[tuple[str, str], int]
) -> CopyOutcome | None:
    folder, name = _split(request.source.confined(request.source_path))
    above = request.source.folder_at(folder, opened, create=False) if name else None
    if above is None:
        return None  # a link on the way, or no such folder: the general path says which
    try:
        source_fd = os.open(name, _READ, dir_fd=above)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None  # a link: the general path follows it if it stays inside
        raise  # not there, not readable: the source's error, as it would be anywhere
    try:
        status = os.fstat(source_fd)
        size = status.st_size
        if not stat.S_ISREG(status.st_mode) or size > WHOLE_READ_MAX:
            return None
        with on_destination:
            folder, name = _split(request.destination.confined(request.destination_path))
            if not name:
                return None  # the root itself
            # Looked at before the source is read, without making folders: a folder not
            # there yet holds nothing, and one that is there is the one written into below.
            above = request.destination.folder_at(folder, opened, create=False, writing=True)
            if above is not None and _is_there(name, above):
                return None  # the general path applies the overwrite policy
        if request.checksum is Checksum.NONE:  # the kernel copies, as on the general path
            data, digest = None, None
            fill = functools.partial(_kernel_fill, request, source_fd, status)
        else:  # read first: a source that changed leaves no folder made for it
            data = read_all(source_fd, size)
            unchanged(request, source_fd, status)
            digest = _digest_of(request.checksum, data)
            request.check_expected(digest)
            fill = functools.partial(write_all, data=data)
        with on_destination:
            if above is None:  # missing folders are made now that the source has been read
                above = request.destination.folder_at(folder, opened, create=True, writing=True)
            if above is None:
                return None  # a link, or a file, on the way
            _write_into_place(request, above, name, fill, size, data)
    except SourceChanged as exc:
        raise request.source_changed(exc.read, exc.expected) from exc
    finally:
        os.close(source_fd)
    progress(size)
    checksum = format_checksum(request.checksum, digest) if digest is not None else None
    return CopyOutcome(CopyState.DONE, size, checksum)


def _kernel_fill(request: CopyRequest, source_fd: int, status: os.stat_result, fd: int) -> None:
    kernel_copy(source_fd, fd, size=status.st_size)
    unchanged(request, source_fd, status)


def unchanged(request: CopyRequest, source_fd: int, before: os.stat_result) -> None:
    """The source open at ``source_fd`` has not been written to since ``before`` was taken:
    a change in place that keeps the size shows only in the modification time."""
    after = os.fstat(source_fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise request.source_modified()


def _is_there(name: str, folder: int) -> bool:
    try:
        os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        return False
    return True


def _split(relative: str) -> tuple[str, str]:
    folder, _, name = relative.rpartition("/")
    return folder, name


def _write_into_place(
    request: CopyRequest,
    folder: int,
    name: str,
    fill: Callable[[int], None],
    size: int,
    written: bytes | None,
) -> None:
    """A new temporary file in ``folder`` filled by ``fill`` (with ``written``, when it went
    through Python), verified, then renamed to ``name`` in the same folder."""
    temporary = temporary_name(name, request.tag, request.attempt)
    fd = _create_in(folder, temporary)
    try:
        try:
            fill(fd)
            _verify_written(request, fd, size, written)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise


def _create_in(folder: int, name: str) -> int:
    """``create_new`` inside the folder open at ``folder``."""
    try:
        return os.open(name, _CREATE, 0o666, dir_fd=folder)
    except FileExistsError:
        os.unlink(name, dir_fd=folder)
        return os.open(name, _CREATE, 0o666, dir_fd=folder)


def _verify_written(request: CopyRequest, fd: int, size: int, written: bytes | None) -> None:
    """The bytes read back through the same descriptor are the ones read from the source,
    compared byte for byte (stricter than their sums, and cheaper than summing them again);
    a copy the kernel made (``written`` is ``None``: no checksum asked) has its size checked."""
    if written is None:
        length = os.fstat(fd).st_size
        if length != size:
            raise request.short_write(length, size)
        return
    back = read_back(fd, size)
    if len(back) != size:
        raise request.short_write(len(back), size)
    if back != written:  # only a copy with a checksum goes through Python's buffers
        read, found = _digest_of(request.checksum, written), _digest_of(request.checksum, back)
        raise request.mismatch(read or "", found or "")


def _digest_of(algorithm: Checksum, data: bytes) -> str | None:
    running = new_checksum(algorithm)
    if running is None:
        return None
    running.update(data)
    return running.hexdigest()
