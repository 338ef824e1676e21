"""Entities of the domain (DESIGN §2) and the rules that turn a transfer into tasks."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ferry.domain.filters import TreeFilter
from ferry.domain.locations import Location
from ferry.domain.options import Checksum, Overwrite
from ferry.domain.replicas import check_replicas
from ferry.domain.sites import UNKNOWN_SITE
from ferry.domain.states import AgentState, RunStatus, TaskState, TransferStatus
from ferry.domain.sync import (
    DEFAULT_MAX_DELETE,
    DeletionState,
    SyncLevel,
    check_sync_options,
)
from ferry.errors import InvalidRequest


class TransferKind(StrEnum):
    FILE = "file"
    TREE = "tree"


class Role(StrEnum):
    """DaemonCore's authorization levels: READ ⊂ WRITE ⊂ ADMINISTRATOR, plus DAEMON for agents."""

    READ = "READ"
    WRITE = "WRITE"
    ADMINISTRATOR = "ADMINISTRATOR"
    DAEMON = "DAEMON"

    def allows(self, needed: Role) -> bool:
        if self is needed:
            return True
        ladder = [Role.READ, Role.WRITE, Role.ADMINISTRATOR]
        return self in ladder and needed in ladder and ladder.index(self) >= ladder.index(needed)


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    role: Role
    scopes: tuple[str, ...] = ("default",)


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    weight: int = 1


class Credentials:
    """Secret keyword arguments of a storage (passwords, keys, tokens). Printing one shows only
    its keys, so a stray log line or repr cannot leak a value."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def __repr__(self) -> str:
        return f"Credentials(keys={sorted(self._values)})"

    def __bool__(self) -> bool:
        return bool(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values)))

    @property
    def keys(self) -> list[str]:
        return sorted(self._values)

    def reveal(self) -> dict[str, Any]:
        """The values, for the store to encrypt and for an agent's lease: nowhere else."""
        return dict(self._values)


@dataclass(frozen=True, slots=True)
class Storage:
    name: str
    url: str
    site: str = "default"
    options: dict[str, Any] = field(default_factory=dict)
    credentials: Credentials = field(default_factory=Credentials)
    health: dict[str, Any] | None = None

    def backend_options(self) -> dict[str, Any]:
        """The fsspec keyword arguments that open it: options, then credentials (revealed:
        for the engine and an agent's lease only, never to show)."""
        return {**self.options, **self.credentials.reveal()}


def endpoint_storage(name: str) -> Storage:
    """The storage of an endpoint outside the registry (``https://host``): its own URL as the
    root, no options or credentials, the site ``UNKNOWN``."""
    return Storage(name=name, url=name, site=UNKNOWN_SITE)


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    host: str
    state: AgentState
    capabilities: dict[str, Any]
    last_heartbeat: datetime | None
    status: dict[str, Any] = field(default_factory=dict)
    paused_at: datetime | None = None  # draining since then: no new leases


