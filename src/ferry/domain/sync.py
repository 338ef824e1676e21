"""Which objects a run copies, skips or deletes: the one set of rules that the agents apply as
they copy and that a dry run applies to make its plan, so that a plan lists what the run does.

``--overwrite`` says what happens to a destination file that exists; ``--sync LEVEL`` (Globus's
sync levels 0–3) says it in terms of what differs:

- ``exists``: copy only what the destination lacks;
- ``size``: also when the sizes differ;
- ``mtime``: also when the sizes differ or the source is newer;
- ``checksum``: also when the sizes or the checksums differ.

A level stands instead of ``--overwrite``: with one, ``--overwrite`` may be left at ``never``
(the default, which lets the level decide) or say the same thing (``if-different`` is
``checksum``); ``always`` and ``if-newer`` with a level contradict it and are refused.

A tree transfer with ``--delete-extra`` deletes the destination files that the source's listing
does not have, after every copy of its run succeeded (``deletable`` says which)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ferry.domain.options import Overwrite
from ferry.errors import InvalidRequest

DEFAULT_MAX_DELETE = 100


class SyncLevel(StrEnum):
    EXISTS = "exists"
    SIZE = "size"
    MTIME = "mtime"
    CHECKSUM = "checksum"


class DeletionState(StrEnum):
    """Where a ``--delete-extra`` run's deletion step is: to do once its copies have ended;
    done (whatever it deleted); held (nothing deleted: a copy failed, or the run was
    canceled); failed (more to delete than ``max_delete``, so nothing deleted; or the
    destination could not be listed, or a deletion failed). The run's note says which and
    why; a failed step makes the run's outcome an error."""

    PENDING = "PENDING"
    DONE = "DONE"
    HELD = "HELD"
    FAILED = "FAILED"


