"""The agent protocol (DESIGN §5), defined once: the records an agent and the server send each
other, and their JSON encoding.

    agent sends                 to                              server answers
    AgentRegister               POST /agents/register           AgentRegistered
    LeaseRequest                POST /agents/{id}/lease         LeaseReply
    [TaskReport, …]             POST /agents/{id}/report        ReportReply
    Results                     POST /agents/{id}/results       ReportReply
    Heartbeat                   POST /agents/{id}/heartbeat     HeartbeatReply
    CommandAnswer               POST /agents/{id}/answer        AnswerReply
    (nothing)                   POST /agents/{id}/leave         AgentLeft

Each record is a plain dataclass, without ``__slots__`` (orjson writes a slotted one several
times slower), and ``encode`` writes it with orjson, which knows dataclasses and enums (the
figures are in bench/findings.md, "Agent protocol encoding"). ``decode`` reads a body
into its records and validates it in the same pass (pydantic's JSON parser, with the bounds
written beside each field), which is also where the routes' OpenAPI schemas come from.
What an agent sends is strict: a field the server does not know is refused, so that a
misspelt one is not silently dropped. What the server answers is read leniently: an agent
ignores the fields a newer server adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import ConfigDict, Field, TypeAdapter

from ferry.api.wire import ErrorText, Flag, Real, Whole
from ferry.domain.options import Checksum, Overwrite
from ferry.domain.sync import SyncLevel

Record = TypeVar("Record")

_SENT_BY_AGENTS = ConfigDict(extra="forbid")
AGENT_NAME = r"^[A-Za-z0-9_.@-]+$"
MAX_HELD_IN_HEARTBEAT = 100_000


def encode(record: object) -> bytes:
    """A record, or a list of them, as the JSON body that carries it."""
    return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)


def decode(kind: type[Record], body: bytes) -> Record:
    """``body`` read as a ``kind`` (a record, or ``list[TaskReport]``); raises pydantic's
    ``ValidationError``, each error located in the body, for one that is not."""
    adapter: TypeAdapter[Record] = _adapter(kind)
    return adapter.validate_json(body)


def json_schema(kind: Any) -> dict[str, Any]:
    """The JSON schema of ``kind``, for a route whose body is read by ``decode``."""
    return _adapter(kind).json_schema(ref_template="#/components/schemas/{model}")


def _adapter(kind: Any) -> TypeAdapter[Any]:
    # Made on first use, not at import: a command that never speaks the protocol pays nothing.
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


class ReportedState(StrEnum):
    """How an attempt that an agent held ended: the task's end states, and RELEASED for a task
    it gives back (never started, or cut short by the agent's own shutdown)."""

    DONE = "DONE"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    RELEASED = "RELEASED"


# --- register ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class AgentRegister:
    __pydantic_config__ = _SENT_BY_AGENTS

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=AGENT_NAME)]
    host: Annotated[str, Field(max_length=255)] = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    secret: Annotated[
        str | None,
        Field(min_length=16, max_length=256, description="one-time; none: the bearer token"),
    ] = None


@dataclass(kw_only=True)
class AgentRegistered:
    id: str
    name: str
    token: str
    heartbeat_s: float
    lease_ttl_s: float
    protocol: Annotated[
        int,
        Field(description="the protocol the server speaks: 2 takes reports at /results"),
    ] = 1


# --- lease ------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class LeaseRequest:
    __pydantic_config__ = _SENT_BY_AGENTS

    max_tasks: Annotated[Whole, Field(ge=1, le=2000)] = 100
    wait_s: Annotated[Real, Field(ge=0, le=60)] = 20.0


@dataclass(kw_only=True)
class StorageAccess:
    url: str
    options: dict[str, Any]
    protected: Annotated[
        list[str],
        Field(
            description="paths inside the storage (relative to its root) no object may be in:"
            " the server's own data directory, when a local storage holds it"
        ),
    ] = field(default_factory=list)


