"""HTTP schemas, one per purpose; the client parses the same ones."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from ferry.api.protocol import AGENT_NAME
from ferry.api.wire import ErrorText, Flag, Real, Whole
from ferry.domain.channels import ChannelState
from ferry.domain.filters import TreeFilter
from ferry.domain.locations import LOCATION_PATTERN
from ferry.domain.options import Checksum, Overwrite
from ferry.domain.replicas import REPLICAS_MAX
from ferry.domain.schedules import (
    Schedule,
    ScheduleKind,
    Unit,
    relative_time,
    to_instant,
)
from ferry.domain.sync import DeletionState, SyncLevel, check_sync_options
from ferry.domain.transfers import LOCATION_MAX, TransferKind
from ferry.errors import InvalidRequest, InvalidSchedule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


RelativeTime = Annotated[str, Field(pattern=r"^\+\d+[smhd]$", description="+30s, +10m, +2h, +1d")]
When = datetime | RelativeTime
_AFTER_DUE = re.compile(r"^\+[1-9]\d{0,6}[smhd]$")
_DEADLINE_FORMS = "+DURATION (+30s, +10m, +6h, +1d) or an ISO 8601 instant with its offset"


class FiltersIn(_Strict):
    """What of a tree is taken, as rclone's filters (README, "Filters on tree transfers")."""

    rules: list[Annotated[str, Field(min_length=3, max_length=4096)]] = Field(
        default_factory=list,
        max_length=1000,
        description="'+ GLOB' (include) or '- GLOB' (exclude) each, tried in order: the first"
        " that matches decides, a path none matches is kept. The command line puts its"
        " --include, --exclude and --filter rules in rclone's order, then '- **' after any"
        " include",
    )
    min_size: Whole | None = Field(None, ge=0, description="bytes; smaller files are left out")
    max_size: Whole | None = Field(None, ge=0, description="bytes; larger files are left out")
    min_age: str | None = Field(
        None,
        max_length=64,
        description="files modified after this are left out: a duration back from the run's"
        " listing (90s, 15m, 6h, 2d) or an ISO 8601 time",
    )
    max_age: str | None = Field(
        None, max_length=64, description="files modified before this are left out (as min_age)"
    )

    @model_validator(mode="after")
    def _a_filter_that_holds(self) -> FiltersIn:
        self.to_domain()  # a bad glob, rule or age, bounds that leave nothing: refused here
        return self

    def to_domain(self) -> TreeFilter:
        try:
            return TreeFilter.from_json(self.model_dump(exclude_none=True))
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from exc


