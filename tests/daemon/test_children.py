"""The supervisor of the server's children (``ferry.daemon.children``), with real processes:
restarts with a backoff, a frozen child killed and replaced, stop with SIGTERM, SIGQUIT and
SIGKILL after the grace."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ferry.daemon import children
from ferry.daemon.children import ChildSpec, Supervisor

SLEEP = "import time; time.sleep(60)"


async def until(check: Callable[[], object], timeout: float = 10.0) -> object:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := check()):
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
    return value


def python(name: str, code: str, **env: str) -> ChildSpec:
    async def environment() -> dict[str, str]:
        return dict(env)

    return ChildSpec(name, [sys.executable, "-c", code], environment)


def ready_then(code: str, ready: Path) -> str:
    """A child that runs ``code`` (setting up its signals), says so in ``ready``, then sleeps."""
    return f"{code}\nimport pathlib, time\npathlib.Path({str(ready)!r}).touch()\ntime.sleep(60)"


def stopped(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tT" in status


class Exits:
    """The supervisor's on_exit callback: what it was told, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.times: list[float] = []

    async def __call__(self, name: str, returncode: int) -> None:
        self.seen.append((name, returncode))
        self.times.append(asyncio.get_running_loop().time())


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(children, "BACKOFF_START_S", 0.05)


@pytest.fixture
async def supervised() -> AsyncIterator[tuple[Supervisor, Exits]]:
    exits = Exits()
    supervisor = Supervisor(exits)
    yield supervisor, exits
    await supervisor.stop(grace=2)


def alive(child: children.Child) -> bool:
    return child.process is not None and child.process.returncode is None


async def test_a_child_that_exits_is_restarted_with_a_doubling_backoff(
    fast_backoff: None, supervised: tuple[Supervisor, Exits], tmp_path: Path
) -> None:
    supervisor, exits = supervised
    starts = tmp_path / "starts"
    counter = iter(range(1, 100))

    async def environment() -> dict[str, str]:
        return {"START": str(next(counter))}  # made fresh at every start

    code = f"import os; open({str(starts)!r}, 'a').write(os.environ['START'] + '\\n'); exit(3)"
    child = supervisor.start(ChildSpec("quick", [sys.executable, "-c", code], environment))
    await until(lambda: len(exits.seen) >= 4)
    assert exits.seen[:4] == [("quick", 3)] * 4
    assert starts.read_text().splitlines()[:4] == ["1", "2", "3", "4"]
    assert child.restarts >= 3
    gaps = [later - earlier for earlier, later in zip(exits.times, exits.times[1:], strict=False)]
    for number, gap in enumerate(gaps[:3]):
        assert gap >= 0.05 * 2**number  # 0.05 s, 0.1 s, 0.2 s between the starts


