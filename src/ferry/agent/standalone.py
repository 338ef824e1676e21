"""The engine on its own: a transfer done in this process, with no server and no database
(``ferry copy``, as HTCondor's transfer daemon takes a request without a schedd).

The same storages, checksums, temporary names, overwrite and filter rules as an agent's
copies: each object goes through ``copy_object``, a tree is listed by ``walk_tree`` and
filtered by the transfer's ``ListingFilter``, and each SOURCE goes into the folder DEST (a
tree's contents with ``tree``), as ``ferry submit`` places them. A retryable failure is tried
again, up to the transfer's ``retries``, after a pause that doubles (1, 2, 4 … 30 s). The
objects are copied by ``workers`` threads while the tree is still being listed, and the small
ones of a tree between local disks in batches by up to ``processes`` processes forked for it
(``copy_processes``; by default one per thread, up to two per CPU). What is left when
``stop`` is called ends CANCELED, and a copy in progress stops at its next block, leaving no
partial file."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry.agent.copy_processes import FORK, CopyProcess
from ferry.domain.chunks import is_small
from ferry.domain.filters import ListingFilter
from ferry.domain.locations import Location
from ferry.domain.transfers import TransferOptions, file_task, tree_task
from ferry.engine.copy import CopyRequest, CopyState, copy_object
from ferry.engine.errors import classify
from ferry.engine.storages import StorageFS, remembered_folders
from ferry.engine.trees import TreeEntry, walk_tree
from ferry.errors import (
    InvalidRequest,
    SourceAccessDenied,
    SourceNotFound,
    TransferCanceled,
    TransferError,
)

DONE, SKIPPED, FAILED, CANCELED = "DONE", "SKIPPED", "FAILED", "CANCELED"
MAX_PAUSE_S = 30.0


@dataclass(frozen=True, slots=True)
class Ended:
    """How one object of the copy ended: its locations, its status, the bytes moved and the
    checksum of what arrived (DONE), or why it did not (``error``)."""

    source: str
    destination: str
    status: str
    bytes: int = 0
    checksum: str | None = None
    error: str | None = None
    error_class: str | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "status": self.status,
            "bytes": self.bytes,
            "checksum": self.checksum,
            "error": self.error,
            "error_class": self.error_class,
            "attempts": self.attempts,
        }

    def row(self) -> _EndedRow:
        """How it ended without its locations, which whoever asked for the copy has: what a
        copy process sends back (a tuple pickles in a fiftieth of a dataclass's time)."""
        return (self.status, self.bytes, self.checksum, self.error, self.error_class, self.attempts)

    @classmethod
    def of_row(cls, source: str, destination: str, row: _EndedRow) -> Ended:
        return cls(source, destination, *row)


_EndedRow = tuple[str, int, str | None, str | None, str | None, int]


@dataclass
class CopyReport:
    """Every object's end, in the order of their destinations, and how long it all took."""

    ended: list[Ended]
    seconds: float
    filtered: int = 0  # tree entries the filters left out: not objects

    @property
    def counts(self) -> Counter[str]:
        return Counter(e.status for e in self.ended)

    @property
    def failed(self) -> list[Ended]:
        return [e for e in self.ended if e.status in (FAILED, CANCELED)]

    @property
    def status(self) -> str:
        """As a run's: COMPLETED, COMPLETED_WITH_ERRORS (some moved, some not) or FAILED."""
        if not self.failed:
            return "COMPLETED"
        return "COMPLETED_WITH_ERRORS" if len(self.failed) < len(self.ended) else "FAILED"

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.ended)

    def to_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "status": self.status,
            "objects": {
                "total": len(self.ended),
                **{s.lower(): counts[s] for s in (DONE, SKIPPED, FAILED, CANCELED)},
                "filtered": self.filtered,
            },
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "outcomes": [e.to_json() for e in self.ended],
        }


@dataclass(frozen=True, slots=True)
class _Work:
    number: int  # makes its temporary name unique in this copy
    source: Location
    destination: Location
    folder: bool = False
    size: int | None = None  # as listed; None: not known

    def packed(self) -> _WorkRow:
        """The work as plain values, as it is sent to a copy process."""
        s, d = self.source, self.destination
        return (self.number, s.storage, s.path, d.storage, d.path, self.folder, self.size)

    @classmethod
    def unpacked(cls, row: _WorkRow) -> _Work:
        number, source, source_path, destination, destination_path, folder, size = row
        return cls(
            number,
            Location(source, source_path),
            Location(destination, destination_path),
            folder,
            size,
        )


_WorkRow = tuple[int, str, str, str, str, bool, int | None]

_END = object()  # tells a worker the listing is over


class _Batch:
    """Small objects go to a copy thread in batches: handed over one by one, a 4 KiB file
    cost more in the hand-over between threads than in its copy. An object of unknown or
    large size goes alone, so that large ones are copied side by side."""

    MOST, BYTES = 32, 1 << 20

    def __init__(self) -> None:
        self.items: list[_Work] = []
        self.bytes = 0

    def add(self, item: _Work) -> bool:
        """Add ``item``; whether the batch is now to be handed over."""
        self.items.append(item)
        self.bytes += self.BYTES if item.size is None else item.size
        return len(self.items) >= self.MOST or self.bytes >= self.BYTES

    def take(self) -> list[_Work]:
        items, self.items, self.bytes = self.items, [], 0
        return items


