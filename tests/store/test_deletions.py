"""The deletion step of --delete-extra runs in the store (SQLite and PostgreSQL): a run waits
on it before it is closed, and what it deleted becomes DELETED objects of the run."""

from __future__ import annotations

from ferry.domain.locations import parse_location
from ferry.domain.states import RunStatus, TaskState
from ferry.domain.sync import DeletionState
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions

SKIPPED = [
    PlannedTask(parse_location(f"src:in/{name}"), parse_location(f"dst:out/{name}"), 10,
                TaskState.SKIPPED, error="the destination exists (sync: exists)")
    for name in ("a", "b")
]  # fmt: skip
GONE = [
    PlannedTask(parse_location(f"src:in/{name}"), parse_location(f"dst:out/{name}"), size,
                TaskState.DELETED, error="not in the source (delete-extra)")
    for name, size in (("old", 7), ("older", 11))
]  # fmt: skip


async def _ended_run(store, clock, submit, *, delete_extra: bool = True):
    """A tree transfer's run whose objects have all ended (SKIPPED)."""
    options = TransferOptions(delete_extra=delete_extra)
    transfer = await submit(
        kind=TransferKind.TREE, sources=("src:in",), destination="dst:out", options=options
    )
    [run] = await store.claim_due_transfers(clock.now, 10)
    transfer = await store.get_transfer(transfer.id)
    await store.add_tasks(transfer, run.number, SKIPPED, expanded=True)
    return transfer, run


async def test_a_run_waits_on_its_deletion_step_before_it_ends(store, clock, submit) -> None:
    transfer, run = await _ended_run(store, clock, submit)
    assert run.deletion is DeletionState.PENDING

    assert await store.finish_runs(clock.now) == []
    [(waiting, pending)] = await store.runs_to_prune(limit=10)
    assert (waiting.id, pending.number) == (transfer.id, run.number)

    await store.record_deletion(transfer, run.number, DeletionState.DONE, "deleted 2", GONE)
    assert await store.runs_to_prune(limit=10) == []
    [finished] = await store.finish_runs(clock.now)

    assert finished.status is RunStatus.COMPLETED
    c = finished.counts
    assert (c.total, c.skipped, c.deleted, c.deleted_bytes) == (2, 2, 2, 18)
    assert (finished.deletion, finished.deletion_note) == (DeletionState.DONE, "deleted 2")
    objects = await store.outcomes(transfer.id, run.number, after=0, limit=10)
    assert [(o.number, o.state, str(o.destination), o.size) for o in objects] == [
        (1, TaskState.SKIPPED, "dst:out/a", 10),
        (2, TaskState.SKIPPED, "dst:out/b", 10),
        (3, TaskState.DELETED, "dst:out/old", 7),
        (4, TaskState.DELETED, "dst:out/older", 11),
    ]
    deleted = await store.outcomes(
        transfer.id, run.number, after=0, limit=10, state=TaskState.DELETED
    )
    assert [o.number for o in deleted] == [3, 4]


async def test_a_failed_deletion_step_makes_the_run_an_error(store, clock, submit) -> None:
    transfer, run = await _ended_run(store, clock, submit)
    why = "nothing deleted: 250 files to delete, more than max-delete 100"

    await store.record_deletion(transfer, run.number, DeletionState.FAILED, why)
    [finished] = await store.finish_runs(clock.now)

    assert finished.status is RunStatus.COMPLETED_WITH_ERRORS
    assert finished.error == why
    assert (await store.get_transfer(transfer.id)).error == why
    assert finished.counts.deleted == 0


async def test_the_step_is_recorded_once(store, clock, submit) -> None:
    transfer, run = await _ended_run(store, clock, submit)
    await store.record_deletion(transfer, run.number, DeletionState.HELD, "nothing deleted")
    await store.record_deletion(transfer, run.number, DeletionState.DONE, "again", GONE)

    [finished] = await store.finish_runs(clock.now)
    assert (finished.deletion, finished.counts.deleted) == (DeletionState.HELD, 0)
    assert finished.status is RunStatus.COMPLETED


async def test_a_run_without_delete_extra_has_no_step(store, clock, submit) -> None:
    _transfer, run = await _ended_run(store, clock, submit, delete_extra=False)
    assert run.deletion is None
    assert await store.runs_to_prune(limit=10) == []
    [finished] = await store.finish_runs(clock.now)
    assert finished.deletion is None