class TransferOptionsIn(_Strict):
    checksum: Checksum = Checksum.ADLER32
    overwrite: Overwrite = Overwrite.NEVER
    retries: Annotated[Whole, Field(ge=0, le=100)] = 3
    priority: Annotated[Whole, Field(ge=1, le=5)] = 3
    unzip: Flag = Field(False, description="unpack a zip or tar source into the destination folder")
    bandwidth: Whole | None = Field(None, ge=1, description="bytes per second, per object")
    unzip_max_bytes: Whole | None = Field(
        None,
        ge=1,
        description="with unzip: what an archive may expand to, in bytes (an archive past it is"
        " refused whole); by default 100 times the archive's size, at least 16 MiB",
    )
    notify: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://[^\s@]+$",
        description="http(s) URL that receives each run's outcome summary (POST, JSON)",
    )
    labels: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:=-]{1,64}$")]] = Field(
        default_factory=list, max_length=16
    )
    deadline: str | None = Field(
        None,
        max_length=64,
        description="when each run must end: a time after it was due (+30s, +10m, +6h, +1d),"
        " or, for a transfer that runs once, an instant with its offset; objects not done by"
        ' then are CANCELED with the reason "deadline" and the run ends CANCELED',
    )

    late_after: str | None = Field(
        None,
        pattern=r"^\+?[1-9]\d{0,6}[smhd]$",
        description="a run not started this long after it was due (5m, 1h) is late: a"
        ' "run.late" event and notification say so, once per occurrence',
    )
    filters: FiltersIn | None = Field(None, description="tree transfers only")
    skip_source_errors: Flag = Field(
        False,
        description="a source object not found or permission-denied (a file, or a tree's"
        " folder that cannot be listed) ends SKIPPED with the reason instead of FAILED",
    )
    sync: SyncLevel | None = Field(
        None,
        description="which existing destination files are replaced (Globus's sync levels"
        " 0-3): exists (none: only what the destination lacks is copied), size (those whose"
        " size differs), mtime (also those older than the source), checksum (also those whose"
        " checksum differs). Stands instead of overwrite, which may then be never (the"
        " default) or say the same (if-different with checksum)",
    )
    delete_extra: Flag = Field(
        False,
        description="tree transfers: once every copy of a run succeeded, delete the"
        " destination files that the source's listing does not have (what the filters leave"
        " out is not deleted); each is an object of the run, DELETED",
    )
    max_delete: Whole | None = Field(
        None,
        ge=0,
        description="with delete_extra: a run that would delete more files than this (default"
        " 100) deletes none and says why",
    )

    verify_source: Flag = Field(
        False,
        description="read each source object a second time, apart from the copy, and retry the"
        " object when the two reads differ (a byte damaged on its way out of the source); costs"
        " one more read of every source",
    )

    expected_checksum: str | None = Field(
        None,
        max_length=80,
        pattern=r"^(adler32|md5|sha256):[0-9a-f]+$",
        description="what the object's checksum must be, ALGORITHM:HEX (the checksum option's"
        " algorithm): each copy, from the source or any replica, is checked against it before"
        " it is moved into place. A file transfer of one source only; not with unzip",
    )

    @model_validator(mode="after")
    def _expected_checksum_fits(self) -> TransferOptionsIn:
        if self.expected_checksum is None:
            return self
        algorithm = self.expected_checksum.partition(":")[0]
        if algorithm != self.checksum.value:
            raise ValueError(
                f"expected_checksum is a {algorithm} checksum: set checksum to {algorithm}"
            )
        if self.unzip:
            raise ValueError("expected_checksum is an object's: not with unzip")
        return self

    @model_validator(mode="after")
    def _unzip_limit_needs_unzip(self) -> TransferOptionsIn:
        if self.unzip_max_bytes is not None and not self.unzip:
            raise ValueError("unzip_max_bytes applies only with unzip")
        return self

    @model_validator(mode="after")
    def _verify_source_of_a_summed_copy(self) -> TransferOptionsIn:
        if self.verify_source and self.checksum is Checksum.NONE:
            raise ValueError("verify_source compares checksums: give a checksum, not none")
        if self.verify_source and self.unzip:
            raise ValueError("verify_source applies to copies, not to unpacked archives")
        return self

    @model_validator(mode="after")
    def _sync_and_deletion_hold(self) -> TransferOptionsIn:
        try:
            check_sync_options(
                self.overwrite,
                self.sync,
                delete_extra=self.delete_extra,
                max_delete=self.max_delete,
                unzip=self.unzip,
            )
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from exc
        return self

    @field_validator("deadline")
    @classmethod
    def _deadline_is_after_due_or_an_instant(cls, value: str | None) -> str | None:
        if value is None or _AFTER_DUE.match(value):
            return value
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"a deadline is {_DEADLINE_FORMS}, not {value!r}") from None
        if instant.tzinfo is None:
            raise ValueError("give the deadline's offset (2026-12-08T06:00:00Z) or +DURATION")
        return instant.isoformat()

    def instant_deadline(self) -> bool:
        return self.deadline is not None and not self.deadline.startswith("+")

    @field_validator("notify")
    @classmethod
    def _notify_is_a_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                url = httpx.URL(value)
            except httpx.InvalidURL as exc:
                raise ValueError(f"not a URL: {exc}") from exc
            if not url.host:
                raise ValueError("the URL has no host")
        return value