@dataclass(frozen=True, slots=True)
class TransferOptions:
    checksum: Checksum = Checksum.ADLER32
    overwrite: Overwrite = Overwrite.NEVER
    retries: int = 3
    priority: int = 3
    unzip: bool = False  # a zip or tar source is unpacked into the destination folder
    bandwidth: int | None = None  # bytes per second, per task
    unzip_max_bytes: int | None = None  # what an archive may expand to (None: the default)
    notify: str | None = None  # an http(s) URL that receives each run's outcome summary
    labels: tuple[str, ...] = ()  # free tags to find transfers by
    # When each run must end: this many seconds after it was due, or (a transfer that runs
    # once) at this instant. Objects not done by then are CANCELED with the reason "deadline".
    deadline_s: int | None = None
    deadline_at: datetime | None = None
    # A run not started this long after it was due is late: a "run.late" event and notification.
    late_after_s: int | None = None
    filters: TreeFilter | None = None  # what of a tree is taken (tree transfers only)
    skip_source_errors: bool = False  # a source not found or denied: SKIPPED, not FAILED
    verify_source: bool = False  # each source read a second time, apart from the copy
    sync: SyncLevel | None = None  # which existing destinations are replaced (domain.sync)
    delete_extra: bool = False  # destination files the source lacks are deleted (trees only)
    max_delete: int | None = None  # with delete_extra: the most a run deletes (None: 100)

    def __post_init__(self) -> None:
        check_sync_options(
            self.overwrite,
            self.sync,
            delete_extra=self.delete_extra,
            max_delete=self.max_delete,
            unzip=self.unzip,
        )

    @property
    def delete_limit(self) -> int:
        """The most files a run may delete (``max_delete``, or the default)."""
        return DEFAULT_MAX_DELETE if self.max_delete is None else self.max_delete

    # What the one object's checksum must be ("sha256:HEX"): each copy, from whichever
    # replica, is checked against it before it is moved into place.
    expected_checksum: str | None = None

    def late_at(self, due_at: datetime | None) -> datetime | None:
        """When a run due at ``due_at`` is late if it has not started; None without the option
        or an occurrence."""
        if self.late_after_s is None or due_at is None:
            return None
        return due_at + timedelta(seconds=self.late_after_s)

    def run_deadline(self, due_at: datetime) -> datetime | None:
        """When a run due at ``due_at`` must end; None without a deadline."""
        if self.deadline_at is not None:
            return self.deadline_at
        if self.deadline_s is not None:
            return due_at + timedelta(seconds=self.deadline_s)
        return None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "checksum": self.checksum.value,
            "overwrite": self.overwrite.value,
            "retries": self.retries,
            "priority": self.priority,
            "unzip": self.unzip,
            "bandwidth": self.bandwidth,
        }
        # Absent unless given: the spec hash of submissions made before they existed holds.
        if self.unzip_max_bytes is not None:
            data["unzip_max_bytes"] = self.unzip_max_bytes
        if self.notify is not None:
            data["notify"] = self.notify
        if self.labels:
            data["labels"] = list(self.labels)
        if self.deadline_s is not None:
            data["deadline_s"] = self.deadline_s
        if self.deadline_at is not None:
            data["deadline_at"] = self.deadline_at.astimezone(UTC).isoformat()
        if self.late_after_s is not None:
            data["late_after_s"] = self.late_after_s
        if self.filters:
            data["filters"] = self.filters.to_json()
        if self.skip_source_errors:
            data["skip_source_errors"] = True
        if self.verify_source:
            data["verify_source"] = True
        if self.sync is not None:
            data["sync"] = self.sync.value
        if self.delete_extra:
            data["delete_extra"] = True
        if self.max_delete is not None:
            data["max_delete"] = self.max_delete
        if self.expected_checksum is not None:
            data["expected_checksum"] = self.expected_checksum
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransferOptions:
        bandwidth, unzip_max = data.get("bandwidth"), data.get("unzip_max_bytes")
        return cls(
            checksum=Checksum(data.get("checksum", Checksum.ADLER32)),
            overwrite=Overwrite(data.get("overwrite", Overwrite.NEVER)),
            retries=int(data.get("retries", 3)),
            priority=int(data.get("priority", 3)),
            unzip=bool(data.get("unzip", False)),
            bandwidth=int(bandwidth) if bandwidth is not None else None,
            unzip_max_bytes=int(unzip_max) if unzip_max is not None else None,
            notify=data.get("notify"),
            labels=tuple(sorted(set(data.get("labels") or ()))),
            **_deadline(data),
            late_after_s=_late_after(data),
            filters=TreeFilter.from_json(filters) or None
            if (filters := data.get("filters"))
            else None,
            skip_source_errors=bool(data.get("skip_source_errors", False)),
            verify_source=bool(data.get("verify_source", False)),
            sync=SyncLevel(sync) if (sync := data.get("sync")) is not None else None,
            delete_extra=bool(data.get("delete_extra", False)),
            max_delete=int(most) if (most := data.get("max_delete")) is not None else None,
            expected_checksum=data.get("expected_checksum"),
        )


