"""What the store makes of a resumed copy (engine.resume): the agent's byte counter counts the
bytes it moved, not those an earlier attempt had written; and a run's failed attempts are
among those whose temporary files are removed when it ends (a failed resumable copy keeps
its ``.part`` for the next attempt)."""

from __future__ import annotations

from ferry.domain.states import TaskState
from ferry.domain.transfers import TransferOptions
from ferry.store.abc import TaskResult

from .factories import failed, lease

SIZE = 1000


async def test_an_agent_counts_only_the_bytes_a_resumed_copy_moved(store, start, agent_id):
    await start(tasks=2)
    whole, resumed = await lease(store, agent_id)
    await store.record_results(
        agent_id,
        [
            TaskResult(whole.id, whole.lease, TaskState.DONE, bytes=SIZE),
            TaskResult(resumed.id, resumed.lease, TaskState.DONE, bytes=SIZE, resumed=600),
        ],
    )

    [stats] = (await store.agent_statistics([agent_id])).values()

    assert stats.bytes == SIZE + SIZE - 600


async def test_failed_attempts_are_among_those_whose_leftovers_are_removed(
    store, start, agent_id, clock
):
    started = await start(tasks=1, options=TransferOptions(retries=1))
    transfer = started.transfer.id
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "reset", retryable=True)])
    await store.requeue_waiting(clock.advance(seconds=600))
    [again] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(again, "reset", retryable=True)])

    lost = await store.lost_attempts(transfer, 1)

    assert sorted((x.task, x.number) for x in lost) == [(task.id, 1), (task.id, 2)]
