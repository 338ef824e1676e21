"""The agent's work loop against a scripted server session: what it copies, on which threads,
and what it reports."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

import ferry.agent.copies as copies_module
import ferry.agent.runner as runner_module
import ferry.engine.storages as storages_module
from ferry.agent.held import HeldTask
from ferry.agent.runner import AgentRunner
from ferry.api.protocol import (
    HeartbeatReply,
    LeasedTaskPublic,
    LeaseReply,
    ReportReply,
    StorageAccess,
    TaskReport,
)
from ferry.domain.options import Checksum, Overwrite
from ferry.errors import ApiError


class ScriptedSession:
    """Leases the given tasks once, then nothing; stops the agent when all are reported."""

    heartbeat_s = 60.0
    protocol = 1

    def __init__(self, tasks: list[LeasedTaskPublic], storages: dict[str, str]) -> None:
        access = {name: StorageAccess(url=url, options={}) for name, url in storages.items()}
        self._reply: LeaseReply | None = LeaseReply(tasks=tasks, storages=access)
        self.expected = len(tasks)
        self.reported: list[TaskReport] = []
        self.all_reported = asyncio.Event()

    async def lease(self, max_tasks: int, wait_s: float) -> LeaseReply:
        reply, self._reply = self._reply, None
        if reply is None:
            await asyncio.sleep(wait_s)
            return LeaseReply(tasks=[], storages={})
        return reply

    async def report(self, results: list[TaskReport]) -> ReportReply:
        self.reported += results
        if len(self.reported) >= self.expected:
            self.all_reported.set()
        return ReportReply(accepted=len(results), ignored=0)

    async def heartbeat(
        self, active: list[tuple[int, int]], state: dict[str, Any]
    ) -> HeartbeatReply:
        return HeartbeatReply(cancel=[])

    async def leave(self) -> int:
        return 0


def task(
    n: int,
    source: str,
    destination: str,
    size: int,
    bandwidth: int | None = None,
    *,
    throttled: bool = False,
) -> LeasedTaskPublic:
    return LeasedTaskPublic(
        id=n,
        lease=f"lease-{n}",
        transfer="t1",
        run=1,
        source=source,
        destination=destination,
        size=size,
        attempt=1,
        checksum=Checksum.ADLER32,
        overwrite=Overwrite.NEVER,
        bandwidth=bandwidth,
        throttled=throttled,
    )


async def run_until_reported(session: ScriptedSession) -> None:
    """Run an agent of eight slots until it has reported every task, then stop it."""
    agent = AgentRunner(session, max_active=8, grace=5.0)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(session.all_reported.wait(), 30)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


@pytest.fixture
def copied_on(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The thread that copied each source path."""
    threads: dict[str, str] = {}
    real = copies_module.copy_object

    def recording(request: Any, **kwargs: Any) -> Any:
        threads[request.source_path] = threading.current_thread().name
        return real(request, **kwargs)

    monkeypatch.setattr(copies_module, "copy_object", recording)
    return threads


async def copy_local_and_remote(tmp_path: Path, *, remote: int) -> ScriptedSession:
    """Forty small local objects (``disk:src/fN``) and ``remote`` small ones in memory
    (``mem:mN``), all copied to ``disk:dst/`` by an agent."""
    bucket = f"/bucket-{uuid.uuid4().hex}"
    memory = fsspec.filesystem("memory")
    (tmp_path / "src").mkdir()
    for n in range(40):
        (tmp_path / "src" / f"f{n}").write_bytes(b"x" * 100)
    for n in range(remote):
        memory.pipe(f"{bucket}/m{n}", b"y" * 100)
    tasks = [task(n, f"disk:src/f{n}", f"disk:dst/f{n}", 100) for n in range(40)]
    tasks += [task(100 + n, f"mem:m{n}", f"disk:dst/m{n}", 100) for n in range(remote)]
    storages = {"disk": f"file://{tmp_path}", "mem": f"memory://{bucket}"}
    session = ScriptedSession(tasks, storages)
    try:
        await run_until_reported(session)
    finally:
        memory.rm(bucket, recursive=True)
    return session


