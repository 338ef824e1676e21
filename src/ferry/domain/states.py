"""The state machines of transfers, runs, tasks and agents (DESIGN §2).

A transfer's, a run's and an agent's change of state, and a task's reported result, are
checked here before the store applies them as a compare-and-set: an illegal transition is a bug
and raises ``IllegalTransition``. A task's other moves (leased, paused, canceled, queued again)
are compare-and-sets whose ``WHERE state`` names the states they leave.

A paused transfer keeps its status (it is STANDBY or ONGOING and paused: ``paused_at``), as a
paused agent keeps its own: a pause is a hold put on either, not a step of its life, and the
copies that were active when it came may still end its run. What the pause changes is its
objects': a QUEUED or WAITING task of a paused transfer is PAUSED, out of the queue the lease
reads, and QUEUED (or WAITING) again when it is resumed. A periodic transfer's occurrence that
comes due while it is paused is a run of its own, SKIPPED at once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from ferry.errors import IllegalTransition


class TransferStatus(StrEnum):
    STANDBY = "STANDBY"
    ONGOING = "ONGOING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class RunStatus(StrEnum):
    ONGOING = "ONGOING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"  # an occurrence due while its transfer was paused: never started


class TaskState(StrEnum):
    QUEUED = "QUEUED"
    ACTIVE = "ACTIVE"
    WAITING = "WAITING"
    PAUSED = "PAUSED"  # its transfer is paused: out of the queue until it is resumed
    DONE = "DONE"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    # A destination file --delete-extra deleted: made so by the server, never leased.
    DELETED = "DELETED"


class AgentState(StrEnum):
    INVOKED = "INVOKED"
    REGISTERED = "REGISTERED"
    ALIVE = "ALIVE"
    LOST = "LOST"
    RETIRED = "RETIRED"


_RUN_END = (
    TransferStatus.COMPLETED,
    TransferStatus.COMPLETED_WITH_ERRORS,
    TransferStatus.FAILED,
)

TRANSFER_TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.STANDBY: frozenset({TransferStatus.ONGOING, TransferStatus.CANCELED}),
    TransferStatus.ONGOING: frozenset({*_RUN_END, TransferStatus.CANCELED}),
    # A periodic transfer whose series goes on returns to STANDBY after each run.
    TransferStatus.COMPLETED: frozenset({TransferStatus.STANDBY}),
    TransferStatus.COMPLETED_WITH_ERRORS: frozenset({TransferStatus.STANDBY}),
    TransferStatus.FAILED: frozenset({TransferStatus.STANDBY}),
    TransferStatus.CANCELED: frozenset(),
}

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.ONGOING: frozenset(
        {
            RunStatus.COMPLETED,
            RunStatus.COMPLETED_WITH_ERRORS,
            RunStatus.FAILED,
            RunStatus.CANCELED,
        }
    ),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.COMPLETED_WITH_ERRORS: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELED: frozenset(),
    RunStatus.SKIPPED: frozenset(),  # made so, never ONGOING
}

TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset({TaskState.ACTIVE, TaskState.PAUSED, TaskState.CANCELED}),
    TaskState.ACTIVE: frozenset(
        {
            TaskState.DONE,
            TaskState.SKIPPED,
            TaskState.FAILED,
            TaskState.WAITING,
            TaskState.QUEUED,  # lease expired or released: the attempt is counted
            TaskState.CANCELED,
        }
    ),
    TaskState.WAITING: frozenset({TaskState.QUEUED, TaskState.PAUSED, TaskState.CANCELED}),
    # Resumed: QUEUED, or WAITING again when it was paused during a retry's backoff.
    TaskState.PAUSED: frozenset({TaskState.QUEUED, TaskState.WAITING, TaskState.CANCELED}),
    TaskState.DONE: frozenset(),
    TaskState.SKIPPED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELED: frozenset(),
    TaskState.DELETED: frozenset(),
}

AGENT_TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    AgentState.INVOKED: frozenset({AgentState.REGISTERED, AgentState.LOST, AgentState.RETIRED}),
    AgentState.REGISTERED: frozenset({AgentState.ALIVE, AgentState.LOST, AgentState.RETIRED}),
    # A restarted agent registers again under its name.
    AgentState.ALIVE: frozenset({AgentState.REGISTERED, AgentState.LOST, AgentState.RETIRED}),
    # A lost agent that comes back heartbeats again, or registers with a new secret or its token.
    AgentState.LOST: frozenset({AgentState.REGISTERED, AgentState.ALIVE, AgentState.RETIRED}),
    AgentState.RETIRED: frozenset({AgentState.REGISTERED}),
}

FINAL_TASK_STATES = frozenset(s for s, targets in TASK_TRANSITIONS.items() if not targets)
FINAL_RUN_STATUSES = frozenset(s for s, targets in RUN_TRANSITIONS.items() if not targets)
RUN_END_STATUSES = frozenset(_RUN_END)


def check_transfer_transition(current: TransferStatus, target: TransferStatus) -> None:
    _check("transfer", TRANSFER_TRANSITIONS, current, target)


def check_run_transition(current: RunStatus, target: RunStatus) -> None:
    _check("run", RUN_TRANSITIONS, current, target)


def check_task_transition(current: TaskState, target: TaskState) -> None:
    _check("task", TASK_TRANSITIONS, current, target)


def check_agent_transition(current: AgentState, target: AgentState) -> None:
    _check("agent", AGENT_TRANSITIONS, current, target)


S = TypeVar("S", bound=StrEnum)


def _check(entity: str, table: dict[S, frozenset[S]], current: S, target: S) -> None:
    if target not in table[current]:
        raise IllegalTransition(entity, current.value, target.value)
