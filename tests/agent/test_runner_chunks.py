"""A chunk of small objects is one hand-off: the agent against a scripted server of protocol 2
copies a carrier's objects in order, reports them as they end (in parts when the chunk runs
longer than a report interval), and stops at an object boundary when canceled or stopping."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import ferry.agent.copies as copies_module
from ferry.agent.runner import AgentRunner
from ferry.api.protocol import (
    ChunkReport,
    HeartbeatReply,
    LeasedChunk,
    LeasedTaskPublic,
    LeaseReply,
    ReportedState,
    ReportReply,
    Results,
    StorageAccess,
    TaskReport,
)
from ferry.domain.options import Checksum, Overwrite

DEADLINE_S = 30.0


class ChunkServer:
    """A server of protocol 2: leases the given tasks once, keeps every body reported to
    /results, and answers heartbeats with ``cancel`` once ``cancel_now`` is set."""

    protocol = 2
    heartbeat_s = 60.0

    def __init__(self, tasks: list[LeasedTaskPublic], storages: dict[str, str]) -> None:
        access = {name: StorageAccess(url=url, options={}) for name, url in storages.items()}
        self._reply: LeaseReply | None = LeaseReply(tasks=tasks, storages=access)
        self.expected = {task.id for task in tasks}
        self.bodies: list[Results] = []
        self.beats: list[list[tuple[int, int]]] = []
        self.cancel: list[int] = []
        self.cancel_now = threading.Event()
        self.all_ended = asyncio.Event()
        self.partial = threading.Event()  # a chunk's report came before its end

    async def lease(self, max_tasks: int, wait_s: float) -> LeaseReply:
        reply, self._reply = self._reply, None
        if reply is None:
            await asyncio.sleep(wait_s)
            return LeaseReply(tasks=[], storages={})
        return reply

    async def results(self, body: Results) -> ReportReply:
        self.bodies.append(body)
        if any(report.results and not report.ended for report in body.chunks):
            self.partial.set()
        if self.expected <= {t.task for t in self.tasks()} | {c.task for c in self.ends()}:
            self.all_ended.set()
        return ReportReply(accepted=len(body.tasks) + len(body.chunks), ignored=0)

    async def report(self, results: list[TaskReport]) -> ReportReply:
        raise AssertionError("an agent of a protocol 2 server reports to /results")

    async def heartbeat(
        self, active: list[tuple[int, int]], state: dict[str, Any]
    ) -> HeartbeatReply:
        self.beats.append(active)
        return HeartbeatReply(cancel=self.cancel if self.cancel_now.is_set() else [])

    async def leave(self) -> int:
        return 0

    def tasks(self) -> list[TaskReport]:
        return [report for body in self.bodies for report in body.tasks]

    def reports_of(self, carrier: int) -> list[ChunkReport]:
        return [r for body in self.bodies for r in body.chunks if r.task == carrier]

    def ends(self) -> list[ChunkReport]:
        return [r for body in self.bodies for r in body.chunks if r.ended]

    def rows_of(self, carrier: int) -> dict[int, ReportedState]:
        """Each reported object's state by offset; an object reported twice fails the test."""
        rows = [row for report in self.reports_of(carrier) for row in report.results]
        offsets = [row[0] for row in rows]
        assert len(offsets) == len(set(offsets)), f"reported twice: {offsets}"
        return {row[0]: row[1] for row in rows}


def carrier(
    n: int,
    objects: list[tuple[str, int]],
    *,
    source: str = "disk:src",
    first: int = 1,
    only: list[int] | None = None,
) -> LeasedTaskPublic:
    return LeasedTaskPublic(
        id=n,
        lease=f"lease-{n}",
        transfer="t1",
        run=3,
        source=source,
        destination="disk:dst",
        size=sum(size for _, size in objects),
        attempt=1,
        checksum=Checksum.ADLER32,
        overwrite=Overwrite.NEVER,
        chunk=LeasedChunk(first=first, objects=objects, only=only),
    )


def files(root: Path, count: int, *, size: int = 100) -> list[tuple[str, int]]:
    """``count`` files under ``root/src``, in a few folders, listed as a chunk lists them."""
    listed = []
    for n in range(count):
        relative = f"d{n % 4}/f{n}"
        (root / "src" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / relative).write_bytes(bytes([n % 256]) * size)
        listed.append((relative, size))
    return listed


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each copy's request, in the order the copies began."""
    requests: list[Any] = []
    real = copies_module.copy_object

    def recording(request: Any, **kwargs: Any) -> Any:
        requests.append(request)
        return real(request, **kwargs)

    monkeypatch.setattr(copies_module, "copy_object", recording)
    return requests


def hold_at(
    monkeypatch: pytest.MonkeyPatch, path: str, until: Callable[[Callable[[], bool]], None]
) -> threading.Event:
    """Make the copy of ``path`` wait, before it begins, for ``until(should_stop)``; return an
    event set when that copy is reached."""
    reached = threading.Event()
    real = copies_module.copy_object

    def waiting(request: Any, **kwargs: Any) -> Any:
        if request.source_path.endswith(path):
            reached.set()
            until(kwargs["should_stop"])
        return real(request, **kwargs)

    monkeypatch.setattr(copies_module, "copy_object", waiting)
    return reached


async def run_until_ended(server: ChunkServer, max_active: int = 4) -> None:
    agent = AgentRunner(server, max_active=max_active, grace=5.0)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(server.all_ended.wait(), DEADLINE_S)
    finally:
        stop.set()
        await asyncio.wait_for(running, DEADLINE_S)


