"""A task an agent holds a lease on: what its lease said, how far its copy got, and the
report that ends it."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.domain.locations import Location, split_location
from ferry.protocol import LeasedTaskPublic, ReportedState, TaskReport


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
    bytes_done: int = 0
    started: bool = False
    done: bool = False
    shutting_down: bool = False
    canceled: bool = False

    @classmethod
    def from_lease(cls, task: LeasedTaskPublic) -> HeldTask:
        # Its locations are split, not parsed: they are confined when the copy resolves them.
        source, destination = split_location(task.source), split_location(task.destination)
        return cls(task, task.id, source, destination, task.bandwidth)

    def add_bytes(self, n: int) -> None:
        self.bytes_done += n

    def current_bandwidth(self) -> int | None:
        """Its bandwidth now: a channel's share changes as the channel's tasks come and go."""
        return self.bandwidth

    def should_stop(self) -> bool:
        return self.canceled

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
        )
