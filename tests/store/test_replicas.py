"""A task's replicas in the store, on SQLite and PostgreSQL: kept in its row when planned,
leased with it in order, and the place a result says it was read from shown in its outcome,
with the errors of the places that failed before it."""

from __future__ import annotations

from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask
from ferry.store.abc import TaskResult

from .factories import lease


async def test_replicas_are_leased_in_order_and_the_place_read_is_its_outcome(
    store, submit, clock, agent_id
) -> None:
    transfer = await submit(sources=("src:in/a.bin",))
    [run] = await store.claim_due_transfers(clock.now, 10)
    transfer = await store.get_transfer(transfer.id)
    replicas = (parse_location("mirror:a.bin"), parse_location("https://far.example/a.bin"))
    plain = PlannedTask(parse_location("src:in/b.bin"), parse_location("dst:out/b.bin"))
    with_replicas = PlannedTask(
        parse_location("src:in/a.bin"), parse_location("dst:out/a.bin"), replicas=replicas
    )
    await store.add_tasks(transfer, run.number, [with_replicas, plain], expanded=True)

    leased = {str(task.source): task for task in await lease(store, agent_id)}
    assert leased["src:in/a.bin"].replicas == replicas
    assert leased["src:in/b.bin"].replicas == ()

    read_from = "https://far.example/a.bin"
    error = f"read from {read_from} after: not found: src:in/a.bin; not found: mirror:a.bin"
    results = [
        TaskResult(
            leased["src:in/a.bin"].id,
            leased["src:in/a.bin"].lease,
            TaskState.DONE,
            bytes=3,
            error=error,
            replica=read_from,
        ),
        TaskResult(leased["src:in/b.bin"].id, leased["src:in/b.bin"].lease, TaskState.DONE),
    ]
    assert len(await store.record_results(agent_id, results)) == 2

    objects = {str(o.source): o for o in await store.outcomes(transfer.id, 1, after=-1, limit=10)}
    shown = objects["src:in/a.bin"]
    assert (shown.state, str(shown.replica), shown.error) == (TaskState.DONE, read_from, error)
    assert objects["src:in/b.bin"].replica is None