def _deadline(data: dict[str, Any]) -> dict[str, Any]:
    """The deadline of options as stored (``deadline_s`` or ``deadline_at``) or as the API
    takes it (``deadline``: ``+6h``, or an instant with its offset)."""
    from ferry.domain.schedules import relative_time  # cron and dateutil: only when asked

    given = data.get("deadline")
    if given is None:
        seconds, at = data.get("deadline_s"), data.get("deadline_at")
        return {
            "deadline_s": int(seconds) if seconds is not None else None,
            "deadline_at": _instant(at) if at is not None else None,
        }
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    if (later := relative_time(given, epoch)) is not None:
        return {"deadline_s": int((later - epoch).total_seconds())}
    return {"deadline_at": _instant(given)}


def _late_after(data: dict[str, Any]) -> int | None:
    """``late_after_s`` as stored, or ``late_after`` as the API takes it (``+5m``)."""
    from ferry.domain.schedules import relative_time  # cron and dateutil: only when asked

    if (given := data.get("late_after")) is not None:
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        later = relative_time(given if given.startswith("+") else f"+{given}", epoch)
        if later is None:
            raise InvalidRequest(f"late_after is a duration (5m, 1h), not {given!r}")
        return int((later - epoch).total_seconds())
    seconds = data.get("late_after_s")
    return int(seconds) if seconds is not None else None


def _instant(text: str) -> datetime:
    """An ISO 8601 instant; one without an offset is read as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# What a location given by a user may be (as PATH_MAX), and what an error text kept on a task,
# an outcome or a report may be: longer ones are cut where they are made, so that no layer
# refuses a whole batch for one long text.
LOCATION_MAX = 4096
ERROR_TEXT_MAX = 4000


def clip_error(text: str, limit: int = ERROR_TEXT_MAX) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and how much was cut."""
    if len(text) <= limit:
        return text
    kept = limit - 40  # room for the marker, whatever the count in it
    return f"{text[:kept]} … [{len(text) - kept} characters cut]"


