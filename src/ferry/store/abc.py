"""The Store contract: what every store implementation promises the scheduler and the API.

Times are timezone-aware UTC. Every state change is a compare-and-set checked against
``ferry.domain.states``; a row that is no longer in the expected state is left alone, so two
servers (or a late agent report) can never apply the same change twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from ferry.api.protocol import ChunkReport
from ferry.domain.channels import Channel
from ferry.domain.chunks import PlannedChunk
from ferry.domain.events import RunLate
from ferry.domain.locations import Location
from ferry.domain.optimizer import Decision, OpenWindow, Search
from ferry.domain.states import TaskState, TransferStatus
from ferry.domain.sync import DeletionState
from ferry.domain.transfers import (
    Agent,
    ListedThrough,
    PlannedTask,
    Role,
    Run,
    Scope,
    Storage,
    Task,
    Transfer,
    TransferOptions,
    TransferSpec,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a client (by name) or an agent (by id), and with which role."""

    name: str
    role: Role
    agent_id: str | None = None
    expires_at: datetime | None = None  # the token's
    scopes: tuple[str, ...] = ()  # a user's: the scopes it acts in


@dataclass(frozen=True, slots=True)
class User:
    """A client of the service (gCube's checkIn): its role and the scopes it acts in."""

    name: str
    role: Role
    scopes: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``scope``'s transfers may do with ``storage``: read from it, write to it."""

    storage: str
    scope: str
    read: bool
    write: bool

    @property
    def access(self) -> str:
        return ",".join(
            name for name, given in (("read", self.read), ("write", self.write)) if given
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown of a token: never the token, only its first characters."""

    id: str  # the start of its hash: names it without revealing it
    user: str | None
    agent_id: str | None
    role: Role
    prefix: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One state-changing act, as the audit trail records it: who (a user's or agent's name,
    ``signal`` for the server's own signals), from which address, what (an HTTP method and
    route template, or a signal), on what (the route's path parameters and the id it made),
    and the result (the HTTP status). Never a body, a query string or a secret."""

    actor: str | None
    role: str | None
    address: str | None
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    target: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An ``AuditEntry`` as kept: its place in the chain, its time, the hash of the record
    before it and its own (sha256 of that hash and the record's canonical JSON)."""

    seq: int
    at: datetime
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """What ``verify_audit`` found: ``first_bad`` is the seq of the first record whose hash or
    link does not hold (None when the chain is whole), ``why`` says how; ``head`` is the last
    good record's hash, to note elsewhere (a chain cut at its end is whole)."""

    records: int
    head: str
    first_bad: int | None = None
    why: str | None = None


@dataclass(frozen=True, slots=True)
class NewTransfer:
    scope: str
    submitter: str
    spec: TransferSpec
    schedule: dict[str, Any]
    next_run_at: datetime
    submission_id: str | None = None
    # The schedule as the client wrote it (before defaults such as ``start`` = now were filled
    # in): what an idempotent resubmission is compared by.
    requested_schedule: dict[str, Any] | None = None


# The records of the agent protocol's store side (a lease's tasks, a report's results, the
# changes applied) are named tuples: a server moving thousands of objects a second makes and
# reads them by the thousand, and a frozen dataclass took three times as long to make.


class CarriedChunk(NamedTuple):
    """The small objects a leased carrier holds (docs/small-files.md): the number of its chunk
    list's first object, the list as stored (JSON text ``[[relative path, size], …]``, sent to
    the agent as it is) and the offsets into it that this lease carries (None: all)."""

    first: int
    objects: str
    only: list[int] | None


class LeasedTask(NamedTuple):
    id: int
    lease: str
    transfer_id: str
    run: int
    source: Location
    destination: Location
    size: int | None
    attempt: int
    options: TransferOptions
    scope: str = "default"
    priority: int = 3
    weight: int = 1  # the scope's, for the agent's own fair order of what it holds
    folder: bool = False  # an empty folder of a tree, made at the destination
    chunk: CarriedChunk | None = None  # a carrier: source and destination are the roots
    replicas: tuple[Location, ...] = ()  # other places its source may be read from, in order
    throttled: bool = False  # its channel shares a bandwidth: heartbeats may change its rate


@dataclass(slots=True)
class Shares:
    """What a heartbeat tells an agent of its tasks' bandwidth: the rate of each task whose
    channel shares one, the tasks whose channel's timetable sets no limit now, and the
    seconds until a timetable of theirs next changes a rate (None: none will)."""

    rates: dict[int, int]
    unlimited: list[int]
    next_change_s: float | None

    def changes_in(self, seconds: float | None) -> None:
        """A timetable changes a rate in ``seconds``: the soonest such change is kept."""
        if seconds is not None and (self.next_change_s is None or seconds < self.next_change_s):
            self.next_change_s = seconds


class TaskResult(NamedTuple):
    """What an agent reports for one leased task."""

    task_id: int
    lease: str
    state: TaskState  # DONE, SKIPPED, FAILED, CANCELED; QUEUED gives an unstarted task back
    bytes: int = 0
    checksum: str | None = None
    error_class: str | None = None
    error: str | None = None
    retryable: bool = False
    started: bool = True  # False: the copy never began, and no attempt was made
    resumed: int = 0  # of ``bytes``, those kept from an earlier attempt: not moved by this one
    replica: str | None = None  # a task with replicas: the place it was read from


class TaskChange(NamedTuple):
    """A result the store applied: the task's new state, and what the monitoring counts it
    under: its scope, its link (source site, destination site) and the bytes it moved."""

    task_id: int
    transfer_id: str
    run: int
    state: TaskState
    error: str | None = None
    scope: str = ""
    source_site: str = ""
    destination_site: str = ""
    bytes: int = 0


class LinkTally(NamedTuple):
    """What a link (source site, destination site) has moved, summed over every agent since
    the first report on it: objects that ended well, failed attempts, bytes moved."""

    succeeded: int
    failed: int
    bytes: int


class ChunkTally(NamedTuple):
    """What one carrier's report did: the carrier's state after it (``change``: ACTIVE while
    it goes on, DONE or CANCELED once it ended), and how its objects recorded now ended."""

    change: TaskChange
    done: int = 0
    skipped: int = 0
    failed: int = 0  # for good
    retried: int = 0  # failed, to be retried (WAITING)
    canceled: int = 0
    bytes: int = 0  # moved by the DONE ones


@dataclass(frozen=True, slots=True)
class ChunkResults:
    """What ``record_chunk_results`` applied: result rows recorded (``accepted``), rows of
    reports not held any more or already recorded (``ignored``), and per carrier reported."""

    accepted: int
    ignored: int
    carriers: list[ChunkTally]


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    agent: str | None
    started_at: datetime | None
    finished_at: datetime
    bytes: int
    error_class: str | None
    error: str | None
    state: str | None = None  # how it ended: DONE, SKIPPED, FAILED, CANCELED, LOST, STOPPED


@dataclass(frozen=True, slots=True)
class RunObject:
    """One object of a run as its outcomes show it. ``number`` is its number within the run
    (in a run made before objects were numbered, its task's id); ``task_id`` the id of the task
    row that holds it: its own, or for an object of a chunk its latest carrier's. ``agent`` is
    the agent copying it, while it is ACTIVE. ``history`` holds its ended attempts, oldest
    first."""

    number: int
    task_id: int
    state: TaskState
    source: Location
    destination: Location
    size: int | None
    bytes_done: int
    checksum: str | None
    attempts: int
    error_class: str | None
    error: str | None
    agent: str | None
    history: list[Attempt]
    replica: Location | None = None  # a source with replicas: the place it was read from


@dataclass(frozen=True, slots=True)
class LostAttempt:
    """An attempt that ended with its lease lost (its agent killed, its lease expired): it may
    have left its temporary file beside ``destination`` (``STORAGE:PATH``)."""

    task: int
    destination: str
    number: int
    # The tag of its temporary name: None for the task's id; a chunk's object's r{run}o{object}.
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class AgentStatistics:
    """gCube's agent statistics: objects it holds now, how those it finished ended, bytes it
    moved, and its throughput over the last minute (bytes per second)."""

    ongoing: int
    succeeded: int
    failed: int
    canceled: int
    bytes: int
    throughput: float

    @property
    def total(self) -> int:
        return self.ongoing + self.succeeded + self.failed + self.canceled


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """What the store holds now, counted for monitoring: transfers by status, QUEUED tasks by
    scope, ACTIVE tasks by link (source site, destination site), agents by state."""

    transfers: dict[str, int]
    queued: dict[str, int]
    active: dict[tuple[str, str], int]
    agents: dict[str, int]


@dataclass(frozen=True, slots=True)
class LinkActivity:
    """One link's (source site, destination site) tasks: QUEUED and ACTIVE now; DONE and FAILED
    since a given instant, the bytes the DONE ones moved (in all and per minute), the first of
    them ending, and the commonest error class of the FAILED ones with one of its messages."""

    source_site: str
    destination_site: str
    queued: int = 0
    active: int = 0
    done: int = 0
    failed: int = 0
    bytes: int = 0
    first_done_at: datetime | None = None
    top_error: str | None = None
    top_error_count: int = 0
    # (k, bytes) for each minute k after the instant counted from with DONE tasks in it: the
    # bytes of those that ended in [since + k minutes, since + k + 1 minutes)
    per_minute: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """A transfer's next run: when it is due, and what it is."""

    transfer_id: str
    scope: str
    schedule_kind: str
    status: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class TransferFilter:
    """What ``list_transfers`` keeps; ``None`` keeps everything."""

    status: TransferStatus | None = None
    kind: str | None = None
    submitter: str | None = None
    scope: str | None = None
    schedule_kind: str | None = None
    label: str | None = None
    scopes: tuple[str, ...] | None = None  # only these (a user's own), when given
    text: str | None = None  # in its id's start, a label, or its sources or destination


@dataclass(frozen=True, slots=True)
class Notification:
    """A run's outcome summary waiting to be posted to the transfer's ``notify`` URL."""

    id: int
    transfer_id: str
    run: int
    url: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class TransferPage:
    items: list[Transfer]
    next_cursor: str | None
    runs: dict[str, Run] = field(default_factory=dict)  # the latest run of each item with one


@dataclass(frozen=True, slots=True)
class TransferWithRun:
    transfer: Transfer
    run: Run | None  # its latest run
    active_bytes: int = 0  # what that run's ACTIVE objects have moved (from heartbeats)


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    transfer: Transfer
    canceled_tasks: int
    stopping_tasks: int


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    transfer: Transfer
    objects: int  # taken out of the queue (a pause) or put back in it (a resume)
    stopping_tasks: int  # active copies told to stop (``pause --now``)


class LifecycleStore(Protocol):
    """The database itself: opened and migrated, closed, checkpointed, the one-server
    loops' lock, and what monitoring reads of it."""

    async def open(self) -> None:
        """Connect and apply every pending migration."""

    async def close(self) -> None:
        """Close every connection (and stop the writer thread)."""

    async def checkpoint(self) -> None:
        """Write what the database journaled back into its file, off any request's path
        (SQLite's WAL; nothing to do for a server database). Never blocks writers."""

    def singleton(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Enter to learn whether this server holds the loop ``name`` for this turn (several
        servers on one database: one runs it, the others skip)."""

    async def bootstrap(self) -> str | None:
        """Create the default scope and the administrator client; return a new administrator
        token the first time (``None`` once one exists)."""

    @property
    def write_queue_depth(self) -> int:
        """Writes of this server waiting for the store's single writer (not counting the one
        under way)."""

    async def gauges(self) -> StoreGauges:
        """The counts of ``StoreGauges``, read in one transaction through indexes: a scrape
        of the monitoring reads them every few seconds."""

    async def link_activity(
        self, since: datetime, scopes: Sequence[str] | None
    ) -> list[LinkActivity]:
        """Each link's ``LinkActivity`` (links with nothing to count are left out), counting the
        tasks of ``scopes`` only (``None``: every scope). Through the partial indexes of one
        state each, DONE and FAILED by when they ended: cheap with millions of tasks."""

    async def next_runs(self, scopes: Sequence[str] | None, limit: int) -> list[ScheduledRun]:
        """The ``limit`` STANDBY or ONGOING transfers of ``scopes`` due next, soonest first."""

    async def check_writable(self) -> None:
        """Write to the database and roll nothing forward (a row set to what it holds): raises
        the driver's error when the database cannot take a write now (locked, full, gone)."""


class RegistryStore(Protocol):
    """Storages, their grants and health; channels and scopes (the registry an
    administrator keeps)."""

    # --- registry ---------------------------------------------------------------------------
    async def put_storage(self, storage: Storage) -> bool:
        """Create or replace the storage named ``storage.name`` (the server's own declarations
        at start: ``local`` and ``--storage``); whether it was created."""

    async def add_storage(self, storage: Storage) -> None:
        """Create the storage named ``storage.name``; ``Conflict`` if one has that name."""

    async def replace_storage(self, storage: Storage) -> None:
        """Replace the storage named ``storage.name``: ``StorageNotFound`` if there is none,
        ``Conflict`` while a waiting or running transfer names it (as ``delete_storage``)."""

    async def get_storage(self, name: str) -> Storage:
        """Raise ``StorageNotFound`` for an unknown name."""

    async def list_storages(self) -> list[Storage]:
        """Every registered storage, by name."""

    async def record_health(self, name: str, health: dict[str, Any]) -> None:
        """Keep ``health`` (``check_health``'s answer) as the storage's last known state."""

    async def delete_storage(self, name: str) -> None:
        """Remove a storage that no STANDBY or ONGOING transfer names (``Conflict`` otherwise)."""

    # --- storage grants (sql_grants) ---
    async def grant_storage(self, storage: str, scope: str, *, read: bool, write: bool) -> Grant:
        """Set what ``scope``'s transfers may do with ``storage``; ``NotFound`` for an unknown
        storage, ``InvalidRequest`` for an unknown scope or a grant of nothing."""

    async def ungrant_storage(self, storage: str, scope: str) -> None:
        """Take the grant away (``NotFound`` when there is none)."""

    async def storage_grants(
        self, *, storage: str | None = None, scopes: list[str] | None = None
    ) -> list[Grant]:
        """The grants of ``storage`` (or of all), to ``scopes`` (or to all), by storage and
        scope."""

    # --- channels and scopes ----------------------------------------------------------------
    async def put_channel(self, channel: Channel) -> Channel:
        """Create the channel, or replace the limits of the one with its ends; the channel as
        stored."""

    async def list_channels(self) -> list[Channel]:
        """Every channel, its limits and its optimizer's state."""

    async def active_by_channel(self) -> dict[tuple[str, str], int]:
        """Tasks ACTIVE now in each channel, by its (source site, destination site)."""

    async def link_tallies(self) -> dict[tuple[str, str], LinkTally]:
        """What each link (the sites of tasks, not yet resolved to a channel) has moved, as
        sums that only grow: ``record_results`` and ``record_chunk_results`` add to them in
        the transaction that records the results. A reader takes differences over time."""

    async def record_channel_decision(
        self,
        pair: tuple[str, str],
        search: Search,
        decision: Decision | None,
        window: OpenWindow | None = None,
    ) -> bool:
        """Keep the link optimizer's ``search``, last ``decision`` and open ``window`` in the
        channel ``pair`` (its limit becomes ``search.limit``); whether it did: False when the
        channel is gone or no longer optimized (set meanwhile by an administrator, whose
        setting wins)."""

    async def delete_channel(self, source_site: str, destination_site: str) -> None:
        """Raise ``NotFound`` when there is no such channel."""

    async def put_scope(self, scope: Scope) -> Scope:
        """Create the scope, or set the weight of the one with its name; the scope as stored."""

    async def list_scopes(self) -> list[Scope]:
        """Every scope and its weight."""


class AccessStore(Protocol):
    """Who may do what: the administrator's token, users and their tokens, and the audit
    trail of what they did."""

    async def issue_admin_token(self) -> str:
        """Issue one more administrator token; the existing ones keep working."""

    async def rotate_admin_token(self) -> str:
        """Issue a new administrator token; the previous ones stop working."""

    # --- security ---------------------------------------------------------------------------
    async def authenticate(self, token: str) -> Principal:
        """Raise ``Unauthenticated`` unless ``token`` is known. Tokens are stored hashed."""

    # --- users and tokens (sql_users) ---
    async def add_user(
        self, name: str, role: Role, scopes: list[str], token: str, expires_at: datetime | None
    ) -> tuple[User, TokenInfo]:
        """A new user with ``token`` as its first token; its scopes must exist (``Conflict`` for a
        name taken)."""

    async def list_users(self) -> list[User]:
        """Every user, by name."""

    async def get_user(self, name: str) -> User:
        """The user ``name`` (``NotFound`` otherwise)."""

    async def remove_user(self, name: str) -> None:
        """Remove the user and every token of it at once (``NotFound``; the server's own
        administrator is kept: ``Conflict``)."""

    async def create_token(self, user: str, token: str, expires_at: datetime | None) -> TokenInfo:
        """A new token for ``user`` (``NotFound`` for no such user), with the user's role."""

    async def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """The users' tokens (``user``'s only, when given), oldest first; agents' are not."""

    async def revoke_token(self, token_id: str, *, user: str | None = None) -> TokenInfo:
        """Revoke the token ``token_id`` (of ``user``, when given): it stops working at once, on
        every server sharing the database (``NotFound`` otherwise)."""

    async def append_audit(self, entry: AuditEntry) -> AuditRecord:
        """Add ``entry`` at the end of the audit chain: seq one past the last record's, linked
        to its hash, timed by the store's clock. Appends are serialized across every server of
        the database (the last record is read in the transaction that writes the next): the
        chain never forks."""
        ...

    async def list_audit(
        self, *, actor: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The last ``limit`` records (of ``actor``, at or after ``since``), oldest first."""
        ...

    async def verify_audit(self) -> AuditCheck:
        """Walk the whole chain from its first record: a record changed (its hash), removed
        (a gap in seq, a broken link) or inserted is named by the first seq where it shows."""
        ...


class AgentStore(Protocol):
    """Agents: registered with a one-time secret, heartbeating, paused, lost or retired,
    and what each has moved."""

    async def issue_agent_secret(self, agent_name: str, ttl: timedelta) -> str:
        """A one-time secret valid for ``ttl``, for the agent called ``agent_name`` only."""

    async def register_agent(
        self,
        *,
        secret: str | None,
        principal: Principal | None,
        name: str,
        host: str,
        capabilities: dict[str, Any],
    ) -> tuple[Agent, str]:
        """Register (or re-register) the agent ``name`` and return it with a new agent token.

        With ``secret``: refused (``SecretRejected``) if unknown, expired, already used or
        issued to another name. With ``principal``: its role must be DAEMON or ADMINISTRATOR.
        A re-registration releases every lease the previous incarnation held (attempt counted).
        """

    async def list_agents(self) -> list[Agent]:
        """Every agent ever registered, retired ones included, by name."""

    async def get_agent(self, agent_id: str) -> Agent:
        """Raise ``AgentNotFound`` for an unknown id."""

    async def agent_named(self, name: str) -> Agent | None:
        """The agent registered under ``name``, or ``None``."""

    async def bandwidth_shares(self, agent_id: str, held: list[int]) -> Shares:
        """The bandwidth each held task may use now, where a channel's is shared."""

    async def record_heartbeat(
        self,
        agent_id: str,
        status: dict[str, Any],
        ttl: timedelta,
        held: list[int],
        progress: dict[int, int] | None = None,
    ) -> list[int]:
        """Mark the agent ALIVE, store its state dump, extend by ``ttl`` the leases of the tasks
        in ``held`` that it still holds, and return those of ``held`` it must stop: canceled, or
        no longer leased to it. A lease the agent does not list is left to expire. ``progress``
        (task → bytes moved) is recorded on the tasks still active."""

    async def mark_agent_lost(
        self, agent_id: str, why: str, *, silent_since: datetime | None = None
    ) -> int:
        """LOST, and its leases are released at once; return how many tasks were requeued.
        With ``silent_since``, only if its last heartbeat is still older than that."""

    async def retire_agent(self, agent_id: str) -> int:
        """RETIRED, no more leases until it registers again; leases it still holds go back to
        the queue uncounted; return how many."""

    async def silent_agents(self, since: datetime) -> list[Agent]:
        """REGISTERED or ALIVE agents whose last heartbeat is older than ``since``."""

    async def agent_statistics(self, agent_ids: Sequence[str]) -> dict[str, AgentStatistics]:
        """Statistics of each agent, in a fixed number of queries."""

    async def pause_agent(self, name: str) -> Agent:
        """Drain the agent (``name``: its name or id): it gets no new lease and finishes what
        it holds. ``NotFound``, or ``Conflict`` when it is paused already. Kept when it
        registers again."""

    async def resume_agent(self, name: str) -> Agent:
        """The agent leases again. ``NotFound``, or ``Conflict`` when it is not paused."""


class TransferStore(Protocol):
    """Transfers and their runs, as users see and steer them; when they are due and
    late; what each object became; the notifications owed."""

    # --- finalize hooks ---------------------------------------------------------------------
    async def due_notifications(self, now: datetime, limit: int) -> list[Notification]:
        """PENDING notifications whose next attempt is due, oldest first."""

    async def record_notification(
        self, notification_id: int, *, delivered: bool, error: str | None, retry_at: datetime | None
    ) -> None:
        """Delivered; or failed, to be tried again at ``retry_at`` (``None``: given up)."""

    # --- transfers --------------------------------------------------------------------------
    async def create_transfer(self, new: NewTransfer) -> tuple[Transfer, bool]:
        """Insert the transfer in STANDBY; return it and whether it was created.

        The same ``submission_id`` with the same spec returns the existing one; with another
        spec, ``Conflict``."""

    async def get_transfer(self, transfer_id: str) -> Transfer:
        """The transfer ``transfer_id`` (``TransferNotFound`` otherwise)."""

    async def transfer_ids_starting(
        self, prefix: str, *, scopes: Sequence[str] | None, limit: int
    ) -> list[str]:
        """Ids of the transfers whose id starts with ``prefix``, of ``scopes`` only when given
        (a short id never names a transfer the caller may not see), in id order, at most
        ``limit``."""

    async def get_transfer_with_run(self, transfer_id: str) -> TransferWithRun:
        """The transfer, its latest run and the bytes that run's active objects have moved,
        read together (one query): what monitoring one transfer shows."""

    async def list_transfers(
        self,
        *,
        status: TransferStatus | None = None,
        kind: str | None = None,
        limit: int,
        cursor: str | None,
        where: TransferFilter | None = None,
    ) -> TransferPage:
        """Newest first, in pages, each with its latest run; ``cursor`` is opaque. ``where``
        adds filters (submitter, scope, schedule kind, label, text). A transfer created while pages
        are read appears before the cursor, so every transfer that existed is returned exactly
        once."""

    async def get_run(self, transfer_id: str, number: int) -> Run:
        """Run ``number`` of the transfer (``NotFound`` otherwise)."""

    async def list_runs(self, transfer_id: str, *, after: int, limit: int) -> list[Run]:
        """The transfer's runs numbered above ``after``, oldest first."""

    async def latest_runs(self, transfers: Sequence[Transfer]) -> dict[str, Run]:
        """The latest run of each transfer that has one, in one query."""

    async def cancel_transfer(self, transfer_id: str) -> CancelOutcome:
        """STANDBY: CANCELED at once. ONGOING: queued tasks CANCELED, active ones flagged to stop
        (their agent learns it at the next heartbeat), the transfer CANCELED. Finished one-shot:
        ``AlreadyFinished``."""

    async def pause_transfer(self, transfer_id: str, *, stop: bool = False) -> PauseOutcome:
        """Pause a STANDBY or ONGOING transfer: its latest run's QUEUED and WAITING tasks
        become PAUSED (no lease takes them), and so does any of its tasks that comes back to
        the queue while it is paused (given back, retried, lost with its lease, newly listed);
        its ACTIVE tasks finish, or with ``stop`` their agents are told to stop them at the
        next heartbeat and each is given back, its attempt not spent. A periodic transfer's
        occurrences due while it is paused are SKIPPED runs; a one-shot one due while paused
        waits for its resume. Its status does not change. ``AlreadyFinished`` for a finished
        transfer; ``Conflict`` when it is paused already (unless ``stop`` adds the stop), being
        canceled, or a push or pull (its client moves its objects)."""

    async def resume_transfer(self, transfer_id: str) -> PauseOutcome:
        """Undo a pause: its PAUSED tasks are QUEUED again (WAITING, when they were waiting
        for a retry); a periodic transfer goes on with its next occurrence. ``Conflict`` when
        it is not paused."""

    # --- the scheduler's work ---------------------------------------------------------------
    async def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` of a STANDBY transfer that is not paused or is periodic
        (whose occurrences are skipped while it is)."""

    async def claim_due_transfers(self, now: datetime, limit: int) -> list[Run]:
        """Move STANDBY transfers due at ``now`` to ONGOING and open a run for each. A paused
        periodic one instead gets a SKIPPED run for the occurrence (``occurrences`` it stands
        for) and moves on to its next one; a paused one-shot one is left waiting."""

    async def end_runs_past_deadline(self, now: datetime) -> list[Run]:
        """End each ONGOING run whose deadline is at or before ``now``: its QUEUED, WAITING and
        PAUSED tasks CANCELED (error "deadline"), its ACTIVE ones flagged to stop, its listing
        stopped, the run marked so that it ends CANCELED with the deadline as its error. Each
        run once; the runs ended."""

    async def note_late_runs(self, now: datetime) -> list[RunLate]:
        """The runs late at ``now``: of each STANDBY or ONGOING transfer with a ``late_after``
        option whose next run was due that long ago and has not started. Each occurrence is
        told once (its notification queued here); the events to publish."""

    async def lost_attempts(self, transfer_id: str, run: int) -> list[LostAttempt]:
        """The attempts of a run's tasks that were lost with their lease, or failed (a
        resumable copy that failed keeps its ``.part`` for the next attempt)."""

    async def outcomes(
        self,
        transfer_id: str,
        run: int,
        *,
        after: int,
        limit: int,
        state: TaskState | None = None,
    ) -> list[RunObject]:
        """Up to ``limit`` objects of the run numbered above ``after`` (in ``state`` only, when
        given), in number order, each with its attempts. In a numbered run an object of a
        chunk shows its latest outcome when that is final (DONE, SKIPPED, FAILED, CANCELED),
        otherwise its latest carrier's state: QUEUED with the carrier's attempts (0: not
        started yet), WAITING with the last error, ACTIVE with the carrier's agent, CANCELED.
        In a run made before numbering the numbers are task ids, as they were."""


class DispatchStore(Protocol):
    """Tasks: made from a run's listing, leased to agents, reported, retried, taken back
    when a lease expires; runs closed when nothing is left."""

    async def runs_to_expand(self, limit: int) -> list[tuple[Transfer, Run]]:
        """ONGOING runs whose tasks have not all been created yet, each with how far its
        listing has come (``Run.listed``, the last ``listed`` committed by ``add_tasks``)."""

    async def add_tasks(
        self,
        transfer: Transfer,
        run: int,
        planned: Sequence[PlannedTask | PlannedChunk],
        *,
        expanded: bool = False,
        listed: ListedThrough | None = None,
        filtered: int = 0,
    ) -> bool:
        """Insert tasks in bulk (one statement) and count them into the run. An object already
        in the run is not added twice. Return False, adding nothing, once the transfer is
        being canceled: the caller stops listing. ``expanded``: these are the run's last
        tasks (a file transfer's whole list), and the run is marked expanded with them, in
        the same transaction (``mark_expanded``). ``listed``: how far a tree's listing has
        come with these tasks, recorded in the same transaction; ``runs_to_expand`` returns it
        as the run's ``listed``, so that an expansion begun again resumes after it.
        ``filtered``: how many entries of that page the transfer's filters left out, added to
        the run's ``filtered`` count with ``listed`` (only with it: a page listed again after
        a restart is not counted twice).

        In a numbered run (made since objects are numbered) every object of ``planned`` takes
        the run's next number in order, a chunk's objects consecutive ones: a single task's
        row holds its number, a chunk becomes one carrier row and one stored list
        (docs/small-files.md), and the run's counters count objects. Raises ValueError for
        chunks in a run that is not numbered. The run's row is locked while its numbers are
        taken: a page inserted by another server waits."""

    async def active_bytes(self, transfer_id: str, run: int) -> int:
        """Bytes the run's active objects have moved so far (from heartbeats)."""

    async def mark_expanded(self, transfer_id: str, run: int, error: str | None = None) -> None:
        """Every task of the run exists; ``error`` records why expansion stopped, if it did."""

    async def runs_to_prune(self, limit: int) -> list[tuple[Transfer, Run]]:
        """Up to ``limit`` ONGOING runs whose objects have all ended and whose
        ``--delete-extra`` step is PENDING, with their transfers. ``finish_runs`` closes none of
        them until ``record_deletion`` has moved the step on."""

    async def record_deletion(
        self,
        transfer: Transfer,
        run: int,
        state: DeletionState,
        note: str,
        deleted: Sequence[PlannedTask] = (),
    ) -> None:
        """End the run's deletion step in ``state`` with ``note`` (what it did, or why it
        deleted nothing), in one transaction: each of ``deleted`` (state DELETED, its size the
        deleted file's) becomes an object of the run, numbered after the others, counted in
        ``deleted`` and ``deleted_bytes`` and not in ``total``. Does nothing if the step is no
        longer PENDING."""

    async def lease_tasks(self, agent_id: str, *, limit: int, ttl: timedelta) -> list[LeasedTask]:
        """Move up to ``limit`` QUEUED tasks to ACTIVE for ``agent_id`` and return them; none
        to a paused agent (a paused transfer's tasks are PAUSED, not QUEUED).

        Eligible: QUEUED, not flagged for cancel, and its channel (resolved from the sites of
        its storages) ACTIVE and below its ``max_active`` counting every agent. Order: strict
        priority inside a scope, weighted round-robin across scopes and channels, oldest first.
        The batch shares a fresh lease token that expires after ``ttl`` unless extended by a
        heartbeat. No task is ever leased twice at once, also with several servers.
        """

    async def record_results(
        self, agent_id: str, results: Iterable[TaskResult]
    ) -> list[TaskChange]:
        """Apply results whose lease ``agent_id`` still holds; ignore the rest (a late report
        never completes a task twice). A retryable failure with attempts left goes to WAITING
        with a backoff; a task stopped because its channel was stopped goes back to QUEUED.
        Every applied result is kept as an attempt. Return the changes applied."""

    async def record_chunk_results(
        self, agent_id: str, reports: Sequence[ChunkReport]
    ) -> ChunkResults:
        """Apply the reports of carriers whose lease ``agent_id`` still holds; ignore the rest.

        Each object reported ends its attempt with an outcome: DONE, SKIPPED, FAILED (for good:
        permanent, or out of attempts), WAITING (retryable with attempts left) or CANCELED (a
        cancel was asked). An object that already has an outcome at the carrier's attempt is
        ignored, so a report sent twice changes nothing; only outcomes recorded now are counted
        in the run (objects, never carriers) and the agent's statistics. The WAITING objects of
        one report of one carrier become one new WAITING carrier, due after a backoff. A report
        that ``ended`` the carrier ends it DONE; its members never reported become canceled
        (counted; the carrier ends CANCELED) when a cancel was asked or ``rest`` is CANCELED,
        and otherwise go to one new QUEUED carrier, uncounted, their attempt not spent.

        Concurrency: each carrier's row is locked (``FOR UPDATE``) and checked ACTIVE under the
        reported lease before its outcomes are read, so two servers applying one report, or a
        report and a lease expiry, are serialized: the second finds the objects recorded, or
        the row no longer under that lease. The outcomes' key refuses a second row regardless.
        """

    async def reap_expired_leases(self, now: datetime) -> int:
        """ACTIVE tasks whose lease expired go back to QUEUED (or FAILED without attempts left).
        A carrier's members not reported get a LOST outcome each (uncounted) and the same row
        is QUEUED again carrying only them; out of attempts they are FAILED (counted) and the
        row DONE; with a cancel asked, counted canceled and the row CANCELED. Its row is locked
        as ``record_chunk_results`` locks it."""

    async def requeue_waiting(self, now: datetime) -> int:
        """WAITING tasks whose backoff elapsed go back to QUEUED (PAUSED, when their transfer
        was paused meanwhile)."""

    async def finish_runs(self, now: datetime) -> list[Run]:
        """Close every expanded ONGOING run whose tasks are all final, and set its transfer's
        status from the run's outcome."""


class PassiveStore(Protocol):
    """Push and pull: transfers whose client moves the bytes through the API, under a
    capability."""

    # --- passive transfers (push, pull) -------------------------------------------------------
    async def create_passive_transfer(
        self, new: NewTransfer, planned: list[PlannedTask], direction: str, ttl: timedelta
    ) -> tuple[Transfer, str, datetime]:
        """Insert it ONGOING with run 1 expanded and a task per object, never leased to an
        agent; return it with a one-time capability (64 characters) and its expiry."""

    async def check_capability(self, capability: str, transfer_id: str) -> str:
        """The direction (push, pull) it allows on this transfer; ``Forbidden`` when unknown,
        for another transfer, expired or closed."""

    async def start_passive_task(
        self, transfer_id: str, client_path: str, ttl: timedelta
    ) -> tuple[Task, str]:
        """Lease to the client the waiting object at ``client_path``; return it and the lease."""

    async def skip_passive_objects(self, transfer_id: str, client_paths: Sequence[str]) -> int:
        """SKIPPED, each with its attempt and in one transaction, the waiting objects of a pull
        at ``client_paths`` (their copy is already on the client); others are left alone.
        Return how many were skipped."""

    async def held_passive_task(self, transfer_id: str, client_path: str) -> tuple[Task, str]:
        """The client's ACTIVE task for ``client_path`` in the transfer, with its lease
        (``NotFound`` when none is being moved)."""

    async def extend_passive_lease(self, task_id: int, lease: str, ttl: timedelta) -> None:
        """The object is still moving: its lease lives ``ttl`` more."""

    async def note_checksum(self, task_id: int, checksum: str) -> None:
        """Keep the checksum the server read before sending a pulled object."""

    async def close_passive_transfer(self, transfer_id: str, why: str) -> int:
        """Close its capability; objects not sent fail with ``why``; return how many."""

    async def expired_passive_transfers(self, now: datetime) -> list[str]:
        """The passive transfers whose capability expired unclosed by ``now``."""


class Store(
    LifecycleStore,
    RegistryStore,
    AccessStore,
    AgentStore,
    TransferStore,
    DispatchStore,
    PassiveStore,
    Protocol,
):
    """Every role at once: what ``SqlStore`` implements. A caller that needs one role takes
    that role's protocol."""