@dataclass(kw_only=True)
class LeasedChunk:
    """The small objects a carrier task holds (docs/small-files.md): its chunk list, written
    once when the tree was listed and sent as stored, and which of them this lease carries."""

    first: Annotated[int, Field(description="the run-wide number of the list's first object")]
    objects: Annotated[
        list[tuple[str, int]],
        Field(description="[path relative to both roots, size] of each object of the list"),
    ]
    only: Annotated[
        list[int] | None,
        Field(description="offsets into objects of those this lease carries; null: all"),
    ] = None


@dataclass(kw_only=True)
class LeasedTaskPublic:
    id: int
    lease: str
    transfer: str
    run: int
    source: str
    destination: str
    size: int | None
    attempt: int
    checksum: Checksum
    overwrite: Overwrite
    sync: Annotated[
        SyncLevel | None,
        Field(description="instead of overwrite: which existing destinations are replaced"),
    ] = None
    unzip: bool = False
    unzip_max_bytes: int | None = None
    skip_source_errors: Annotated[
        bool, Field(description="a source not found or denied: report SKIPPED, with the reason")
    ] = False
    verify_source: Annotated[
        bool, Field(description="read the source a second time; differing reads: retried")
    ] = False
    bandwidth: int | None = None
    throttled: Annotated[
        bool,
        Field(
            description="its channel shares a bandwidth (its timetable may leave it unlimited"
            " now): copy it through a throttle whose rate heartbeats change"
        ),
    ] = False
    scope: str = "default"
    priority: int = 3
    folder: Annotated[
        bool, Field(description="an empty folder of a tree: made, nothing copied")
    ] = False
    chunk: Annotated[
        LeasedChunk | None,
        Field(
            description="a carrier of small objects: source and destination are their roots,"
            " size their total"
        ),
    ] = None
    expected_checksum: Annotated[
        str | None,
        Field(description="ALGORITHM:HEX the copy must have, from whichever place it is read"),
    ] = None
    replicas: Annotated[
        list[str] | None,
        Field(
            description="other places the source may be read from: on a failure the next is"
            " tried, in order and wrapping, before the attempt counts as failed"
        ),
    ] = None


@dataclass(kw_only=True)
class LeaseReply:
    tasks: list[LeasedTaskPublic]
    storages: dict[str, StorageAccess]
    scopes: Annotated[
        dict[str, int], Field(description="the weight of each leased task's scope")
    ] = field(default_factory=dict)


# --- report -----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class TaskReport:
    __pydantic_config__ = _SENT_BY_AGENTS

    task: Whole
    lease: str
    state: ReportedState
    bytes: Annotated[Whole, Field(ge=0)] = 0
    checksum: str | None = None
    error_class: str | None = None
    error: ErrorText | None = None
    retryable: Flag = False
    started: Annotated[
        Flag,
        Field(
            description="false: the copy never began (canceled or given back while it waited),"
            " so no attempt is recorded"
        ),
    ] = True
    resumed: Annotated[
        Whole,
        Field(
            ge=0,
            description="of its bytes, those an earlier attempt had written and this one kept"
            " (a resumed copy): not moved by this attempt",
        ),
    ] = 0
    replica: Annotated[
        str | None,
        Field(max_length=8192, description="a task with replicas: the place it was read from"),
    ] = None


# How one object of a chunk ended: [offset into its list, state, bytes, checksum, error class,
# error, retryable]. A row, not a record: a report of 500 objects is 500 of them.
ChunkResult = tuple[
    Annotated[Whole, Field(ge=0)],
    ReportedState,
    Annotated[Whole, Field(ge=0)],
    str | None,
    str | None,
    ErrorText | None,
    Flag,
]


