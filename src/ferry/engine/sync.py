"""Copy or skip one object, as its destination is now (``domain.sync`` holds the rules): what an
agent asks before it copies, and what a dry run asks to make its plan, through the same calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ferry.domain.options import Checksum
from ferry.domain.sync import Action, Decision, Facts, decide
from ferry.engine.checksums import new_checksum
from ferry.engine.requests import BLOCK_SIZE, NO_FOLDERS, CopyRequest, on_destination
from ferry.engine.storages import StorageFS
from ferry.engine.unzip import is_archive
from ferry.errors import PermanentError

FOLDER = "an empty folder of the tree, made at the destination"
UNPACKED = "an archive, unpacked into the destination folder (unzip)"


def source_info(request: CopyRequest) -> tuple[str, dict[str, Any]]:
    """The source's backend path and what its storage says of it; refuses a folder and what is
    not a regular file."""
    source = request.source.resolve(request.source_path)
    info = request.source.fs.info(source)
    if info.get("type") == "directory":
        raise IsADirectoryError(source)
    if info.get("type") == "other":  # a pipe would hold the copy (and its slot) for good
        raise PermanentError(
            f"{request.source_label} is not a regular file (a pipe, a socket or a device)"
        )
    return source, info


def judge(request: CopyRequest, source: str, info: dict[str, Any], destination: str) -> Decision:
    """Copy or skip the object: its destination (a backend path) as it is now, against the
    source's ``info``; refuses a destination that is a folder. Errors are the destination's
    (reading the source's checksum included, as they always were)."""
    fs = request.destination.fs
    with on_destination:
        if not fs.exists(destination):
            return decide(request.overwrite, request.sync, facts(info), None, _never_asked)
        if fs.isdir(destination):
            raise PermanentError(f"{request.destination_label} is a folder: not replaced by a file")
        existing = fs.info(destination)

        def same_checksum() -> bool:
            algorithm = Checksum.ADLER32 if request.checksum is Checksum.NONE else request.checksum
            ours = checksum_of(request.source, source, algorithm)
            return ours == checksum_of(request.destination, destination, algorithm)

        return decide(request.overwrite, request.sync, facts(info), facts(existing), same_checksum)


def plan_object(request: CopyRequest) -> Decision:
    """What a copy of ``request`` would do now, asked the way ``copy_object`` asks it, without
    writing anything: raises what the copy would raise before it began."""
    if request.folder:
        return _folder(request)
    source, info = source_info(request)
    if request.unzip and is_archive(source):
        return Decision(Action.COPY, UNPACKED)
    with on_destination:
        destination = request.destination.resolve(request.destination_path)
    return judge(request, source, info, destination)


def _folder(request: CopyRequest) -> Decision:
    """An empty folder is made, except where folders exist only as the prefixes of objects
    (an object store: SKIPPED, as ``copy_object`` finds once it has tried)."""
    with on_destination:
        folder = request.destination.resolve(request.destination_path)
        fs = request.destination.fs
        if fs.exists(folder) and not fs.isdir(folder):
            raise PermanentError(f"{request.destination_label} is a file: no folder made there")
    if _OBJECT_STORES.intersection(request.destination.protocols):
        return Decision(Action.SKIP, NO_FOLDERS)
    return Decision(Action.COPY, FOLDER)


_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "adl"})


def _never_asked() -> bool:
    raise AssertionError("no checksum is needed for a destination that does not exist")


def facts(info: dict[str, Any]) -> Facts:
    size = info.get("size")
    return Facts(None if size is None else int(size), modified(info))


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