async def test_small_local_objects_share_one_thread_and_remote_ones_get_slots(
    tmp_path: Path, copied_on: dict[str, str]
) -> None:
    session = await copy_local_and_remote(tmp_path, remote=4)

    assert sorted(r.state for r in session.reported) == ["DONE"] * 44
    assert all((tmp_path / "dst" / f"f{n}").read_bytes() == b"x" * 100 for n in range(40))
    assert all((tmp_path / "dst" / f"m{n}").read_bytes() == b"y" * 100 for n in range(4))
    local = {copied_on[f"src/f{n}"] for n in range(40)}
    remote = {copied_on[f"m{n}"] for n in range(4)}
    assert len(local) == runner_module.LOCAL_LANE_THREADS
    assert all(name.startswith("copy-local") for name in local)
    assert not any(name.startswith("copy-local") for name in remote)


async def test_small_local_objects_held_to_a_bandwidth_are_copied_side_by_side(
    tmp_path: Path, copied_on: dict[str, str]
) -> None:
    """A throttled copy sleeps on its rate: on the one local lane thread, or batched with
    others, eight of them would take eight times as long."""
    (tmp_path / "src").mkdir()
    for n in range(8):
        (tmp_path / "src" / f"f{n}").write_bytes(b"x" * 32 * 1024)
    rate = 64 * 1024  # half a second for each object
    tasks = [task(n, f"disk:src/f{n}", f"disk:dst/f{n}", 32 * 1024, rate) for n in range(8)]
    session = ScriptedSession(tasks, {"disk": f"file://{tmp_path}"})
    await run_until_reported(session)

    assert sorted(r.state for r in session.reported) == ["DONE"] * 8
    threads = {copied_on[f"src/f{n}"] for n in range(8)}
    assert not any(name.startswith("copy-local") for name in threads)
    assert len(threads) == 8, f"eight throttled copies ran on {len(threads)} threads"


async def test_only_a_batch_of_small_local_copies_remembers_its_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remembered folders widen a check's window to the batch: a batch with a remote copy in
    it may take seconds, so its copies check every folder each time."""
    remembering: dict[str, tuple[str, bool]] = {}
    real = copies_module.copy_object

    def recording(request: Any, **kwargs: Any) -> Any:
        remembered = storages_module.batch_folders() is not None
        remembering[request.source_path] = (threading.current_thread().name, remembered)
        return real(request, **kwargs)

    monkeypatch.setattr(copies_module, "copy_object", recording)
    session = await copy_local_and_remote(tmp_path, remote=8)

    assert sorted(r.state for r in session.reported) == ["DONE"] * 48
    assert all(not remembered for _, remembered in (remembering[f"m{n}"] for n in range(8)))
    for thread, remembered in remembering.values():
        assert remembered == thread.startswith("copy-local")
    assert any(remembered for _, remembered in remembering.values())


async def test_an_error_as_long_as_its_path_is_reported_cut(tmp_path: Path) -> None:
    missing = "disk:" + "d/" * 2100 + "x"  # a missing source: its error names the path
    session = ScriptedSession([task(1, missing, "disk:dst/x", 1)], {"disk": f"file://{tmp_path}"})
    await run_until_reported(session)

    (report,) = session.reported
    assert report.state == "FAILED"
    assert report.error is not None
    assert len(report.error) <= 4000
    assert report.error.endswith("characters cut]")


class RefusingSession(ScriptedSession):
    """Refuses a report holding task 2's result, as a server refuses a body it cannot read
    (422), but takes the agent's failure for it."""

    async def report(self, results: list[TaskReport]) -> ReportReply:
        if any(r.task == 2 and r.error_class != "internal" for r in results):
            raise ApiError(422, "invalid request", "body.0: unreadable")
        return await super().report(results)