# Which fields each kind of schedule takes besides ``kind`` and ``timezone``.
_SCHEDULE_FIELDS = {
    ScheduleKind.DIRECT: set(),
    ScheduleKind.AT: {"at"},
    ScheduleKind.EVERY: {"unit", "interval", "start", "until", "count"},
    ScheduleKind.CRON: {"expr", "start", "until", "count"},
}


class ScheduleIn(_Strict):
    """When to run (DESIGN §3). Instants are ISO 8601 (one without an offset is read on the
    wall clock of ``timezone``) or relative to the moment the server receives them."""

    kind: ScheduleKind = ScheduleKind.DIRECT
    at: When | None = None
    unit: Unit | None = None
    interval: Whole = Field(1, ge=1)
    start: When | None = None
    until: When | None = None
    count: Whole | None = Field(None, ge=1)
    expr: str | None = Field(None, max_length=200, description="5-field cron expression")
    timezone: str = Field("UTC", max_length=64, description="IANA time zone")

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> ScheduleIn:
        given = {name for name in self.model_fields_set if name not in ("kind", "timezone")}
        if self.interval == 1:
            given.discard("interval")
        if extra := sorted(given - _SCHEDULE_FIELDS[self.kind]):
            raise ValueError(f"a {self.kind.value!r} schedule takes no {', '.join(extra)}")
        return self

    def to_domain(self, now: datetime) -> Schedule:
        """The domain schedule. A relative time counts from ``now``; ``at`` and ``until``
        without an offset are read on the wall clock of ``timezone`` (in a DST gap: the first
        instant after it); so is ``start``, which keeps its wall time for the whole series."""
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidSchedule(f"unknown time zone {self.timezone!r}") from exc

        def when(value: When | None, *, wall: bool = False) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                resolved = relative_time(value, now)
                assert resolved is not None  # the field's pattern admits nothing else
                return resolved
            if value.tzinfo is not None:
                return value
            return value.replace(tzinfo=zone) if wall else to_instant(value, zone)

        return Schedule(
            kind=self.kind,
            at=when(self.at),
            unit=self.unit,
            interval=self.interval,
            start=when(self.start, wall=True),
            until=when(self.until),
            count=self.count,
            expr=self.expr,
            timezone=self.timezone,
        )


# A location as a user gives it: STORAGE:PATH or an endpoint's URL, at most PATH_MAX long. The
# pattern is documented, not checked here: parse_location refuses the same texts, saying why
# in words rather than with the pattern.
LocationIn = Annotated[
    str,
    Field(min_length=1, max_length=LOCATION_MAX, json_schema_extra={"pattern": LOCATION_PATTERN}),
]


# One source of a file transfer with its replicas: the places it may be read from, tried in
# order (docs: README, "Source replicas").
ReplicasIn = Annotated[
    list[LocationIn],
    Field(
        min_length=1,
        max_length=REPLICAS_MAX,
        description="one object's places, tried in order: its source, then its replicas",
    ),
]


# A source is a location or a list of replicas; told apart by type, so that a bad list is
# refused for what is wrong with it rather than for not being a string.
SourceIn = Annotated[
    Annotated[LocationIn, Tag("location")] | Annotated[ReplicasIn, Tag("replicas")],
    Discriminator(lambda value: "location" if isinstance(value, str) else "replicas"),
]