@dataclass
class StandaloneCopy:
    """One transfer, done here. ``storages`` by name; ``on_ended`` is called (from the
    workers' threads) as each object ends, ``progress`` with each block's bytes (a batch of
    small objects copied by a process: with each object's, as it comes back). ``processes``:
    how many copy processes a tree between local disks may have (``None``: one per thread, up
    to two per CPU; 0: none, threads only)."""

    storages: dict[str, StorageFS]
    options: TransferOptions
    workers: int = 4
    on_ended: Callable[[Ended], None] = lambda _ended: None
    progress: Callable[[int], None] = lambda _n: None
    processes: int | None = None
    _stopping: Any = field(default_factory=FORK.Event)  # shared with the copy processes
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        """Stop: objects not started end CANCELED, copies in progress at their next block."""
        self._stopping.set()

    def run(self, sources: list[Location], destination: Location, *, tree: bool) -> CopyReport:
        for location in (*sources, destination):
            self.storage(location.storage)  # an unknown storage is refused before any copy
        started = time.monotonic()
        ended: list[Ended] = []
        work: queue.Queue[Any] = queue.Queue(maxsize=self.workers * 4)
        lanes = self._copy_processes([*sources, destination], tree=tree)  # before any thread
        threads = [
            threading.Thread(target=self._work, args=(work, ended, lane), daemon=True)
            for lane in _padded(lanes, max(1, self.workers))
        ]
        for thread in threads:
            thread.start()
        plan = _Plan(self, sources, destination, tree=tree)
        batch = _Batch()
        try:
            for item in plan.items():
                if self._stopping.is_set():
                    break  # what is not listed yet is no object of this copy
                if isinstance(item, Ended):
                    self._record(item, ended)
                elif batch.add(item):
                    work.put(batch.take())
            if batch.items:
                work.put(batch.take())
        except BaseException:
            self.stop()
            raise
        finally:
            for _ in threads:
                work.put(_END)
            for thread in threads:
                thread.join()
            for lane in lanes:
                lane.close()
        ended.sort(key=lambda e: e.destination)
        return CopyReport(ended, time.monotonic() - started, plan.filtered)

    def storage(self, name: str) -> StorageFS:
        try:
            return self.storages[name]
        except KeyError:
            raise InvalidRequest(
                f"unknown storage {name!r}: give --storage {name}=URL"
                f" (known: {', '.join(sorted(self.storages)) or 'none'})"
            ) from None

    def _record(self, item: Ended, ended: list[Ended]) -> None:
        with self._lock:
            ended.append(item)
        self.on_ended(item)

    def _copy_processes(self, places: list[Location], *, tree: bool) -> list[CopyProcess]:
        """The copy processes of a tree between local disks (a remote storage's client, its
        connections and event loop, is not to be forked)."""
        count = 2 * (os.cpu_count() or 1) if self.processes is None else self.processes
        count = min(count, self.workers)
        if not tree or count < 1:
            return []
        if not all(self.storage(place.storage).is_local for place in places):
            return []
        lanes: list[CopyProcess] = []
        for _ in range(count):
            try:
                lanes.append(CopyProcess(self._copied_there, lanes))
            except OSError:  # no process to be had (a limit, memory): the threads copy
                break
        return lanes

    def _work(self, work: queue.Queue[Any], ended: list[Ended], lane: CopyProcess | None) -> None:
        with remembered_folders():  # the folders of a tree's small files are walked once
            while (items := work.get()) is not _END:
                if lane is not None and all(self._small(item) for item in items):
                    if not self._copy_there(lane, items, ended):
                        lane = None  # the process is gone: this thread copies from now on
                    continue
                for item in items:
                    self._record(self._copy(item), ended)

    def _small(self, item: _Work) -> bool:
        o = self.options
        return is_small(item.size, unzip=o.unzip, bandwidth=o.bandwidth)

    def _copy_there(self, lane: CopyProcess, items: list[_Work], ended: list[Ended]) -> bool:
        """Copy ``items`` in ``lane``'s process; whether it answered. A process that died
        with a batch leaves its objects FAILED: whether each arrived is not known."""
        results = lane.copy([item.packed() for item in items])
        if results is None:
            why = (
                f"the copy process ended (exit code {lane.exit_code}) while it copied this"
                " object: whether it arrived is not known"
            )
            for item in items:
                self._record(self._ended(item, FAILED, 1, why), ended)
            return False
        for item, row in zip(items, results, strict=True):
            result = Ended.of_row(str(item.source), str(item.destination), row)
            self.progress(result.bytes)
            self._record(result, ended)
        return True

    def _copied_there(self, packed: _WorkRow) -> _EndedRow:
        """``_copy`` in a copy process, of work and to an end sent as plain values; its
        progress is told by the parent as each batch comes back."""
        return self._copy(_Work.unpacked(packed), progress=_no_progress).row()

    def _copy(self, item: _Work, progress: Callable[[int], None] | None = None) -> Ended:
        """Copy one object, trying a retryable failure again up to the transfer's retries."""
        attempt = 0
        while True:
            if self._stopping.is_set():
                return self._ended(item, CANCELED, attempt, error="canceled before it started")
            attempt += 1
            try:
                outcome = copy_object(
                    self._request(item, attempt),
                    progress=self.progress if progress is None else progress,
                    should_stop=self._stopping.is_set,
                )
            except TransferError as exc:
                if isinstance(exc, TransferCanceled):
                    return self._ended(item, CANCELED, attempt, error=exc.message)
                if self.options.skip_source_errors and isinstance(
                    exc, SourceNotFound | SourceAccessDenied
                ):  # asked for: the object is passed over, with the reason
                    return self._ended(item, SKIPPED, attempt, error=exc.message)
                if not exc.retryable or attempt > self.options.retries:
                    return self._ended(item, FAILED, attempt, exc.message, exc.error_class)
                self._stopping.wait(min(MAX_PAUSE_S, 2.0 ** (attempt - 1)))
                continue
            except Exception as exc:  # a storage that cannot be opened or reached
                error = classify(exc, str(item.source))
                return self._ended(item, FAILED, attempt, error.message, error.error_class)
            status = DONE if outcome.state is CopyState.DONE else SKIPPED
            return Ended(
                str(item.source),
                str(item.destination),
                status,
                outcome.bytes,
                outcome.checksum,
                outcome.reason,
                attempts=attempt,
            )

    def _request(self, item: _Work, attempt: int) -> CopyRequest:
        o = self.options
        return CopyRequest(
            source=self.storage(item.source.storage),
            source_path=item.source.path,
            destination=self.storage(item.destination.storage),
            destination_path=item.destination.path,
            checksum=o.checksum,
            overwrite=o.overwrite,
            tag=f"copy{item.number}",
            attempt=attempt,
            unzip=o.unzip,
            unzip_max_bytes=o.unzip_max_bytes,
            folder=item.folder,
            bandwidth=o.bandwidth,
            verify_source=o.verify_source,
        )

    @staticmethod
    def _ended(
        item: _Work, status: str, attempts: int, error: str, error_class: str | None = None
    ) -> Ended:
        source, destination = str(item.source), str(item.destination)
        return Ended(
            source, destination, status, error=error, error_class=error_class, attempts=attempts
        )


