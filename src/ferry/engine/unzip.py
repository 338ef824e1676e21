"""Unpack a zip or tar archive into a destination folder (gCube's unzip), all or nothing.

Every member's path is checked before anything is written: one that would land outside the
folder (``../x``, an absolute path, a link), two members with one name, or a file where another
member needs a folder, refuse the whole archive. Members are written and verified in a staging
folder and moved into place only once the whole archive has been read; on any failure the
staging folder is removed."""

from __future__ import annotations

import contextlib
import posixpath
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from ferry.domain.locations import confine_path
from ferry.domain.options import Overwrite
from ferry.engine.checksums import Adler32, format_checksum, new_checksum
from ferry.engine.storages import StorageFS
from ferry.errors import ChecksumMismatch, PathOutsideStorage, PermanentError, TransferCanceled

# What an archive may expand to: this many times its own size, or this much at least. A zip of
# 204 kB became 200 MiB; compressible data (text, logs) stays well inside the ratio.
EXPANSION_RATIO = 100
EXPANSION_FLOOR = 16 * 1024 * 1024

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
BLOCK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # normalized, inside the folder
    open: Callable[[], IO[bytes]]
    size: int  # as the archive declares it (what is written is counted too)


class ExpansionBudget:
    """How many bytes an archive may still expand to; refuses it, whole, past that. ``why``
    says where the limit came from."""

    def __init__(self, limit: int, label: str, why: str) -> None:
        self.left, self.limit, self.label, self.why = limit, limit, label, why

    def declared(self, total: int) -> None:
        if total > self.limit:
            self._refuse(total)

    def spend(self, progress: Callable[[int], None]) -> Callable[[int], None]:
        def counted(n: int) -> None:
            self.left -= n
            if self.left < 0:
                self._refuse(self.limit - self.left)
            progress(n)

        return counted

    def _refuse(self, size: int) -> None:
        raise PermanentError(
            f"{self.label} expands to more than {self.limit:,} bytes ({size:,} at least):"
            f" past {self.why}, archive refused (--unzip-max-bytes raises the limit)"
        )


def _expansion_budget(archive: IO[bytes], label: str, max_bytes: int | None) -> ExpansionBudget:
    if max_bytes is not None:
        return ExpansionBudget(max_bytes, label, "the transfer's limit")
    size = archive.seek(0, 2)
    archive.seek(0)
    if EXPANSION_RATIO * size < EXPANSION_FLOOR:
        return ExpansionBudget(EXPANSION_FLOOR, label, "the default limit")
    return ExpansionBudget(EXPANSION_RATIO * size, label, f"{EXPANSION_RATIO} times its size")


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(
    archive: IO[bytes],
    label: str,
    destination: StorageFS,
    folder: str,
    tag: str,
    *,
    overwrite: Overwrite = Overwrite.ALWAYS,
    max_bytes: int | None = None,
    should_stop: Callable[[], bool],
    progress: Callable[[int], None],
) -> tuple[int, int]:
    """Unpack ``archive`` into ``folder`` of ``destination``; return (members written, bytes).

    Every member is first written and verified in a staging folder; only then are folders made
    and members moved into place. With ``overwrite=never`` a member whose file exists is left
    alone (any other policy replaces it). An archive that expands past ``max_bytes`` (by
    default ``EXPANSION_RATIO`` times its size, at least ``EXPANSION_FLOOR``) is refused."""
    budget = _expansion_budget(archive, label, max_bytes)
    with _members(archive, label) as members:
        _check_names(members, label)
        budget.declared(sum(member.size for member in members))
        staging = destination.resolve(posixpath.join(folder, f".ferry-unzip-{tag}"))
        destination.fs.makedirs(staging, exist_ok=True)
        try:
            plan, written = [], 0
            for index, member in enumerate(members):
                final = destination.resolve(posixpath.join(folder, member.name))
                if destination.fs.exists(final):
                    if destination.fs.isdir(final):
                        raise PermanentError(
                            f"{label}: member {member.name!r} would replace a folder"
                        )
                    if overwrite is Overwrite.NEVER:
                        continue
                temporary = f"{staging}/{index}.part"
                written += _write(
                    member, destination, temporary, label, should_stop, budget.spend(progress)
                )
                plan.append((temporary, final, member.name))
            for temporary, final, name in plan:
                destination.fs.makedirs(posixpath.dirname(final), exist_ok=True)
                # Checked again now that its folders exist: one made or replaced by a link
                # while the archive was written is seen here, not followed by the move.
                destination.resolve(posixpath.join(folder, name))
                destination.move_into_place(temporary, final)
        finally:
            with contextlib.suppress(Exception):
                destination.fs.rm(staging, recursive=True)
    return len(plan), written


