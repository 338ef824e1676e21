"""The copy processes of ``ferry copy`` (``agent.copy_processes``): each applies its function
to a batch and answers in order, a process that dies answers ``None`` with its exit code, and
processes whose parent was killed end on their own (their pipes close), none left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ferry.agent.copy_processes import CopyProcess


def _twice(item: int) -> tuple[int, int]:
    if item < 0:
        os._exit(3)  # a process that dies in the middle of a batch
    return item * 2, os.getpid()


def test_a_batch_is_answered_in_order_by_another_process() -> None:
    lane = CopyProcess(_twice)
    try:
        answered = lane.copy([1, 2, 3])
        assert answered is not None
        assert [value for value, _pid in answered] == [2, 4, 6]
        assert {pid for _value, pid in answered} == {lane.process.pid} != {os.getpid()}
    finally:
        lane.close()
    assert lane.exit_code == 0


def test_a_process_that_dies_with_a_batch_answers_none_and_its_exit_code() -> None:
    lane = CopyProcess(_twice)
    try:
        assert lane.copy([1, -1, 2]) is None
        assert lane.exit_code == 3
    finally:
        lane.close()


PARENT = """
import sys, time
from ferry.agent.copy_processes import CopyProcess
first = CopyProcess(abs)
second = CopyProcess(abs, [first])
assert first.copy([-1]) == [1] and second.copy([-2]) == [2]
print(first.process.pid, second.process.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (whoever adopted it has not reaped it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_the_processes_of_a_parent_killed_end_on_their_own(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    ) as parent:
        try:
            assert parent.stdout is not None
            children = [int(pid) for pid in parent.stdout.readline().split()]
        finally:
            parent.kill()
    assert len(children) == 2
    deadline = time.monotonic() + 30
    while not all(_gone(pid) for pid in children):
        assert time.monotonic() < deadline, f"copy processes {children} outlived their parent"
        time.sleep(0.05)
