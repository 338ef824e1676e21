"""The state machines: every pair of states of every entity is either legal or refused."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from enum import StrEnum

import pytest

from ferry.domain.states import (
    AGENT_TRANSITIONS,
    FINAL_RUN_STATUSES,
    FINAL_TASK_STATES,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    TRANSFER_TRANSITIONS,
    AgentState,
    RunStatus,
    TaskState,
    TransferStatus,
    check_agent_transition,
    check_run_transition,
    check_task_transition,
    check_transfer_transition,
)
from ferry.errors import Conflict, IllegalTransition

MACHINES: list[tuple[str, type[StrEnum], dict, Callable[..., None]]] = [
    ("transfer", TransferStatus, TRANSFER_TRANSITIONS, check_transfer_transition),
    ("run", RunStatus, RUN_TRANSITIONS, check_run_transition),
    ("task", TaskState, TASK_TRANSITIONS, check_task_transition),
    ("agent", AgentState, AGENT_TRANSITIONS, check_agent_transition),
]

LEGAL = {
    "transfer": {
        ("STANDBY", "ONGOING"),
        ("STANDBY", "CANCELED"),
        ("ONGOING", "COMPLETED"),
        ("ONGOING", "COMPLETED_WITH_ERRORS"),
        ("ONGOING", "FAILED"),
        ("ONGOING", "CANCELED"),
        ("COMPLETED", "STANDBY"),
        ("COMPLETED_WITH_ERRORS", "STANDBY"),
        ("FAILED", "STANDBY"),
    },
    "run": {  # SKIPPED: made so, never reached
        ("ONGOING", "COMPLETED"),
        ("ONGOING", "COMPLETED_WITH_ERRORS"),
        ("ONGOING", "FAILED"),
        ("ONGOING", "CANCELED"),
    },
    "task": {
        ("QUEUED", "ACTIVE"),
        ("QUEUED", "PAUSED"),
        ("QUEUED", "CANCELED"),
        ("ACTIVE", "DONE"),
        ("ACTIVE", "SKIPPED"),
        ("ACTIVE", "FAILED"),
        ("ACTIVE", "WAITING"),
        ("ACTIVE", "QUEUED"),
        ("ACTIVE", "CANCELED"),
        ("WAITING", "QUEUED"),
        ("WAITING", "PAUSED"),
        ("WAITING", "CANCELED"),
        ("PAUSED", "QUEUED"),
        ("PAUSED", "WAITING"),
        ("PAUSED", "CANCELED"),
    },
    "agent": {
        ("INVOKED", "REGISTERED"),
        ("INVOKED", "LOST"),
        ("INVOKED", "RETIRED"),
        ("REGISTERED", "ALIVE"),
        ("REGISTERED", "LOST"),
        ("REGISTERED", "RETIRED"),
        ("ALIVE", "REGISTERED"),
        ("ALIVE", "LOST"),
        ("ALIVE", "RETIRED"),
        ("LOST", "REGISTERED"),
        ("LOST", "ALIVE"),
        ("LOST", "RETIRED"),
        ("RETIRED", "REGISTERED"),
    },
}


def _pairs(legal: bool) -> list[object]:
    return [
        pytest.param(check, enum(a), enum(b), id=f"{entity}:{a}->{b}")
        for entity, enum, _table, check in MACHINES
        for a, b in itertools.product([s.value for s in enum], repeat=2)
        if ((a, b) in LEGAL[entity]) is legal
    ]


@pytest.mark.parametrize(("check", "current", "target"), _pairs(legal=True))
def test_legal_transition_passes(check, current, target):
    check(current, target)


@pytest.mark.parametrize(("check", "current", "target"), _pairs(legal=False))
def test_illegal_transition_raises_naming_both_states(check, current, target):
    with pytest.raises(IllegalTransition) as caught:
        check(current, target)
    message = str(caught.value)
    assert f"from {current.value} to {target.value}" in message
    assert (caught.value.current, caught.value.target) == (current.value, target.value)


def test_illegal_transition_is_a_conflict():
    assert issubclass(IllegalTransition, Conflict)


@pytest.mark.parametrize(
    ("entity", "table"),
    [(entity, table) for entity, _enum, table, _check in MACHINES],
    ids=[m[0] for m in MACHINES],
)
def test_tables_match_the_documented_machines(entity, table):
    listed = {(a.value, b.value) for a, targets in table.items() for b in targets}
    assert listed == LEGAL[entity]


@pytest.mark.parametrize(
    ("enum", "table"), [(m[1], m[2]) for m in MACHINES], ids=[m[0] for m in MACHINES]
)
def test_every_state_has_a_row(enum, table):
    assert set(table) == set(enum)


def test_nothing_leads_back_to_standby_from_ongoing_or_canceled():
    standby = TransferStatus.STANDBY
    sources = {s for s, targets in TRANSFER_TRANSITIONS.items() if standby in targets}
    assert TransferStatus.ONGOING not in sources
    assert TransferStatus.CANCELED not in sources


def test_final_task_states_are_the_five_outcomes():
    outcomes = {
        TaskState.DONE,
        TaskState.SKIPPED,
        TaskState.FAILED,
        TaskState.CANCELED,
        TaskState.DELETED,  # a destination file --delete-extra deleted
    }
    assert outcomes == FINAL_TASK_STATES


def test_final_run_statuses_are_all_but_ongoing():
    assert set(RunStatus) - {RunStatus.ONGOING} == FINAL_RUN_STATUSES


@pytest.mark.parametrize(
    ("check", "final", "target"),
    [
        pytest.param(check_task_transition, a, b, id=f"task:{a}->{b}")
        for a in sorted(FINAL_TASK_STATES)
        for b in TaskState
    ]
    + [
        pytest.param(check_run_transition, a, b, id=f"run:{a}->{b}")
        for a in sorted(FINAL_RUN_STATUSES)
        for b in RunStatus
    ]
    + [
        pytest.param(check_transfer_transition, TransferStatus.CANCELED, b, id=f"transfer:->{b}")
        for b in TransferStatus
    ],
)
def test_final_states_have_no_exit(check, final, target):
    with pytest.raises(IllegalTransition):
        check(final, target)