class TransferCreate(_Strict):
    sources: list[SourceIn] = Field(
        min_length=1,
        max_length=100_000,
        description="STORAGE:PATH each; or, in a file transfer, a list of the places one object"
        " may be read from (its replicas), tried in order until one copy succeeds",
    )
    destination: LocationIn = Field(description="STORAGE:PATH of the destination folder")
    kind: TransferKind = TransferKind.FILE
    schedule: ScheduleIn = ScheduleIn()
    options: TransferOptionsIn = TransferOptionsIn()
    scope: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    submission_id: str | None = Field(None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _an_instant_deadline_is_for_one_run(self) -> TransferCreate:
        periodic = self.schedule.kind in (ScheduleKind.EVERY, ScheduleKind.CRON)
        if periodic and self.options.instant_deadline():
            raise ValueError(
                "a periodic transfer's deadline is a time after each run was due (+6h),"
                " not an instant"
            )
        return self

    @model_validator(mode="after")
    def _one_object_for_an_expected_checksum(self) -> TransferCreate:
        if self.options.expected_checksum is not None and (
            self.kind is not TransferKind.FILE or len(self.sources) != 1
        ):
            raise ValueError(
                "expected_checksum is one object's: a file transfer of one source (with its"
                " replicas, if any)"
            )
        return self

    @model_validator(mode="after")
    def _replicas_need_files(self) -> TransferCreate:
        if self.kind is TransferKind.TREE and any(not isinstance(s, str) for s in self.sources):
            raise ValueError("replicas apply to file transfers only: a tree has one source folder")
        return self

    @model_validator(mode="after")
    def _filters_need_a_tree(self) -> TransferCreate:
        if self.options.filters is not None and self.kind is not TransferKind.TREE:
            raise ValueError("filters apply to tree transfers only (kind: tree)")
        if self.options.delete_extra and self.kind is not TransferKind.TREE:
            raise ValueError("delete_extra applies to tree transfers only (kind: tree)")
        return self


class PushObject(_Strict):
    name: str = Field(min_length=1, max_length=4096, description="path below the destination")
    size: Whole | None = Field(None, ge=0)
    mtime: Real | None = Field(None, description="POSIX seconds, for overwrite=if-newer")


class PushCreate(_Strict):
    destination: LocationIn = Field(description="STORAGE:PATH of the destination folder")
    objects: list[PushObject] = Field(min_length=1, max_length=100_000)
    options: TransferOptionsIn = TransferOptionsIn()
    scope: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ttl_s: Real = Field(3600, gt=0, le=7 * 86400, description="how long the capability lives")

    @model_validator(mode="after")
    def _no_filters(self) -> PushCreate:
        _refuse_filters(self.options)
        return self


class PullCreate(_Strict):
    sources: list[LocationIn] = Field(
        min_length=1, max_length=10_000, description="files or folders"
    )
    options: TransferOptionsIn = TransferOptionsIn()
    scope: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ttl_s: Real = Field(3600, gt=0, le=7 * 86400)

    @model_validator(mode="after")
    def _no_filters(self) -> PullCreate:
        _refuse_filters(self.options)
        return self


def _refuse_filters(options: TransferOptionsIn) -> None:
    if options.filters is not None:
        raise ValueError("filters apply to tree transfers only, not to a push or a pull")
    if options.expected_checksum is not None:
        raise ValueError("expected_checksum applies to file transfers, not to a push or a pull")


class PassiveObject(BaseModel):
    name: str
    size: int | None


class ObjectResult(BaseModel):
    name: str
    state: str
    bytes: int = 0
    checksum: str | None = None
    error_class: str | None = None
    error: str | None = None
    retryable: bool = False


class PulledObject(_Strict):
    state: Literal["DONE", "SKIPPED", "FAILED"] = Field(
        description="SKIPPED: the local file exists and overwrite is never"
    )
    bytes: Whole = Field(0, ge=0)
    checksum: str | None = None
    error: ErrorText | None = None


SKIPPED_MAX = 1000  # names in one call that says which pulled objects the client has


class PulledSkipped(_Strict):
    names: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        max_length=SKIPPED_MAX,
        description="objects of the pull whose local copy is already there (overwrite never)",
    )


class SkippedReply(BaseModel):
    skipped: int = Field(description="how many of the names were waiting, now SKIPPED")


class ObjectCounts(BaseModel):
    total: int
    done: int
    failed: int
    skipped: int
    canceled: int
    filtered: int = Field(
        0, description="tree entries its filters left out: not objects, not in total"
    )