class Action(StrEnum):
    COPY = "copy"
    SKIP = "skip"
    DELETE = "delete"
    FAIL = "fail"  # what the run would record FAILED (a folder that cannot be listed)


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known of one side's file: its size and modification time (POSIX seconds),
    ``None`` where its storage does not say."""

    size: int | None
    mtime: float | None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str  # why, in words a user reads (a SKIPPED object's reason)


# Why an object is copied or SKIPPED. The overwrite rules' reasons are those that runs have
# always recorded.
MISSING = "the destination lacks it"
EXISTS = "the destination exists (overwrite: never)"
SAME = "the destination is the same, by size and checksum (overwrite: if-different)"
NOT_NEWER = "the destination is as new as the source (overwrite: if-newer)"
ALWAYS = "the destination is replaced (overwrite: always)"
NEWER = "the source is newer"
UNKNOWN_TIMES = "a modification time is unknown"
SIZES_DIFFER = "the sizes differ"
UNKNOWN_SIZE = "a size is unknown"
CHECKSUMS_DIFFER = "the checksums differ"
SYNC_EXISTS = "the destination exists (sync: exists)"
SYNC_SIZE = "the destination has the same size (sync: size)"
SYNC_MTIME = "the destination has the same size and is as new as the source (sync: mtime)"
SYNC_CHECKSUM = "the destination has the same size and checksum (sync: checksum)"
EXTRA = "not in the source (delete-extra)"

# The --overwrite rule that says the same as a level, where there is one.
_SAME_AS = {SyncLevel.EXISTS: Overwrite.NEVER, SyncLevel.CHECKSUM: Overwrite.IF_DIFFERENT}


def check_sync(overwrite: Overwrite, sync: SyncLevel | None) -> None:
    """Refuse an ``overwrite`` rule that contradicts the sync level ``sync``."""
    if sync is None or overwrite is Overwrite.NEVER or _SAME_AS.get(sync) is overwrite:
        return
    raise InvalidRequest(
        f"overwrite {overwrite.value!r} contradicts sync {sync.value!r}: the sync level decides"
        " which existing files are replaced, so give one or the other"
    )


def check_sync_options(
    overwrite: Overwrite,
    sync: SyncLevel | None,
    *,
    delete_extra: bool,
    max_delete: int | None,
    unzip: bool,
) -> None:
    """Refuse options that contradict each other: ``check_sync``, a ``max_delete`` without
    ``delete_extra`` or below 0, and ``delete_extra`` with ``unzip``."""
    check_sync(overwrite, sync)
    if max_delete is not None and not delete_extra:
        raise InvalidRequest("max_delete applies only with delete_extra")
    if max_delete is not None and max_delete < 0:
        raise InvalidRequest(f"max_delete is a count (0 or more), not {max_delete}")
    if delete_extra and unzip:
        raise InvalidRequest(
            "delete_extra and unzip do not go together: an archive's members are not in the"
            " source's listing, so each run would delete what the last one unpacked"
        )


def decide(
    overwrite: Overwrite,
    sync: SyncLevel | None,
    source: Facts,
    destination: Facts | None,
    same_checksum: Callable[[], bool],
) -> Decision:
    """Copy or skip one object whose source is ``source`` and whose destination is
    ``destination`` (``None``: there is none). ``same_checksum`` is asked only when the rule
    needs the checksums (it reads both files)."""
    if destination is None:
        return Decision(Action.COPY, MISSING)
    if sync is not None:
        return _by_level(sync, source, destination, same_checksum)
    return _by_overwrite(overwrite, source, destination, same_checksum)


def _by_level(
    sync: SyncLevel, source: Facts, destination: Facts, same_checksum: Callable[[], bool]
) -> Decision:
    if sync is SyncLevel.EXISTS:
        return Decision(Action.SKIP, SYNC_EXISTS)
    if (differ := _sizes_differ(source, destination)) is not None:
        return Decision(Action.COPY, differ)
    if sync is SyncLevel.SIZE:
        return Decision(Action.SKIP, SYNC_SIZE)
    if sync is SyncLevel.MTIME:
        if (newer := _newer(source, destination)) is not None:
            return Decision(Action.COPY, newer)
        return Decision(Action.SKIP, SYNC_MTIME)
    if not same_checksum():
        return Decision(Action.COPY, CHECKSUMS_DIFFER)
    return Decision(Action.SKIP, SYNC_CHECKSUM)


def _by_overwrite(
    overwrite: Overwrite, source: Facts, destination: Facts, same_checksum: Callable[[], bool]
) -> Decision:
    if overwrite is Overwrite.NEVER:
        return Decision(Action.SKIP, EXISTS)
    if overwrite is Overwrite.ALWAYS:
        return Decision(Action.COPY, ALWAYS)
    if overwrite is Overwrite.IF_NEWER:
        if (newer := _newer(source, destination)) is not None:
            return Decision(Action.COPY, newer)
        return Decision(Action.SKIP, NOT_NEWER)
    if source.size != destination.size:
        return Decision(Action.COPY, SIZES_DIFFER)
    if not same_checksum():
        return Decision(Action.COPY, CHECKSUMS_DIFFER)
    return Decision(Action.SKIP, SAME)


def _sizes_differ(source: Facts, destination: Facts) -> str | None:
    """Why the sizes call for a copy (they differ, or one is unknown), or ``None``."""
    if source.size is None or destination.size is None:
        return UNKNOWN_SIZE
    return SIZES_DIFFER if source.size != destination.size else None


def _newer(source: Facts, destination: Facts) -> str | None:
    """Why the times call for a copy (the source is newer, or a time is unknown), or ``None``."""
    if source.mtime is None or destination.mtime is None:
        return UNKNOWN_TIMES
    return NEWER if source.mtime > destination.mtime else None


def deletable(in_source: bool, kept_by_filters: bool) -> Decision | None:
    """Whether a destination file goes with ``--delete-extra``: only when the source's listing
    has nothing at its path (filtered out or not: a file the filters leave out of the source
    is not a reason to delete its copy) and the filters keep it (what they exclude is not
    deleted, as rclone without ``--delete-excluded``)."""
    if in_source or not kept_by_filters:
        return None
    return Decision(Action.DELETE, EXTRA)