@dataclass(kw_only=True)
class ChunkReport:
    """The objects of a carrier that ended since its last report. The last report of a
    carrier says ``ended``; the objects it never started then end as ``rest`` (CANCELED, or
    RELEASED: given back to the queue)."""

    __pydantic_config__ = _SENT_BY_AGENTS

    task: Whole
    lease: str
    results: list[ChunkResult] = field(default_factory=list)
    ended: Flag = False
    rest: ReportedState | None = None


@dataclass(kw_only=True)
class Results:
    """What an agent of protocol 2 reports: single tasks, and chunks (partially or ended)."""

    __pydantic_config__ = _SENT_BY_AGENTS

    tasks: list[TaskReport] = field(default_factory=list)
    chunks: list[ChunkReport] = field(default_factory=list)


# The protocol an agent speaks, in ``AgentRegister.capabilities["protocol"]``: 2 takes chunks
# and reports to /results; an agent that does not say it (1) is leased single tasks only.
PROTOCOL = 2


@dataclass(kw_only=True)
class ReportReply:
    accepted: int
    ignored: int


# --- heartbeat and leave ----------------------------------------------------------------------


@dataclass(kw_only=True)
class Heartbeat:
    __pydantic_config__ = _SENT_BY_AGENTS

    active: Annotated[
        list[tuple[Whole, Whole]],
        Field(
            max_length=MAX_HELD_IN_HEARTBEAT,
            description="[task, bytes done] for every task whose lease the agent holds",
        ),
    ] = field(default_factory=list)
    state: Annotated[dict[str, Any], Field(description="the agent's state dump")] = field(
        default_factory=dict
    )


class CommandKind(StrEnum):
    """An administrator's command to an agent (DaemonCore's DC_RECONFIG, DC_OFF_GRACEFUL or
    DC_OFF_FAST, DC_CONFIG_VAL), delivered in a heartbeat reply."""

    RECONFIG = "reconfig"
    OFF = "off"
    CONFIG = "config"


@dataclass(kw_only=True)
class AgentCommand:
    id: str
    kind: CommandKind
    fast: Annotated[bool, Field(description="off: give back every lease at once")] = False
    key: Annotated[str | None, Field(description="config: the setting asked for")] = None


@dataclass(kw_only=True)
class CommandAnswer:
    """What an agent answers to an ``AgentCommand``: done or refused, a one-line ``detail``;
    for reconfig the settings that changed, for config the value (``None`` when hidden) and
    where it came from."""

    __pydantic_config__ = _SENT_BY_AGENTS

    id: Annotated[str, Field(max_length=64)]
    ok: bool
    status: Annotated[
        int, Field(ge=100, le=599, description="what the administrator is answered with")
    ] = 200
    detail: Annotated[str, Field(max_length=2000)] = ""
    changed: list[str] = field(default_factory=list)
    value: Any = None
    source: str | None = None
    hidden: bool = False


@dataclass(kw_only=True)
class AnswerReply:
    accepted: Annotated[
        bool, Field(description="false: nobody waits for it any more (asked too long ago)")
    ]


@dataclass(kw_only=True)
class HeartbeatReply:
    cancel: list[int]
    bandwidth: Annotated[
        dict[int, int],
        Field(
            description="bytes per second each task may use now, where its channel's bandwidth"
            " is shared (shared out again as the channel's tasks start and end)"
        ),
    ] = field(default_factory=dict)
    commands: Annotated[
        list[AgentCommand], Field(description="an administrator's commands, to answer")
    ] = field(default_factory=list)
    unlimited: Annotated[
        list[int],
        Field(description="throttled tasks whose channel's timetable sets no limit now"),
    ] = field(default_factory=list)
    next_change_s: Annotated[
        float | None,
        Field(
            description="seconds until a timetable changes the rate of a held task: the next"
            " heartbeat comes no later"
        ),
    ] = None


@dataclass(kw_only=True)
class AgentLeft:
    released: Annotated[
        int, Field(description="leases it held that never reached it, given back now")
    ]