class ProgressPublic(BaseModel):
    bytes_moved: int
    bytes_total: int | None = Field(description="known when the source was listed (trees)")
    rate_bps: float | None = Field(description="bytes per second since the run started")
    eta_s: float | None = Field(description="seconds left at that rate, when the total is known")


class TransferPublic(BaseModel):
    id: str
    status: str
    kind: str
    scope: str
    submitter: str
    sources: list[str | list[str]] = Field(
        description="STORAGE:PATH each; a source with replicas as the list of its places"
    )
    destination: str
    options: dict[str, Any]
    schedule: dict[str, Any]
    created_at: datetime
    next_run_at: datetime | None
    runs: int
    objects: ObjectCounts
    bytes: int
    error: str | None
    submission_id: str | None
    progress: ProgressPublic | None = Field(None, description="of the run under way")
    paused_at: datetime | None = Field(
        None,
        description="paused since then: its objects are not leased and its occurrences are"
        " skipped until it is resumed (its status does not change)",
    )
    pause_stops: bool = Field(False, description="paused with its active copies stopped")


class DeletionPublic(BaseModel):
    state: DeletionState = Field(
        description="PENDING (once the copies end), DONE, HELD (nothing deleted: a copy"
        " failed or the run was canceled), FAILED (nothing deleted past max_delete, or a"
        " listing or deletion failed: the run's error says so)"
    )
    note: str | None = Field(description="what it did, or why it deleted nothing")
    deleted: int = Field(description="files deleted: DELETED objects of the run, not in total")
    bytes: int = Field(description="their size")


class RunPublic(BaseModel):
    number: int
    status: str
    due_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    objects: ObjectCounts
    bytes: int
    occurrences: int = Field(
        description="due occurrences this run stands for (missed ones coalesce)"
    )
    skipped_occurrences: int = Field(description="occurrences that came due while it ran")
    error: str | None
    deletion: DeletionPublic | None = Field(
        None, description="its --delete-extra step (null: not asked for)"
    )


class PlanEntryPublic(BaseModel):
    action: Literal["copy", "skip", "fail", "delete"]
    source: str = Field(description="for a deletion: where its source would be")
    destination: str
    size: int | None = Field(description="bytes; a deletion: the destination file's")
    reason: str = Field(description="why: a skip's reason is the one its object would record")


class PlanPublic(BaseModel):
    """What a run would do now: each entry in listing order, then the deletions."""

    entries: list[PlanEntryPublic]
    counts: dict[str, int] = Field(description="entries per action: copy, skip, fail, delete")
    bytes: dict[str, int] = Field(description="bytes per action")
    filtered: int = Field(description="tree entries the filters leave out")
    truncated: bool = Field(
        description="more entries than listed: counts and bytes still cover them all"
    )
    deletion: str | None = Field(description="why nothing would be deleted, if so")