def _no_progress(_count: int) -> None:
    pass


def _padded(lanes: list[CopyProcess], threads: int) -> list[CopyProcess | None]:
    """One lane per copy thread: a process's, or none (the thread copies)."""
    return [*lanes, *[None] * (threads - len(lanes))]


class _Plan:
    """The objects of the copy, in listing order: work for the copy threads, or an object
    already ended (a link not followed, a folder that could not be listed)."""

    def __init__(
        self, copy: StandaloneCopy, sources: list[Location], destination: Location, *, tree: bool
    ) -> None:
        self.copy, self.sources, self.destination, self.tree = copy, sources, destination, tree
        self.filters = ListingFilter.of(copy.options.filters, datetime.now(UTC))
        self.filtered = 0
        self.numbers = iter(range(1, 1 << 62))

    def items(self) -> Iterator[_Work | Ended]:
        for source in self.sources:
            if not self.tree:
                planned = file_task(source, self.destination)
                yield _Work(next(self.numbers), planned.source, planned.destination)
                continue
            yield from self._tree(source)

    def _tree(self, source: Location) -> Iterator[_Work | Ended]:
        storage = self.copy.storage(source.storage)
        try:
            for page in walk_tree(storage, source.path):
                kept = self.filters.kept(page) if self.filters else page
                self.filtered += len(page) - len(kept)
                yield from (self._entry(source, entry) for entry in kept)
        except (FileNotFoundError, NotADirectoryError) as exc:
            yield self._unlistable(source, exc)

    def _entry(self, source: Location, entry: TreeEntry) -> _Work | Ended:
        planned = tree_task(source, entry.relative, self.destination, entry.size)
        there, here = str(planned.source), str(planned.destination)
        if entry.skipped is not None:
            return Ended(there, here, SKIPPED, error=entry.skipped)
        if entry.error is not None:
            skip = entry.denied and self.copy.options.skip_source_errors
            return Ended(there, here, SKIPPED if skip else FAILED, error=entry.error)
        number = next(self.numbers)
        return _Work(number, planned.source, planned.destination, entry.folder, entry.size)

    def _unlistable(self, source: Location, exc: OSError) -> Ended:
        if isinstance(exc, NotADirectoryError):
            why = f"not a directory: {source} (a tree copy needs a folder)"
            return Ended(str(source), str(self.destination), FAILED, error=why)
        error = classify(exc, str(source))
        skip = self.copy.options.skip_source_errors and isinstance(error, SourceNotFound)
        status = SKIPPED if skip else FAILED
        return Ended(str(source), str(self.destination), status, error=error.message)