async def test_a_result_the_server_refuses_holds_back_no_other(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for n in range(3):
        (tmp_path / "src" / f"f{n}").write_bytes(b"x")
    tasks = [task(n, f"disk:src/f{n}", f"disk:dst/f{n}", 1) for n in range(3)]
    session = RefusingSession(tasks, {"disk": f"file://{tmp_path}"})
    await run_until_reported(session)  # without the split, task 2's batch is sent forever

    states = {r.task: r.state for r in session.reported}
    assert states == {0: "DONE", 1: "DONE", 2: "FAILED"}


class ResharingSession(ScriptedSession):
    """Its heartbeats give every held task a new bandwidth, as a channel's tasks end."""

    heartbeat_s = 0.05

    def __init__(self, *args: Any, rate: int) -> None:
        super().__init__(*args)
        self.rate = rate

    async def heartbeat(
        self, active: list[tuple[int, int]], state: dict[str, Any]
    ) -> HeartbeatReply:
        return HeartbeatReply(cancel=[], bandwidth={task: self.rate for task, _bytes in active})


async def test_a_copy_runs_at_the_bandwidth_its_heartbeat_gives_it(tmp_path: Path) -> None:
    """Defect 18.15: a task kept the share of its channel it was leased with (a tenth), after
    the other nine ended. At 100 KiB/s this object would take 80 s; re-shared at the next
    heartbeat, it ends at once."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big").write_bytes(os.urandom(8 * 1024 * 1024))
    tasks = [task(1, "disk:src/big", "disk:dst/big", 8 * 1024 * 1024, 100 * 1024)]
    storages = {"disk": f"file://{tmp_path}"}
    session = ResharingSession(tasks, storages, rate=1 << 30)
    await run_until_reported(session)

    assert [r.state for r in session.reported] == ["DONE"]
    assert (tmp_path / "dst" / "big").read_bytes() == (tmp_path / "src" / "big").read_bytes()


async def test_a_stopping_agent_gives_back_what_never_started_without_an_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot: the first copy holds it until the agent has given back the rest of its queue,
    which never started, so the server must count no attempt for them. (Listed as large: small
    ones would share the first one's hand-off and never wait in the queue.)"""
    (tmp_path / "src").mkdir()
    for n in range(6):
        (tmp_path / "src" / f"f{n}").write_bytes(b"x" * 100)
    tasks = [task(n, f"disk:src/f{n}", f"disk:dst/f{n}", 100 * 2**20) for n in range(6)]
    session = ScriptedSession(tasks, {"disk": f"file://{tmp_path}"})
    copying, may_finish = threading.Event(), threading.Event()
    real = copies_module.copy_object

    def held_open(request: Any, **kwargs: Any) -> Any:
        copying.set()
        may_finish.wait(30)
        return real(request, **kwargs)

    monkeypatch.setattr(copies_module, "copy_object", held_open)
    agent = AgentRunner(session, max_active=1, grace=30.0)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        assert await asyncio.to_thread(copying.wait, 30)
        stop.set()
        while not session.reported:  # the queue is given back before the copy is awaited
            await asyncio.sleep(0.01)
    finally:
        may_finish.set()
        await asyncio.wait_for(running, 30)
    given_back = [r for r in session.reported if r.state == "RELEASED"]
    done = [r for r in session.reported if r.state == "DONE"]
    assert len(done) == 1
    assert given_back, session.reported
    assert len(given_back) + len(done) == len(session.reported)
    assert not any(r.started for r in given_back), given_back


def test_a_heartbeat_sets_and_lifts_the_rate_only_of_throttled_tasks() -> None:
    """Issue 24, item 4: a task leased under a channel's timetable is throttled even when the
    timetable sets no limit at its lease; a task leased with neither keeps the kernel's copy."""
    free = HeldTask.from_lease(task(1, "disk:a", "disk:b", 1))
    timed = HeldTask.from_lease(task(2, "disk:a", "disk:c", 1, throttled=True))
    shared = HeldTask.from_lease(task(3, "disk:a", "disk:d", 1, bandwidth=500))
    agent = AgentRunner(ScriptedSession([], {}), max_active=1, grace=1.0)
    agent._held.update({1: free, 2: timed, 3: shared})

    agent._share_out(HeartbeatReply(cancel=[], bandwidth={1: 10, 2: 20, 3: 30}))
    assert (free.bandwidth, timed.bandwidth, shared.bandwidth) == (None, 20, 30)

    agent._share_out(HeartbeatReply(cancel=[], unlimited=[1, 2, 3]))
    assert (free.bandwidth, timed.bandwidth, shared.bandwidth) == (None, None, 30)