class StorageCreate(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
    url: str = Field(min_length=1, max_length=2000, description="fsspec URL of the storage root")
    site: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    options: dict[str, Any] = Field(default_factory=dict, description="fsspec keyword arguments")
    credentials: dict[str, Any] = Field(
        default_factory=dict,
        description="secret keyword arguments (password, key, secret, token): encrypted at rest,"
        " handed only to agents, never returned",
    )


class StorageHealth(BaseModel):
    reachable: bool
    latency_ms: float | None
    checked_at: str
    error: str | None


class GrantIn(_Strict):
    read: bool = Field(False, description="the scope's transfers may read from the storage")
    write: bool = Field(False, description="the scope's transfers may write to the storage")


class GrantPublic(BaseModel):
    storage: str
    scope: str
    read: bool
    write: bool


class StoragePublic(BaseModel):
    name: str
    url: str
    site: str
    options: dict[str, Any]
    credentials: list[str] = Field(description="the names of its credentials, never their values")
    health: StorageHealth | None
    grants: list[GrantPublic] = Field(
        default=[], description="the scopes whose transfers may use it (those the caller sees)"
    )


class PassiveCreated(BaseModel):
    transfer: TransferPublic
    capability: str = Field(description="one-time, for this transfer's data only")
    expires_at: datetime
    objects: list[PassiveObject]


class TransferList(BaseModel):
    items: list[TransferPublic]
    next_cursor: str | None


class CancelResult(BaseModel):
    id: str
    status: str
    outcome: str
    canceled_objects: int
    stopping_objects: int


class PauseRequest(_Strict):
    now: bool = Field(
        False,
        description="stop the active copies too: each is given back to the queue, its attempt"
        " not spent, and goes on when the transfer is resumed",
    )


class PauseResult(BaseModel):
    id: str
    status: str
    paused_at: datetime | None
    outcome: str
    objects: int = Field(description="objects taken out of the queue, or put back in it")
    stopping_objects: int = Field(0, description="active copies told to stop")


class AttemptPublic(BaseModel):
    number: int
    state: str | None = Field(description="DONE, SKIPPED, FAILED, CANCELED, LOST or STOPPED")
    agent: str | None
    started_at: datetime | None
    finished_at: datetime
    bytes: int
    error_class: str | None
    error: str | None


class ObjectOutcome(BaseModel):
    id: int = Field(
        description="the object's number within its run, in listing order: what `cursor` "
        "takes (in a run made before objects were numbered, schema revision 0015, its task's id)"
    )
    source: str
    destination: str
    size: int | None
    bytes: int
    checksum: str | None
    status: str
    attempts: int
    error_class: str | None
    error: str | None
    agent: str | None = Field(None, description="the agent copying it, while it is ACTIVE")
    replica: str | None = Field(
        None,
        description="a source given with replicas: the place it was read from (the errors of"
        " those tried before it are in error)",
    )
    history: list[AttemptPublic]


class Outcomes(BaseModel):
    transfer: str
    run: int | None
    status: str
    started: bool
    message: str | None = None
    objects: list[ObjectOutcome]
    next_cursor: str | None = None


# --- agents (the records of their protocol are ferry.api.protocol's) ------------------------------


class AgentInvite(_Strict):
    name: str = Field(min_length=1, max_length=128, pattern=AGENT_NAME)
    ttl_s: Real = Field(3600, gt=0, le=30 * 86400, description="how long the secret is valid")


class AgentInvitation(BaseModel):
    name: str
    secret: str = Field(description="one-time: valid once, for this agent name only")
    expires_at: datetime


class AgentStatsPublic(BaseModel):
    ongoing: int = Field(description="objects it holds now")
    succeeded: int
    failed: int = Field(description="attempts that failed (retried or not)")
    canceled: int
    total: int
    bytes: int
    throughput: float = Field(description="bytes per second over the last minute")


class AgentPublic(BaseModel):
    id: str
    name: str
    host: str
    state: str
    version: str | None
    active: int = Field(description="the number of tasks it holds now")
    stats: AgentStatsPublic
    capabilities: dict[str, Any]
    last_heartbeat: datetime | None
    status: dict[str, Any] = Field(description="its last state dump (DUMP_STATE)")
    paused_at: datetime | None = Field(
        None, description="paused (draining) since then: it gets no new leases"
    )


class ChannelIn(_Strict):
    max_active: Whole | None = Field(
        None, ge=0, description="None: no limit; the ceiling when optimized (default 64)"
    )
    bandwidth: Whole | None = Field(None, ge=1, description="bytes per second, shared")
    state: ChannelState = ChannelState.ACTIVE
    bandwidth_timetable: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="in place of bandwidth, the rate by time of week: `Mon-Fri 08:00,50M;"
        " 19:00,off` (entries `[DAYS] HH:MM[:SS],RATE`; a rate alone holds all week)",
    )
    timezone: str = Field(
        "UTC", min_length=1, max_length=64, description="the timetable's clock: an IANA name"
    )
    optimize: bool = Field(
        False, description="the link optimizer moves its limit within min_active … max_active"
    )
    min_active: Whole | None = Field(
        None, ge=1, description="optimized only: the floor, and where the search starts (1)"
    )


