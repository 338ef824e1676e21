"""A task an agent holds a lease on: what its lease said, how far its copy got, and the
report that ends it."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.domain.locations import Location, split_location
from ferry.domain.options import Checksum, Overwrite
from ferry.protocol import LeasedTaskPublic, ReportedState, TaskReport


@dataclass(slots=True)
class HeldTask:
    """A task this agent holds a lease on, from lease to acknowledged report. Its flags are
    plain attributes (set by the event loop, read by a copy thread): a lease of a thousand
    small objects made two thousand events and their locks."""

    id: int
    lease: str
    transfer: str
    source: Location
    destination: Location
    checksum: Checksum
    overwrite: Overwrite
    attempt: int = 1
    unzip: bool = False
    unzip_max_bytes: int | None = None
    bandwidth: int | None = None
    folder: bool = False
    scope: str = "default"
    priority: int = 3
    size: int | None = None
    bytes_done: int = 0
    started: bool = False
    done: bool = False
    shutting_down: bool = False
    canceled: bool = False

    def add_bytes(self, n: int) -> None:
        self.bytes_done += n

    def current_bandwidth(self) -> int | None:
        """Its bandwidth now: a channel's share changes as the channel's tasks come and go."""
        return self.bandwidth

    def should_stop(self) -> bool:
        return self.canceled

    @classmethod
    def leased(cls, task: LeasedTaskPublic) -> HeldTask:
        return cls(
            id=task.id,
            lease=task.lease,
            transfer=task.transfer,
            source=split_location(task.source),  # confined when the copy resolves them
            destination=split_location(task.destination),
            checksum=task.checksum,
            overwrite=task.overwrite,
            attempt=task.attempt,
            unzip=task.unzip,
            unzip_max_bytes=task.unzip_max_bytes,
            bandwidth=task.bandwidth,
            folder=task.folder,
            scope=task.scope,
            priority=task.priority,
            size=task.size,
        )

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
            lease=self.lease,
            state=state,
            bytes=bytes,
            checksum=checksum,
            error=error,
            error_class=error_class,
            retryable=retryable,
            started=started,
        )
