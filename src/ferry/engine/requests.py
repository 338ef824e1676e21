"""What a copy is asked and what it answers, and how its parts tell which side an error
came from (``copy_object`` turns that into an error naming the source or the destination)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ferry.domain.options import Checksum, Overwrite
from ferry.domain.sync import EXISTS as EXISTS  # why a copy was SKIPPED, shown here too
from ferry.domain.sync import NOT_NEWER as NOT_NEWER
from ferry.domain.sync import SAME as SAME
from ferry.domain.sync import SyncLevel
from ferry.engine.checksums import format_checksum
from ferry.engine.stall import DEFAULT_STALL_S
from ferry.engine.storages import StorageFS
from ferry.errors import ChecksumMismatch, SourceReadsDiffer, TransferError, TransientError

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
    sync: SyncLevel | None = None  # instead of ``overwrite``: which existing ones are replaced
    tag: str = "0"  # makes the temporary name unique per task and stable across its attempts
    attempt: int = 1
    unzip: bool = False  # an archive is unpacked into the destination's folder
    unzip_max_bytes: int | None = None  # what it may expand to (None: ``unzip``'s default)
    folder: bool = False  # an empty folder of a tree: made at the destination, nothing copied
    bandwidth: int | None = None  # bytes per second
    bandwidth_now: Callable[[], int | None] | None = None  # the rate now, when it may change
    # Copied through a throttle even while ``bandwidth`` is None (no limit now): its channel's
    # timetable may set a rate while it copies (``bandwidth_now`` then gives it).
    throttled: bool = False
    stall_s: float | None = DEFAULT_STALL_S  # no data for that long aborts the attempt
    verify_source: bool = False  # the source is read a second time and must sum the same
    # An object this large keeps its .part when the attempt dies, for the next to continue
    # (``engine.resume``); None: never.
    resume_min_bytes: int | None = None
    # Whether a stop is the agent's own (it is shutting down), not a cancel: a resumable copy
    # stopped so keeps its .part for the attempt that takes the object over.
    stopped_by_agent: Callable[[], bool] | None = None

    expected: str | None = None  # ALGORITHM:HEX the object must have (the user's)

    @property
    def throttles(self) -> bool:
        """Whether its bytes pass through a throttle (never the kernel's own copy)."""
        return bool(self.bandwidth) or self.throttled

    @property
    def source_label(self) -> str:
        return f"{self.source.name}:{self.source_path}"

    @property
    def destination_label(self) -> str:
        return f"{self.destination.name}:{self.destination_path}"

    # The verification failures, worded once for every copy path.
    def short_write(self, written: int, expected: int) -> TransientError:
        return TransientError(
            f"short write to {self.destination_label}: {written} of {expected} bytes"
        )

    def source_changed(self, read: int, expected: int) -> TransientError:
        return TransientError(
            f"{self.source_label} changed while being copied:"
            f" {read} bytes read, {expected} expected"
        )

    def source_modified(self) -> TransientError:
        return TransientError(
            f"{self.source_label} changed while being copied: modified since the copy began"
        )

    def source_reads_differ(self, first: str, second: str) -> SourceReadsDiffer:
        """A second read of the source does not sum to what the copy read."""
        return SourceReadsDiffer(
            self.source_label,
            format_checksum(self.checksum, first),
            format_checksum(self.checksum, second),
        )

    def check_expected(self, digest: str | None) -> None:
        """Refuse a copy whose checksum is not the one the user gave: the source read is not
        the object asked for (another replica may be)."""
        if self.expected is None or digest is None:
            return
        got = format_checksum(self.checksum, digest)
        if got != self.expected:
            raise ChecksumMismatch(self.source_label, self.expected, got)

    def mismatch(self, read: str, written: str) -> ChecksumMismatch:
        """The checksum of what was written back (``written``) is not that of what was read."""
        return ChecksumMismatch(
            self.destination_label,
            format_checksum(self.checksum, read),
            format_checksum(self.checksum, written),
        )


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    state: CopyState
    bytes: int = 0
    checksum: str | None = None
    reason: str | None = None  # why it was SKIPPED
    resumed: int = 0  # the bytes kept from an earlier attempt's .part: not moved by this one


# Why an object was SKIPPED: a SKIPPED object always says (domain.sync has the rest).
NO_FOLDERS = "the destination keeps no empty folders (an object store): none made"


def temporary_name(destination: str, tag: str, attempt: int = 1) -> str:
    """Beside the destination, hidden, unique per task and attempt: an attempt whose lease was
    taken away never writes into the file of the attempt that replaced it."""
    # What posixpath's split and join make of a path with no "//" in it, in one call.
    folder, slash, name = destination.rpartition("/")
    return f"{folder}{slash}.{name}.ferry-{tag}-{attempt}.part"


class SourceChanged(Exception):
    """The source's size is not what it was a moment ago: it is being written to."""

    def __init__(self, read: int, expected: int) -> None:
        super().__init__(f"{read} bytes read, {expected} expected")
        self.read = read
        self.expected = expected


class DestinationError(Exception):
    """Carries an exception raised on the destination side out of a copy: ``copy_object``
    names the destination in the error it becomes."""


class _OnDestination:
    """Marks what goes wrong inside as the destination's. A class, not a generator: it is
    entered a few times per object, and a generator-based context manager cost more than the
    system calls it wraps on a small file."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(
            exc, TransferError | SourceChanged | DestinationError
        ):
            raise DestinationError() from exc


on_destination = _OnDestination()
