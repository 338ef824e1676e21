"""How an agent copies what it holds: the storages it opens once, a single task, a batch of
small ones, and a chunk of small objects copied in order in one hand-off to one thread.

Each ``execute_*`` runs in a copy thread. The storages are shared by every copy thread under
one lock; a held task's or chunk's flags are plain attributes, set by the event loop and read
between blocks and between objects."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferry.agent.bandwidth import AgentBandwidth
from ferry.agent.held import STOPPED_BY_AGENT, HeldChunk, HeldTask
from ferry.agent.replicas import walk_replicas
from ferry.api.protocol import ReportedState, StorageAccess, TaskReport
from ferry.daemon.logs import REDACTOR
from ferry.domain.locations import Location
from ferry.domain.transfers import clip_error
from ferry.engine.copy import CopyRequest, CopyState, copy_object
from ferry.engine.storages import StorageFS, is_local_url, open_storage, remembered_folders
from ferry.errors import SourceAccessDenied, SourceNotFound, TransferCanceled, TransferError

log = logging.getLogger("ferry.agent")

# How a copy that ended, ended, as reported.
_REPORTED = {CopyState.DONE: ReportedState.DONE, CopyState.SKIPPED: ReportedState.SKIPPED}


@dataclass(slots=True)
class Attempt:
    """How one object's copy ended, as its report says it."""

    state: ReportedState
    bytes: int = 0
    checksum: str | None = None
    error_class: str | None = None
    error: str | None = None
    retryable: bool = False
    resumed: int = 0  # of ``bytes``, those kept from an earlier attempt's .part
    source_error: bool = False  # not found or denied on the source's side
    on_destination: bool = False  # it failed on the destination's side
    replica: str | None = None  # a task with replicas: the place it was read from