def _check_names(members: list[Member], label: str) -> None:
    """Two members with one name, or a file where another member needs a folder, would make
    the result depend on their order: refused."""
    names: set[str] = set()
    for member in members:
        if member.name in names:
            raise PermanentError(f"{label}: member {member.name!r} appears twice: archive refused")
        names.add(member.name)
    for name in names:
        parent = posixpath.dirname(name)
        while parent:
            if parent in names:
                raise PermanentError(
                    f"{label}: {parent!r} is both a file and a folder: archive refused"
                )
            parent = posixpath.dirname(parent)


def _write(
    member: Member,
    destination: StorageFS,
    temporary: str,
    label: str,
    should_stop: Callable[[], bool],
    progress: Callable[[int], None],
) -> int:
    """Write one member, then read it back: what landed must be what the archive held."""
    written, running = 0, Adler32()
    with member.open() as source, destination.fs.open(temporary, "wb") as target:
        while block := source.read(BLOCK_SIZE):
            if should_stop():
                raise TransferCanceled(label)
            running.update(block)
            target.write(block)
            written += len(block)
            progress(len(block))
    landed = Adler32()
    with destination.fs.open(temporary, "rb") as check:
        while block := check.read(BLOCK_SIZE):
            landed.update(block)
    if landed.hexdigest() != running.hexdigest():
        raise ChecksumMismatch(
            f"{label}!{member.name}",
            f"adler32:{running.hexdigest()}",
            f"adler32:{landed.hexdigest()}",
        )
    return written


@contextlib.contextmanager
def _members(archive: IO[bytes], label: str) -> Iterator[list[Member]]:
    """The archive's files, every path checked before any is written (directories are made as
    their files need them)."""
    head = archive.read(4)
    archive.seek(0)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(archive) as bundle:
            infos = [i for i in bundle.infolist() if not i.is_dir()]
            yield [
                Member(_inside(zip_name(i), label), _opener(bundle, i), i.file_size) for i in infos
            ]
        return
    try:
        tar = tarfile.open(fileobj=archive, mode="r:*")  # noqa: SIM115 (closed just below)
    except tarfile.TarError as exc:
        raise PermanentError(f"{label} is neither a zip nor a tar archive") from exc
    with tar:
        entries = tar.getmembers()
        for entry in entries:
            if entry.issym() or entry.islnk() or entry.isdev():
                raise PermanentError(f"{label}: member {entry.name!r} is a link or device: refused")
        files = [e for e in entries if e.isfile()]
        yield [Member(_inside(e.name, label), _tar_opener(tar, e), e.size) for e in files]


_UTF8_FLAG = 0x800
_UNICODE_PATH = 0x7075  # Info-ZIP's Unicode Path extra field


def zip_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name as ``unzip`` reads it: zipfile decodes a name without the UTF-8
    flag as CP437, which garbled the UTF-8 names that ``zip`` writes. Info-ZIP's Unicode Path
    field, when it matches the name it stands for, gives the name; else bytes that are valid
    UTF-8 are read as such; else CP437, as the format says."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.orig_filename.encode("cp437")
    if (unicode := _unicode_path(info.extra, raw)) is not None:
        return unicode
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    offset = 0
    while offset + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if kind != _UNICODE_PATH or len(body) < 5 or body[0] != 1:
            continue
        (crc,) = struct.unpack_from("<I", body, 1)
        if crc == zlib.crc32(raw):  # written for this very name, not a stale one
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _inside(name: str, label: str) -> str:
    try:
        relative = confine_path("archive", name)
    except PathOutsideStorage:
        raise PermanentError(
            f"{label}: member {name!r} would be written outside the destination folder:"
            " archive refused"
        ) from None
    if not relative:
        raise PermanentError(f"{label}: member {name!r} has no name")
    return relative


def _opener(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: bundle.open(info)


def _tar_opener(bundle: tarfile.TarFile, entry: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        handle = bundle.extractfile(entry)
        assert handle is not None  # a regular file always has content
        return handle

    return open_member


def archive_checksum(storage: StorageFS, path: str, algorithm: Any) -> str | None:
    """The archive's own checksum, for the outcome (its members are checked by the format)."""
    running = new_checksum(algorithm)
    if running is None:
        return None
    with storage.fs.open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            running.update(block)
    return format_checksum(algorithm, running.hexdigest())
