"""The agent protocol's records: each one read back as it was written, the bodies agents and
servers of the previous release send still read, and what is not a record refused."""

from __future__ import annotations

import dataclasses
import inspect

import orjson
import pytest
from pydantic import ValidationError

import ferry.api.protocol as protocol
from ferry.api.protocol import (
    AgentCommand,
    AgentLeft,
    AgentRegister,
    AgentRegistered,
    AnswerReply,
    ChunkReport,
    CommandAnswer,
    CommandKind,
    Heartbeat,
    HeartbeatReply,
    LeasedChunk,
    LeasedTaskPublic,
    LeaseReply,
    LeaseRequest,
    ReportedState,
    ReportReply,
    Results,
    StorageAccess,
    TaskReport,
    decode,
    encode,
)
from ferry.domain.options import Checksum, Overwrite

LEASED = LeasedTaskPublic(
    id=7,
    lease="0f" * 16,
    transfer="0b7f3c9e-5d2a-4c1b-9e8f-123456789abc",
    run=2,
    source="src:a/b.bin",
    destination="https://host.example/c",
    size=None,
    attempt=3,
    checksum=Checksum.SHA256,
    overwrite=Overwrite.IF_DIFFERENT,
    unzip=True,
    unzip_max_bytes=1 << 30,
    bandwidth=1000,
    scope="ops",
    priority=5,
    folder=True,
)
# One of each record, its fields away from their defaults where they have one.
EXAMPLES: list[object] = [
    AgentRegister(name="a1", host="h", capabilities={"protocols": ["file"]}, secret="s" * 16),
    AgentRegistered(id="ag", name="a1", token="t", heartbeat_s=5.0, lease_ttl_s=30.0, protocol=2),
    LeaseRequest(max_tasks=500, wait_s=2.5),
    StorageAccess(url="file:///d", options={"key": "v"}, protected=[".ferry"]),
    LEASED,
    LeaseReply(
        tasks=[LEASED],
        storages={"src": StorageAccess(url="file:///d", options={})},
        scopes={"ops": 4},
    ),
    TaskReport(
        task=7,
        lease="l",
        state=ReportedState.RELEASED,
        bytes=10,
        checksum="adler32:00000001",
        error_class="io",
        error="cut short",
        retryable=True,
        started=False,
    ),
    ReportReply(accepted=3, ignored=1),
    LeasedChunk(first=1001, objects=[("a/b.txt", 4096), ("a/c.txt", 0)], only=[1]),
    ChunkReport(
        task=9,
        lease="l",
        results=[(0, ReportedState.DONE, 4096, "adler32:00000001", None, None, False)],
        ended=True,
        rest=ReportedState.CANCELED,
    ),
    Results(
        tasks=[TaskReport(task=7, lease="l", state=ReportedState.DONE)],
        chunks=[
            ChunkReport(
                task=9, lease="l", results=[(1, ReportedState.FAILED, 0, None, "io", "gone", True)]
            )
        ],
    ),
    Heartbeat(active=[(7, 100), (8, 0)], state={"pid": 12, "stats": {"DONE": 3}}),
    HeartbeatReply(
        cancel=[7],
        bandwidth={8: 4096},
        commands=[AgentCommand(id="c1", kind=CommandKind.CONFIG, key="log.level")],
    ),
    CommandAnswer(id="c1", ok=True, value="DEBUG", source="file"),
    CommandAnswer(id="c2", ok=False, status=404, detail="no setting", changed=["log"]),
    AnswerReply(accepted=False),
    AgentCommand(id="c3", kind=CommandKind.OFF, fast=True),
    AgentLeft(released=2),
]


def test_every_record_has_an_example() -> None:
    records = {
        cls
        for _, cls in inspect.getmembers(protocol, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == protocol.__name__
    }
    assert records == {type(example) for example in EXAMPLES}


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda record: type(record).__name__)
def test_a_record_reads_back_as_it_was_written(record: object) -> None:
    assert decode(type(record), encode(record)) == record


def test_a_report_of_many_results_reads_back_with_its_states_as_members() -> None:
    sent = [TaskReport(task=n, lease=f"l{n}", state=state) for n, state in enumerate(ReportedState)]
    read = decode(list[TaskReport], encode(sent))
    assert read == sent
    assert [report.state for report in read] == list(ReportedState)
    assert all(type(report.state) is ReportedState for report in read)