async def test_a_child_that_cannot_start_is_retried(
    fast_backoff: None,
    supervised: tuple[Supervisor, Exits],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor, exits = supervised
    spec = ChildSpec("missing", [str(tmp_path / "no-such-program")], python("x", "").environment)
    supervisor.start(spec)
    await until(lambda: len(exits.seen) >= 2)
    assert exits.seen[:2] == [("missing", -1), ("missing", -1)]
    assert "child missing could not be started" in caplog.text


async def test_kill_hung_kills_a_frozen_child_and_the_supervisor_replaces_it(
    fast_backoff: None, supervised: tuple[Supervisor, Exits], caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, exits = supervised
    frozen = supervisor.start(python("frozen", SLEEP))
    healthy = supervisor.start(python("healthy", SLEEP))
    await until(lambda: alive(frozen) and alive(healthy))
    assert frozen.process is not None
    assert healthy.process is not None
    frozen_pid, healthy_pid = frozen.process.pid, healthy.process.pid
    os.kill(frozen_pid, signal.SIGSTOP)
    await until(lambda: stopped(frozen_pid))
    silences = {"frozen": 5.0, "healthy": 0.05}
    asked: list[str] = []

    async def silent_for(name: str) -> float | None:
        asked.append(name)
        return silences[name]

    timeout = 0.2
    loop = asyncio.get_running_loop()
    await until(lambda: loop.time() - frozen.started_at > timeout)
    await until(lambda: loop.time() - healthy.started_at > timeout)
    with caplog.at_level(logging.WARNING, logger="ferry.daemon"):
        assert await supervisor.kill_hung(silent_for, timeout) == ["frozen"]
        assert sorted(asked) == ["frozen", "healthy"]
        await until(lambda: exits.seen)
        assert exits.seen == [("frozen", -signal.SIGKILL)]
        await until(lambda: frozen.restarts == 1 and alive(frozen))
    assert frozen.process.pid != frozen_pid  # replaced by a new process
    assert not stopped(frozen.process.pid)
    assert healthy.process.pid == healthy_pid
    assert alive(healthy)
    assert healthy.restarts == 0
    assert f"child frozen (pid {frozen_pid}): no heartbeat for 5 s" in caplog.text
    assert "child frozen exited with status -9 (hung: no heartbeat for 5 s, killed)" in caplog.text


async def test_kill_hung_spares_young_children_and_those_without_heartbeats(
    supervised: tuple[Supervisor, Exits],
) -> None:
    supervisor, exits = supervised
    child = supervisor.start(python("young", SLEEP))
    await until(lambda: alive(child))
    asked: list[str] = []

    async def silent(name: str) -> float | None:
        asked.append(name)
        return 1000.0

    assert await supervisor.kill_hung(silent, timeout=60) == []  # ran less than the timeout
    assert asked == []

    async def never_heard(name: str) -> float | None:
        return None

    loop = asyncio.get_running_loop()
    await until(lambda: loop.time() - child.started_at > 0.05)
    assert await supervisor.kill_hung(never_heard, timeout=0.05) == []
    assert alive(child)
    assert exits.seen == []


async def test_stop_sends_sigterm_and_reaps_without_restarting(
    supervised: tuple[Supervisor, Exits],
) -> None:
    supervisor, exits = supervised
    started = [supervisor.start(python(f"c{n}", SLEEP)) for n in range(2)]
    await until(lambda: all(alive(child) for child in started))
    await supervisor.stop(grace=5)
    assert [child.process.returncode for child in started if child.process] == [
        -signal.SIGTERM,
        -signal.SIGTERM,
    ]
    assert exits.seen == []
    assert all(child.watcher is not None and child.watcher.done() for child in started)
    assert all(child.restarts == 0 for child in started)


async def test_stop_with_sigquit_delivers_it_to_the_child(
    supervised: tuple[Supervisor, Exits], tmp_path: Path
) -> None:
    supervisor, exits = supervised
    ready, heard = tmp_path / "ready", tmp_path / "heard"
    handler = (
        "import pathlib, signal, sys\n"
        "def quit(signum, frame):\n"
        f"    pathlib.Path({str(heard)!r}).write_text(signal.Signals(signum).name)\n"
        "    sys.exit(7)\n"
        "signal.signal(signal.SIGQUIT, quit)"
    )
    child = supervisor.start(python("quitter", ready_then(handler, ready)))
    await until(ready.exists)
    await supervisor.stop(grace=5, signum=signal.SIGQUIT)
    assert heard.read_text() == "SIGQUIT"
    assert child.process is not None
    assert child.process.returncode == 7
    assert exits.seen == []


async def test_stop_kills_a_child_still_alive_after_the_grace(
    supervised: tuple[Supervisor, Exits], tmp_path: Path
) -> None:
    supervisor, _ = supervised
    ready = tmp_path / "ready"
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    child = supervisor.start(python("stubborn", ready_then(ignore, ready)))
    await until(ready.exists)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await supervisor.stop(grace=0.3)
    assert loop.time() - began >= 0.3
    assert child.process is not None
    assert child.process.returncode == -signal.SIGKILL


async def test_stop_wakes_a_stopped_child_so_it_sees_the_signal(
    supervised: tuple[Supervisor, Exits],
) -> None:
    supervisor, exits = supervised
    child = supervisor.start(python("paused", SLEEP))
    await until(lambda: alive(child))
    assert child.process is not None
    os.kill(child.process.pid, signal.SIGSTOP)
    await until(lambda: stopped(child.process.pid))
    await supervisor.stop(grace=5)
    assert child.process.returncode == -signal.SIGTERM  # not killed after the grace
    assert exits.seen == []


async def test_stop_during_a_backoff_returns_at_once(supervised: tuple[Supervisor, Exits]) -> None:
    supervisor, exits = supervised
    child = supervisor.start(python("dies", "exit(1)"))  # then waits 1 s before restarting
    await until(lambda: exits.seen)
    assert child.process is not None
    pid = child.process.pid
    loop = asyncio.get_running_loop()
    began = loop.time()
    await supervisor.stop(grace=5)
    assert loop.time() - began < 0.5
    assert child.process.pid == pid  # not started again
    assert exits.seen == [("dies", 1)]
    assert await supervisor.kill_hung(lambda name: _never(), 0.0) == []


async def _never() -> float | None:
    raise AssertionError("a stopped supervisor asks about no child")


async def test_a_child_starting_while_stopping_is_stopped_too(tmp_path: Path) -> None:
    exits = Exits()
    supervisor = Supervisor(exits)
    ready = tmp_path / "ready"
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    stubborn = supervisor.start(python("stubborn", ready_then(ignore, ready)))
    entered, gate = asyncio.Event(), asyncio.Event()

    async def slow_environment() -> dict[str, str]:  # e.g. a secret issued by the database
        entered.set()
        await gate.wait()
        return {}

    late = supervisor.start(ChildSpec("late", [sys.executable, "-c", SLEEP], slow_environment))
    await until(ready.exists)
    await entered.wait()
    stopping = asyncio.create_task(supervisor.stop(grace=0.5))
    await asyncio.sleep(0)  # stop() signals the running child, then waits up to the grace
    assert not stopping.done()
    assert stubborn.process is not None
    gate.set()  # now the late child's environment is ready and it starts
    await stopping
    try:
        assert late.process is None or late.process.returncode is not None
    finally:
        if late.process is not None and late.process.returncode is None:
            late.process.kill()
            await late.process.wait()
