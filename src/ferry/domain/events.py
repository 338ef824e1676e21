"""Events: what happened, past tense, frozen (DESIGN §10 ``GET /events``). The server publishes
them as state changes; subscribers (server-sent events, ``ferry watch``) read them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def transfer_ids(self) -> frozenset[str]:
        """The transfers it concerns (a subscriber may follow only one)."""
        transfer = getattr(self, "transfer", None)
        return frozenset({transfer}) if transfer else frozenset()

    def to_json(self) -> dict[str, Any]:
        # Field by field, not ``asdict``: that deep-copies every change of a batch of hundreds,
        # and an event is frozen and serialized at once.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["at"] = self.at.isoformat()
        return {"event": self.kind, **data}


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferChanged(Event):
    """The transfer took a new status (submitted, started, finished, canceled)."""

    kind: ClassVar[str] = "transfer"
    transfer: str
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run"
    transfer: str
    run: int
    status: str
    objects: dict[str, int]
    bytes: int
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksChanged(Event):
    """Objects of one transfer that changed state, as a batch (one agent report)."""

    kind: ClassVar[str] = "tasks"
    transfer: str
    changes: list[dict[str, Any]]  # {"task", "state", "error"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressReported(Event):
    """Bytes moved so far by the active objects of one transfer's run (from heartbeats)."""

    kind: ClassVar[str] = "progress"
    transfer: str
    run: int
    bytes_moved: int
    bytes_total: int | None
    rate_bps: float | None
    eta_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLost(Event):
    kind: ClassVar[str] = "agent"
    agent: str
    name: str
    reason: str
    requeued: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLate(Event):
    """A run of the transfer was due at ``due_at`` and had not started ``late_after_s`` later:
    the transfer's previous run still went on, or no server was running (then it has
    ``started`` since, late)."""

    kind: ClassVar[str] = "run.late"
    transfer: str
    run: int  # its number (the number it takes when it starts)
    due_at: str
    late_after_s: int
    started: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferPaused(Event):
    """The transfer was paused: its objects are not leased, its occurrences are skipped;
    ``stopping`` active copies were told to stop (``pause --now``) and are given back."""

    kind: ClassVar[str] = "transfer.paused"
    transfer: str
    paused: int  # objects taken out of the queue
    stopping: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferResumed(Event):
    kind: ClassVar[str] = "transfer.resumed"
    transfer: str
    resumed: int  # objects put back in the queue


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSkipped(Event):
    """An occurrence of a periodic transfer came due while it was paused: the run it would
    have been is recorded SKIPPED (``occurrences`` it stands for, when the server was away)."""

    kind: ClassVar[str] = "run.skipped"
    transfer: str
    run: int
    due_at: str
    occurrences: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPaused(Event):
    """The agent drains: it gets no new leases and finishes what it holds."""

    kind: ClassVar[str] = "agent.paused"
    agent: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentResumed(Event):
    kind: ClassVar[str] = "agent.resumed"
    agent: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOptimized(Event):
    """The link optimizer moved a channel's limit from ``previous`` to ``limit``, for
    ``reason``, after a window that moved ``bytes_per_s`` and ``objects_per_s`` with
    ``success_rate`` of its attempts succeeding (None: too few to judge)."""

    kind: ClassVar[str] = "channel.optimized"
    source_site: str
    destination_site: str
    limit: int
    previous: int
    reason: str
    bytes_per_s: float
    objects_per_s: float
    success_rate: float | None = None


def event_from_json(data: dict[str, Any]) -> Event:
    """The event ``Event.to_json`` wrote; raises ``KeyError`` or ``TypeError`` for one of a
    kind or shape this server does not know (a newer server's)."""
    fields_of = dict(data)
    kind = _KINDS[fields_of.pop("event")]
    at = datetime.fromisoformat(fields_of.pop("at"))
    return kind(at=at, **fields_of)


_KINDS: dict[str, type[Event]] = {
    kind.kind: kind
    for kind in (
        TransferChanged,
        RunFinished,
        TasksChanged,
        ProgressReported,
        AgentLost,
        RunLate,
        TransferPaused,
        TransferResumed,
        RunSkipped,
        AgentPaused,
        AgentResumed,
        ChannelOptimized,
    )
}

# The kinds a subscriber may ask for (``lagged`` always comes: it says what was missed).
EventKind = Literal[
    "transfer",
    "run",
    "run.late",
    "tasks",
    "progress",
    "agent",
    "transfer.paused",
    "transfer.resumed",
    "run.skipped",
    "agent.paused",
    "agent.resumed",
    "channel.optimized",
]