@dataclass(frozen=True, slots=True)
class TransferSpec:
    """What to move: sources, the destination folder, how. ``replicas``, when given, has one
    entry per source: the other places the same object may be read from, in the order they
    are tried after it (file transfers only; an empty entry: that source has none)."""

    kind: TransferKind
    sources: tuple[Location, ...]
    destination: Location
    options: TransferOptions = TransferOptions()
    replicas: tuple[tuple[Location, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            raise InvalidRequest("a transfer needs at least one source")
        if self.options.filters and self.kind is not TransferKind.TREE:
            raise InvalidRequest("filters apply to tree transfers only (use --tree)")
        if self.options.delete_extra and self.kind is not TransferKind.TREE:
            raise InvalidRequest("delete_extra applies to tree transfers only (use --tree)")
        if self.replicas:
            check_replicas(self.sources, self.replicas, tree=self.kind is TransferKind.TREE)

    def alternatives(self) -> list[tuple[Location, ...]]:
        """Each source's places to read it from: itself first, then its replicas."""
        others = self.replicas or ((),) * len(self.sources)
        return [(s, *more) for s, more in zip(self.sources, others, strict=True)]

    def all_sources(self) -> list[Location]:
        """Every place the transfer may read from: its sources and their replicas."""
        return [place for places in self.alternatives() for place in places]

    def to_json(self) -> dict[str, Any]:
        # A source with replicas is the list of its places; one without stays a string, so
        # that a spec without replicas keeps its JSON and hash.
        return {
            "kind": self.kind.value,
            "sources": [
                [str(p) for p in places] if len(places) > 1 else str(places[0])
                for places in self.alternatives()
            ],
            "destination": str(self.destination),
            "options": self.options.to_json(),
        }

    def storages(self) -> set[str]:
        return {s.storage for s in self.all_sources()} | {self.destination.storage}


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    scope: str
    submitter: str
    spec: TransferSpec
    schedule: dict[str, Any]
    status: TransferStatus
    created_at: datetime
    next_run_at: datetime | None
    runs: int
    error: str | None
    submission_id: str | None = None
    paused_at: datetime | None = None  # paused since then: no new copies, no new runs
    pause_stops: bool = False  # paused with its active copies stopped (``pause --now``)


@dataclass(frozen=True, slots=True)
class RunCounts:
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    canceled: int = 0
    bytes: int = 0
    filtered: int = 0  # tree entries its filters left out: not objects, not in ``total``
    deleted: int = 0  # destination files --delete-extra deleted: objects, not in ``total``
    deleted_bytes: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped + self.canceled


@dataclass(frozen=True, slots=True)
class ListedThrough:
    """How far a tree run's listing has come, committed with the tasks it made: ``source`` is
    the index of the source being listed (those before it are done) and ``cursor`` the
    ``TreeEntry.cursor`` of its last entry that has its task. An expansion begun again after a
    restart lists on from there instead of from the start."""

    source: int
    cursor: str


@dataclass(frozen=True, slots=True)
class Run:
    transfer_id: str
    number: int
    status: RunStatus
    due_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expanded: bool
    counts: RunCounts
    error: str | None
    occurrences: int = 1  # due occurrences this run stands for (missed ones coalesce)
    skipped_occurrences: int = 0  # occurrences that came due while it was ONGOING
    size_total: int = 0  # bytes of its objects whose size was known when listed
    last_result_at: datetime | None = None  # when its latest object ended
    listed: ListedThrough | None = None  # None: not listed yet, or a run from before 0014
    numbered: bool = False  # its objects are numbered, so small ones may travel in chunks
    deadline_at: datetime | None = None  # when it must end (its transfer's deadline option)
    past_deadline: bool = False  # it was ended at its deadline
    deletion: DeletionState | None = None  # its --delete-extra step (None: not asked for)
    deletion_note: str | None = None  # what that step did, or why it deleted nothing


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run has come: bytes moved (finished objects plus what active ones have
    reported), the rate since it started, and an estimate of the time left."""

    bytes_moved: int
    bytes_total: int | None
    rate_bps: float | None
    eta_s: float | None


def run_progress(run: Run, active_bytes: int, now: datetime) -> Progress:
    moved = run.counts.bytes + active_bytes
    total = run.size_total or None
    elapsed = (now - run.started_at).total_seconds() if run.started_at else 0.0
    rate = moved / elapsed if elapsed > 0 and moved > 0 else None
    eta = (total - moved) / rate if rate and total is not None and total > moved else None
    return Progress(moved, total, round(rate, 1) if rate else None, round(eta, 1) if eta else None)


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task about to be created: one object of one run."""

    source: Location
    destination: Location
    size: int | None = None
    state: TaskState = TaskState.QUEUED
    error_class: str | None = None
    error: str | None = None
    folder: bool = False  # an empty folder of a tree, made at the destination
    replicas: tuple[Location, ...] = ()  # other places its source may be read from, in order


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    transfer_id: str
    run: int
    state: TaskState
    source: Location
    destination: Location
    size: int | None
    bytes_done: int
    checksum: str | None
    attempts: int
    error_class: str | None
    error: str | None


def file_task(
    source: Location, destination_folder: Location, replicas: tuple[Location, ...] = ()
) -> PlannedTask:
    """A file transfer puts each source under the destination folder with its own name (that
    of its first place, whichever replica it is then read from)."""
    name = posixpath.basename(source.path)
    if not name:
        raise InvalidRequest(f"source {source} names a storage root, not a file: use a tree")
    return PlannedTask(source, destination_folder.child(name), replicas=replicas)


def tree_task(
    source_root: Location, relative: str, destination_folder: Location, size: int | None
) -> PlannedTask:
    """A tree transfer keeps the structure below the source root inside the destination folder."""
    return PlannedTask(source_root.child(relative), destination_folder.child(relative), size)


def run_outcome(counts: RunCounts) -> RunStatus:
    """COMPLETED when every object is DONE or SKIPPED; WITH_ERRORS when some failed (or were
    stopped) and some moved; FAILED when objects failed and none moved. A canceled transfer's
    run is CANCELED whatever its counts: the store decides that before asking here."""
    if counts.failed == 0 and counts.canceled == 0:
        return RunStatus.COMPLETED
    if counts.done + counts.skipped > 0:
        return RunStatus.COMPLETED_WITH_ERRORS
    return RunStatus.FAILED


def transfer_status_after(run_status: RunStatus) -> TransferStatus:
    return TransferStatus(run_status.value)