@pytest.mark.parametrize(
    ("kind", "body", "read"),
    [
        # As agents of the previous release wrote them: fields left at their default left out.
        (
            list[TaskReport],
            b'[{"task": 1, "lease": "l", "state": "RELEASED"}]',
            [TaskReport(task=1, lease="l", state=ReportedState.RELEASED)],
        ),
        (
            list[TaskReport],
            b'[{"task": 1, "lease": "l", "state": "CANCELED", "error": "e", "started": false}]',
            [TaskReport(task=1, lease="l", state=ReportedState.CANCELED, error="e", started=False)],
        ),
        (
            AgentRegister,
            b'{"name": "a1", "host": "h", "capabilities": {"max_active": 4}}',
            AgentRegister(name="a1", host="h", capabilities={"max_active": 4}),
        ),
        (Heartbeat, b'{"active": [[1, 0]]}', Heartbeat(active=[(1, 0)])),
        (LeaseRequest, b'{"max_tasks": 10, "wait_s": 0}', LeaseRequest(max_tasks=10, wait_s=0)),
    ],
)
def test_what_an_agent_of_the_previous_release_sends_is_read(
    kind: type, body: bytes, read: object
) -> None:
    assert decode(kind, body) == read


def test_a_leased_task_is_written_as_the_previous_server_wrote_it() -> None:
    # ``chunk`` is new; an agent of the previous release reads replies leniently and drops it
    # (and a server leases it no carrier: it does not say protocol 2). So is
    # ``skip_source_errors``: such an agent reports a missing source FAILED, as it did;
    # ``verify_source``: such an agent copies without the second read; ``replicas``: it
    # copies from the source alone (a file transfer without them has none); ``sync``: such an
    # agent applies ``overwrite`` alone; ``expected_checksum``: it verifies the copy by
    # reading it back only; and ``throttled``: it copies a task leased with no bandwidth
    # unthrottled, as before, whatever its channel's timetable says later.
    assert orjson.loads(encode(LEASED)) == {
        "sync": None,
        "throttled": False,
        "skip_source_errors": False,
        "verify_source": False,
        "chunk": None,
        "replicas": None,
        "expected_checksum": None,
        "id": 7,
        "lease": "0f" * 16,
        "transfer": "0b7f3c9e-5d2a-4c1b-9e8f-123456789abc",
        "run": 2,
        "source": "src:a/b.bin",
        "destination": "https://host.example/c",
        "size": None,
        "attempt": 3,
        "checksum": "sha256",
        "overwrite": "if-different",
        "unzip": True,
        "unzip_max_bytes": 1 << 30,
        "folder": True,
        "bandwidth": 1000,
        "scope": "ops",
        "priority": 5,
    }


def test_a_reply_with_fields_a_newer_server_adds_is_read() -> None:
    body = b'{"accepted": 1, "ignored": 0, "chunks": 3}'
    assert decode(ReportReply, body) == ReportReply(accepted=1, ignored=0)


@pytest.mark.parametrize(
    ("kind", "body", "where", "says"),
    [
        (
            list[TaskReport],
            b'[{"task": 1, "lease": "l", "state": "LOST"}]',
            (0, "state"),
            "RELEASED",
        ),
        (
            list[TaskReport],
            b'[{"task": 1, "lease": "l", "state": "DONE", "size": 1}]',
            (0, "size"),
            "",
        ),
        (list[TaskReport], b'[{"task": true, "lease": "l", "state": "DONE"}]', (0, "task"), ""),
        (AgentRegister, b'{"name": "a b"}', ("name",), "pattern"),
        (Heartbeat, b'{"active": [[1]]}', ("active", 0, 1), ""),
        (LeaseRequest, b'{"max_tasks": 0}', ("max_tasks",), "greater than"),
    ],
)
def test_what_is_not_a_record_is_refused_where_it_is_wrong(
    kind: type, body: bytes, where: tuple[object, ...], says: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        decode(kind, body)
    (error,) = refused.value.errors()
    assert error["loc"] == where
    assert says in error["msg"]


def test_a_heartbeat_reply_of_the_previous_server_has_no_commands() -> None:
    assert decode(HeartbeatReply, b'{"cancel": [1]}') == HeartbeatReply(cancel=[1])