async def test_a_chunk_is_copied_in_one_hand_off_and_reported_one_row_per_object(
    tmp_path: Path, copies: list[Any]
) -> None:
    listed = files(tmp_path, 120)
    (tmp_path / "src" / "single").write_bytes(b"s")
    tasks = [
        carrier(7, listed, first=1001),
        carrier(8, listed, first=1001, only=[5, 6, 50]),  # a retry of three of them
        LeasedTaskPublic(
            id=9,
            lease="lease-9",
            transfer="t1",
            run=3,
            source="disk:src/single",
            destination="disk:dst/single",
            size=1,
            attempt=1,
            checksum=Checksum.ADLER32,
            overwrite=Overwrite.ALWAYS,
        ),
    ]
    server = ChunkServer(tasks, {"disk": f"file://{tmp_path}"})
    await run_until_ended(server)

    rows = server.rows_of(7)
    assert rows == dict.fromkeys(range(120), ReportedState.DONE)
    for relative, _size in listed:
        assert (tmp_path / "dst" / relative).read_bytes() == (
            tmp_path / "src" / relative
        ).read_bytes()
    (end,) = [r for r in server.reports_of(7) if r.ended]
    assert end is server.reports_of(7)[-1]
    assert end.rest is None
    assert all(
        row[3] and row[3].startswith("adler32:") for r in server.reports_of(7) for row in r.results
    )
    # the retry carrier: only its three, found there already (overwrite never)
    assert server.rows_of(8) == dict.fromkeys([5, 6, 50], ReportedState.SKIPPED)
    assert [(r.task, r.state) for r in server.tasks()] == [(9, ReportedState.DONE)]
    tags = [request.tag for request in copies if request.source_path.startswith("src/d")]
    assert tags[:120] == [f"r3o{1001 + offset}" for offset in range(120)]


async def test_a_chunk_longer_than_a_report_interval_is_reported_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy of object 30 waits until a report of the objects before it has come: without
    partial reports it would wait out its deadline, and the test fails."""
    listed = files(tmp_path, 60)
    hold_at(monkeypatch, "f30", lambda _stop: server.partial.wait(DEADLINE_S))
    server = ChunkServer([carrier(7, listed)], {"disk": f"file://{tmp_path}"})
    await run_until_ended(server)

    assert server.partial.is_set()
    reports = server.reports_of(7)
    assert len(reports) >= 2
    assert [r.ended for r in reports] == [False] * (len(reports) - 1) + [True]
    assert server.rows_of(7) == dict.fromkeys(range(60), ReportedState.DONE)
    assert reports[-1].rest is None


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.fixture
def bucket() -> Iterator[str]:
    name = f"/bucket-{uuid.uuid4().hex}"
    yield name
    fsspec.filesystem("memory").rm(name, recursive=True)


async def test_a_cancel_stops_a_chunk_at_an_object_boundary(
    tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Object 3 is in flight when the heartbeat's cancel comes: it is stopped (streamed from
    a remote source, its copy looks at the flag between blocks), nothing of it is left, and
    4 to 9 never start."""
    memory = fsspec.filesystem("memory")
    listed = [(f"o{n}", 100) for n in range(10)]
    for relative, size in listed:
        memory.pipe(f"{bucket}/{relative}", b"m" * size)
    in_flight = hold_at(monkeypatch, "o3", lambda should_stop: wait_for(should_stop))
    storages = {"disk": f"file://{tmp_path}", "mem": f"memory://{bucket}"}
    server = ChunkServer([carrier(7, listed, source="mem:")], storages)
    server.heartbeat_s = 0.02
    server.cancel = [7]
    agent = AgentRunner(server, max_active=2, grace=5.0)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        assert await asyncio.to_thread(in_flight.wait, DEADLINE_S)
        server.cancel_now.set()
        await asyncio.wait_for(server.all_ended.wait(), DEADLINE_S)
    finally:
        stop.set()
        await asyncio.wait_for(running, DEADLINE_S)

    assert server.rows_of(7) == {
        0: ReportedState.DONE,
        1: ReportedState.DONE,
        2: ReportedState.DONE,
        3: ReportedState.CANCELED,
    }
    assert server.reports_of(7)[-1].ended
    assert server.reports_of(7)[-1].rest is ReportedState.CANCELED
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["o0", "o1", "o2"]
    assert any((7, 300) in beat for beat in server.beats), "the carrier and its bytes so far"


async def test_a_stopping_agent_gives_back_a_chunks_unstarted_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot: chunk 7 runs (its object 2 held) while chunk 8 waits. The agent stops: 8 is
    given back whole at once, and 7 once its object in flight has ended."""
    listed = files(tmp_path, 10)
    may_finish = threading.Event()
    copying = hold_at(monkeypatch, "f2", lambda _stop: may_finish.wait(DEADLINE_S))
    tasks = [carrier(7, listed), carrier(8, listed, first=11)]
    server = ChunkServer(tasks, {"disk": f"file://{tmp_path}"})
    agent = AgentRunner(server, max_active=1, grace=DEADLINE_S)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        assert await asyncio.to_thread(copying.wait, DEADLINE_S)
        stop.set()
        while not server.reports_of(8):  # given back before the copy in flight is awaited
            await asyncio.sleep(0.01)
    finally:
        may_finish.set()
        await asyncio.wait_for(running, DEADLINE_S)

    (given_back,) = server.reports_of(8)
    assert (given_back.results, given_back.ended, given_back.rest) == ([], True, "RELEASED")
    assert server.rows_of(7) == dict.fromkeys(range(3), ReportedState.DONE)
    assert server.reports_of(7)[-1].ended
    assert server.reports_of(7)[-1].rest is ReportedState.RELEASED
    assert sorted(p.name for p in (tmp_path / "dst").rglob("*") if p.is_file()) == [
        "f0",
        "f1",
        "f2",
    ]