class Copier:
    """Opens each storage once per agent (again after a transient failure) and copies."""

    def __init__(
        self, resume_min_bytes: int | None = None, bandwidth: AgentBandwidth | None = None
    ) -> None:
        self.resume_min_bytes = resume_min_bytes  # None: no copy keeps its .part to resume
        self.bandwidth = bandwidth  # the agent's own, shared by all its copies
        # Each storage's URL, options and protected paths, as the last lease sent them.
        self._storage_urls: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {}
        self._storages: dict[str, StorageFS] = {}
        self._storages_lock = threading.Lock()

    def learn(self, storages: dict[str, StorageAccess]) -> None:
        """Take the storages a lease names (called by the event loop)."""
        for name, access in storages.items():
            self._storage_urls[name] = (access.url, access.options, tuple(access.protected))

    def is_local(self, storage: str) -> bool:
        """Whether the storage is a local disk, told from its URL (opening it to ask could
        connect to a remote host from the event loop)."""
        return is_local_url(self._storage_urls[storage][0])

    # --- single tasks -----------------------------------------------------------------------
    def execute_all(self, batch: list[HeldTask]) -> list[TaskReport]:
        return [self.execute(task) for task in batch]

    def execute_small_local(self, batch: list[HeldTask]) -> list[TaskReport]:
        """A batch of small local copies, which take a fraction of a millisecond each: the
        folders on their paths are walked down once for the batch, and held open until it
        ends. (A batch with a remote copy in it may take seconds: its copies walk down each
        time.)"""
        with remembered_folders():
            return [self.execute(task) for task in batch]

    def execute(self, task: HeldTask) -> TaskReport:
        """Copy ``task``'s object and return its report."""
        if task.canceled:  # no attempt was made: the server counts none
            if task.shutting_down:  # waited behind others of its batch: never started
                return task.ended(ReportedState.RELEASED, started=False)
            error = "canceled before it started"
            return task.ended(ReportedState.CANCELED, error=error, started=False)
        if task.replicas:
            ended = walk_replicas(task, lambda place: self._copy_task(task, place, skip=False))
        else:
            ended = self._copy_task(task, task.source, skip=task.leased.skip_source_errors)
        return task.ended(
            ended.state,
            bytes=ended.bytes,
            checksum=ended.checksum,
            error=ended.error,
            error_class=ended.error_class,
            retryable=ended.retryable,
            resumed=ended.resumed,
            replica=ended.replica,
        )

    def _copy_task(self, task: HeldTask, source: Location, *, skip: bool) -> Attempt:
        """One copy of ``task``'s object from ``source``; ``skip``: a source not found or
        denied ends SKIPPED (the task's option, when it has no replicas to try)."""
        rate = self._rate_of(task)
        try:
            request = CopyRequest(
                source=self.storage(source.storage),
                source_path=source.path,
                destination=self.storage(task.destination.storage),
                destination_path=task.destination.path,
                checksum=task.leased.checksum,
                overwrite=task.leased.overwrite,
                sync=task.leased.sync,
                tag=str(task.id),
                attempt=task.leased.attempt,
                unzip=task.leased.unzip,
                unzip_max_bytes=task.leased.unzip_max_bytes,
                bandwidth=rate(),  # the first block's too
                bandwidth_now=rate,
                throttled=task.throttled or self.bandwidth is not None,
                folder=task.leased.folder,
                verify_source=task.leased.verify_source,
                resume_min_bytes=self.resume_min_bytes,
                stopped_by_agent=task.stopping,
                expected=task.leased.expected_checksum,
            )
        except Exception as exc:  # a storage that cannot be opened
            return self._failed(exc, f"task {task.id}")
        return self._attempt(request, task, f"task {task.id}", skip=skip)

    # --- chunks -----------------------------------------------------------------------------
    def execute_chunk(self, chunk: HeldChunk, *, local: bool) -> None:
        """Copy ``chunk``'s objects in order, adding each one's row as it ends, until they are
        all copied or the chunk is to stop (checked between objects); then set its ``rest``.
        A ``local`` chunk walks down its folders once (``remembered_folders``)."""
        if local:
            with remembered_folders():
                self._copy_objects(chunk)
        else:
            self._copy_objects(chunk)
        if chunk.reached < chunk.count:
            chunk.rest = ReportedState.RELEASED if chunk.shutting_down else ReportedState.CANCELED

    def _copy_objects(self, chunk: HeldChunk) -> None:
        while chunk.reached < chunk.count and not chunk.stopping():
            offset = chunk.offsets[chunk.reached]
            ended = self._copy_one(chunk, offset)
            if ended.state is ReportedState.RELEASED:
                return  # stopped by the agent's own stop: given back with the rest
            chunk.reached += 1
            chunk.add_row(
                (
                    offset,
                    ended.state,
                    ended.bytes,
                    ended.checksum,
                    ended.error_class,
                    ended.error,
                    ended.retryable,
                )
            )

    def _copy_one(self, chunk: HeldChunk, offset: int) -> Attempt:
        what = f"task {chunk.id}, object {chunk.first + offset}"
        try:
            relative = chunk.objects[offset][0]
            source, destination = chunk.source.child(relative), chunk.destination.child(relative)
            rate = self._rate_of(chunk)
            request = CopyRequest(
                source=self.storage(source.storage),
                source_path=source.path,
                destination=self.storage(destination.storage),
                destination_path=destination.path,
                checksum=chunk.leased.checksum,
                overwrite=chunk.leased.overwrite,
                sync=chunk.leased.sync,
                tag=chunk.tag(offset),
                attempt=chunk.leased.attempt,
                bandwidth=rate(),
                bandwidth_now=rate,
                throttled=chunk.throttled or self.bandwidth is not None,
                verify_source=chunk.leased.verify_source,
            )
        except Exception as exc:  # a path that leaves its root, a storage that cannot open
            return self._failed(exc, what)
        return self._attempt(request, chunk, what, skip=chunk.leased.skip_source_errors)

    def _rate_of(self, held: HeldTask | HeldChunk) -> Callable[[], int | None]:
        """What ``held``'s copy may move now, read at each block: its channel's share, and
        its share of the agent's own bandwidth when the agent has one."""
        if self.bandwidth is None:
            return held.current_bandwidth
        bandwidth = self.bandwidth
        return lambda: bandwidth.limit(held.current_bandwidth())

    # --- one attempt ------------------------------------------------------------------------
    def _attempt(
        self, request: CopyRequest, held: HeldTask | HeldChunk, what: str, *, skip: bool
    ) -> Attempt:
        """Copy one object for ``held``; how it ended, its error fit for a report. ``skip``:
        a source not found or denied ends SKIPPED, with the reason."""
        before = held.bytes_done
        counted = self.bandwidth.copy() if self.bandwidth else contextlib.nullcontext()
        try:
            with counted:
                outcome = copy_object(
                    request, progress=held.add_bytes, should_stop=held.should_stop
                )
        except TransferCanceled as exc:
            moved = held.bytes_done - before  # what the attempt moved before it stopped
            if held.shutting_down:  # not a user's cancel: the object still has to move
                return Attempt(ReportedState.RELEASED, moved, error=STOPPED_BY_AGENT)
            return Attempt(ReportedState.CANCELED, moved, None, exc.error_class, str(exc))
        except TransferError as exc:
            if exc.retryable:
                self._reopen_later(request)
            error = _fit(exc.message)
            on_source = isinstance(exc, SourceNotFound | SourceAccessDenied)
            if skip and on_source:  # asked for: the object is passed over, with the reason
                return Attempt(ReportedState.SKIPPED, 0, None, None, error)
            return Attempt(
                ReportedState.FAILED,
                0,
                None,
                exc.error_class,
                error,
                exc.retryable,
                source_error=on_source,
                on_destination=exc.on_destination,
            )
        except Exception as exc:  # a bug or an unmapped backend error: keep the agent alive
            self._reopen_later(request)
            return self._failed(exc, what)
        return Attempt(
            _REPORTED[outcome.state],
            outcome.bytes,
            outcome.checksum,
            error=outcome.reason,  # why it was SKIPPED
            resumed=outcome.resumed,
        )

    def _failed(self, exc: Exception, what: str) -> Attempt:
        log.exception("%s: unexpected error", what, exc_info=exc)
        error = _fit(f"{type(exc).__name__}: {exc}")
        return Attempt(ReportedState.FAILED, 0, None, "internal", error, retryable=True)

    def _reopen_later(self, request: CopyRequest) -> None:
        """After a transient failure, the object's remote storages are opened anew by the next
        attempt: a filesystem whose connection died (an SFTP server restarted) kept failing
        every attempt, on every agent, for as long as the agents lived."""
        with self._storages_lock:
            for storage in (request.source, request.destination):
                if not storage.is_local and self._storages.get(storage.name) is storage:
                    del self._storages[storage.name]

    def storage(self, name: str) -> StorageFS:
        """The storage ``name``, opened on first use; safe from any thread."""
        with self._storages_lock:
            if name not in self._storages:
                url, options, protected = self._storage_urls[name]
                opened = open_storage(name, url, options, protected)
                for secret in opened.secrets:  # and out of this agent's log lines
                    REDACTOR.add(secret)
                self._storages[name] = opened
            return self._storages[name]


def _fit(error: str) -> str:
    """An error as a report carries it: without secrets, and cut (a path of thousands of
    characters makes a message as long)."""
    return clip_error(REDACTOR.redact(error))