class ChannelDecision(BaseModel):
    """The link optimizer's last verdict on a channel."""

    limit: int
    previous: int
    reason: str
    bytes_per_s: float = Field(description="over the window it judged")
    objects_per_s: float
    success_rate: float | None = Field(description="None: too few attempts to judge")


class ChannelPublic(BaseModel):
    source_site: str
    destination_site: str
    max_active: int | None
    bandwidth: int | None
    state: ChannelState
    active: int = Field(0, description="tasks active in it now")
    bandwidth_timetable: str | None = None
    timezone: str = "UTC"
    bandwidth_now: int | None = Field(
        None, description="bytes per second its tasks share now (bandwidth, or the timetable's)"
    )
    next_change: datetime | None = Field(
        None, description="when its timetable next changes the rate; null: it never does"
    )
    optimize: bool = False
    min_active: int | None = None
    limit: int | None = Field(
        None, description="objects it may move at once now (the optimizer's, when optimized)"
    )
    decision: ChannelDecision | None = None


class ScopeIn(_Strict):
    weight: Annotated[
        Whole, Field(ge=1, le=1000, description="its share in the round-robin across scopes")
    ]


class ScopePublic(BaseModel):
    name: str
    weight: int


class ProblemField(BaseModel):
    location: str = Field(description="where: body.sources.0, query.limit, path.transfer_id…")
    message: str


class Problem(BaseModel):
    """An error answer (RFC 9457), as ``application/problem+json``."""

    type: str = Field(description="always about:blank: the status says what kind")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, in words naming the ids involved")
    errors: list[ProblemField] | None = Field(None, description="each invalid field (422)")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    store: str = Field(description="ok, or why the database cannot take a write now")


# --- users and tokens (gCube's checkIn) ---------------------------------------------------------
UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")]
ScopeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Lifetime = Annotated[
    Whole | None, Field(None, ge=1, le=10 * 366 * 86400, description="seconds; none: no expiry")
]


class UserIn(_Strict):
    name: UserName
    role: Literal["READ", "WRITE", "ADMINISTRATOR"]
    scopes: list[ScopeName] = Field(min_length=1, max_length=64)
    expires_s: Lifetime = None


class TokenIn(_Strict):
    user: UserName | None = Field(None, description="whose (administrators); default: the caller")
    expires_s: Lifetime = None


class TokenPublic(BaseModel):
    id: str = Field(description="names the token (the start of its hash); the token is not kept")
    user: str | None
    role: str
    prefix: str | None = Field(description="the token's first characters")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="shown this once: only its hash is kept")


class UserPublic(BaseModel):
    name: str
    role: str
    scopes: list[str]
    created_at: datetime


class UserCreated(UserPublic):
    token: TokenCreated


class WhoAmI(BaseModel):
    name: str
    kind: Literal["user", "agent"]
    role: str
    scopes: list[str]
    token_expires_at: datetime | None


class AuditRecordPublic(BaseModel):
    seq: int
    at: datetime
    actor: str | None = Field(description="the user or agent; signal: the server's own")
    role: str | None
    address: str | None = Field(description="the caller's address")
    action: str = Field(description="method and route template, or a signal")
    params: dict[str, Any] = Field(
        description="the route's path parameters; a reload's: the keys it changed"
    )
    status: int = Field(description="the HTTP status it was answered")
    target: str | None = Field(description="what it made or named that its path does not show")
    prev_hash: str
    hash: str


class AuditCheckPublic(BaseModel):
    ok: bool
    records: int = Field(description="records found whole, from the first")
    head: str = Field(description="the last whole record's hash: note it elsewhere")
    first_bad: int | None = Field(description="the seq of the first record that does not hold")
    why: str | None
