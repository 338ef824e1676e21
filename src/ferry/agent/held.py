"""What an agent holds a lease on, a single task or a chunk of small objects: what its lease
said, how far its copy got, and the reports that end it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ferry.api.protocol import ChunkReport, ChunkResult, LeasedTaskPublic, ReportedState, TaskReport
from ferry.domain.locations import Location, split_location

STOPPED_BY_AGENT = "the agent stopped before it finished"


@dataclass(slots=True)
class HeldTask:
    """A task this agent holds a lease on, from lease to acknowledged report: what its lease
    said (``leased``, as received), its locations, and how far its copy got. Its flags are
    plain attributes (set by the event loop, read by a copy thread): a lease of a thousand
    small objects made two thousand events and their locks."""

    leased: LeasedTaskPublic
    id: int
    source: Location
    destination: Location
    bandwidth: int | None  # its share of its channel's, changed by heartbeats
    throttled: bool = False  # its channel shares a bandwidth: heartbeats may set or lift it
    bytes_done: int = 0
    started: bool = False
    done: bool = False
    shutting_down: bool = False
    canceled: bool = False
    replicas: tuple[Location, ...] = ()  # other places its source may be read from

    @classmethod
    def from_lease(cls, task: LeasedTaskPublic) -> HeldTask:
        # Its locations are split, not parsed: they are confined when the copy resolves them.
        source, destination = split_location(task.source), split_location(task.destination)
        held = cls(task, task.id, source, destination, task.bandwidth, task.throttled)
        if task.replicas:
            held.replicas = tuple(map(split_location, task.replicas))
        return held

    def add_bytes(self, n: int) -> None:
        self.bytes_done += n

    def current_bandwidth(self) -> int | None:
        """Its bandwidth now: a channel's share changes as the channel's tasks come and go."""
        return self.bandwidth

    def should_stop(self) -> bool:
        return self.canceled

    def stopping(self) -> bool:
        """Whether a stop is its agent's shutting down (not a cancel)."""
        return self.shutting_down

    def ended(
        self,
        state: ReportedState,
        *,
        bytes: int = 0,
        checksum: str | None = None,
        error: str | None = None,
        error_class: str | None = None,
        retryable: bool = False,
        started: bool = True,
        resumed: int = 0,
        replica: str | None = None,
    ) -> TaskReport:
        """Its report: how the attempt this agent held ended."""
        return TaskReport(
            task=self.id,
            lease=self.leased.lease,
            state=state,
            bytes=bytes,
            checksum=checksum,
            error=error,
            error_class=error_class,
            retryable=retryable,
            started=started,
            resumed=resumed,
            replica=replica,
        )


@dataclass(slots=True)
class HeldChunk:
    """A carrier this agent holds a lease on (docs/small-files.md): the objects it carries,
    copied in order by one thread, and their results until the server has them.

    ``offsets`` are the places in ``objects`` (the whole chunk list) it carries, in order;
    ``reached`` how many of them its copy has started. Its copy thread appends to ``rows``
    under ``lock``; the event loop takes them from the front, under the same lock, once a
    report holding them is accepted. ``rest`` is set by the copy thread before it returns,
    and read by the event loop only once ``done`` (set by the event loop when the thread has
    returned): what its unstarted objects become, None when every one has a row."""

    leased: LeasedTaskPublic
    id: int
    source: Location  # the roots its objects' paths are relative to
    destination: Location
    objects: list[tuple[str, int]]
    first: int  # the run-wide number of objects[0]
    offsets: list[int]
    bandwidth: int | None
    throttled: bool = False  # as a single task's
    reached: int = 0
    rows: list[ChunkResult] = field(default_factory=list)
    rest: ReportedState | None = None
    bytes_done: int = 0
    started: bool = False
    done: bool = False
    partial_at: float = 0.0  # time.monotonic() before which its rows wait for its end
    shutting_down: bool = False  # the agent stops: stop at the next object, give back the rest
    canceled: bool = False  # stop the object in flight too
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_lease(cls, task: LeasedTaskPublic) -> HeldChunk:
        """The chunk a carrier's lease holds; raises ``ValueError`` for a task that is not one."""
        if task.chunk is None:
            raise ValueError(f"task {task.id} carries no chunk")
        listed = task.chunk.objects
        offsets = list(range(len(listed))) if task.chunk.only is None else task.chunk.only
        source, destination = split_location(task.source), split_location(task.destination)
        first = task.chunk.first
        held = cls(task, task.id, source, destination, listed, first, offsets, task.bandwidth)
        held.throttled = task.throttled
        return held

    @property
    def count(self) -> int:
        """How many objects it carries."""
        return len(self.offsets)

    def tag(self, offset: int) -> str:
        """The temporary-name tag of the object at ``offset``: its run and run-wide number."""
        return f"r{self.leased.run}o{self.first + offset}"

    def add_bytes(self, n: int) -> None:
        self.bytes_done += n

    def current_bandwidth(self) -> int | None:
        return self.bandwidth

    def should_stop(self) -> bool:
        return self.canceled

    def stopping(self) -> bool:
        """Whether its copy stops before the next object (a cancel, or the agent stopping)."""
        return self.canceled or self.shutting_down

    def add_row(self, row: ChunkResult) -> None:
        """Called by its copy thread as each object ends."""
        with self.lock:
            self.rows.append(row)

    def report(self, most: int, now: float) -> ChunkReport | None:
        """Its report of at most ``most`` rows not yet accepted, ``ended`` when its copy is
        done and the report holds every row left; None when there is nothing to say, or
        when it would be a partial report before ``partial_at`` (``now`` on the same clock)."""
        with self.lock:
            rows = self.rows[:most]
            ended = self.done and len(rows) == len(self.rows)
        if not ended and (not rows or now < self.partial_at):
            return None
        rest = self.rest if ended else None
        return ChunkReport(
            task=self.id, lease=self.leased.lease, results=rows, ended=ended, rest=rest
        )

    def accepted(self, report: ChunkReport) -> None:
        """Forget the rows of ``report``, which the server has."""
        with self.lock:
            del self.rows[: len(report.results)]
