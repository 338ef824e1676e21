"""Fair dispatch: strict priority inside a scope, weighted round-robin across scopes, round-robin
across channels, oldest first, channel room never exceeded, credits kept between calls."""

from __future__ import annotations

from collections import Counter

from ferry.domain.dispatch import FairDispatcher, Pair, Queued, QueueKey

AB: Pair = ("A", "B")
AC: Pair = ("A", "C")


def queue(first_id: int, count: int, priority: int = 3) -> list[Queued]:
    return [Queued(first_id + n, priority) for n in range(count)]


def scope_of(ids: list[int], first_ids: dict[str, int]) -> list[str]:
    """Each picked id's scope, from the scope whose id block (of 1000) it falls in."""
    by_block = {first // 1000: scope for scope, first in first_ids.items()}
    return [by_block[i // 1000] for i in ids]


def pick(
    dispatcher: FairDispatcher,
    queues: dict[QueueKey, list[Queued]],
    *,
    limit: int,
    weights: dict[str, int] | None = None,
    channel_of: dict[QueueKey, Pair | None] | None = None,
    room: dict[Pair, int] | None = None,
) -> list[int]:
    return dispatcher.pick(queues, channel_of or {}, room or {}, weights or {}, limit)


# --- across scopes --------------------------------------------------------------------------------


def test_two_scopes_of_equal_weight_alternate() -> None:
    queues = {("atlas", *AB): queue(1000, 10), ("cms", *AB): queue(2000, 10)}
    picked = pick(FairDispatcher(), queues, limit=8)
    assert scope_of(picked, {"atlas": 1000, "cms": 2000}) == ["atlas", "cms"] * 4


def test_weights_three_to_one_give_three_picks_to_one_in_every_round() -> None:
    queues = {("atlas", *AB): queue(1000, 20), ("cms", *AB): queue(2000, 20)}
    picked = pick(FairDispatcher(), queues, limit=12, weights={"atlas": 3, "cms": 1})
    scopes = scope_of(picked, {"atlas": 1000, "cms": 2000})
    for start in range(0, 12, 4):
        assert Counter(scopes[start : start + 4]) == {"atlas": 3, "cms": 1}


def test_a_scope_without_a_weight_or_a_weight_below_one_counts_as_one() -> None:
    queues = {("atlas", *AB): queue(1000, 10), ("cms", *AB): queue(2000, 10)}
    picked = pick(FairDispatcher(), queues, limit=6, weights={"atlas": 0})
    assert Counter(scope_of(picked, {"atlas": 1000, "cms": 2000})) == {"atlas": 3, "cms": 3}


def test_an_idle_scope_leaves_the_whole_batch_to_the_others() -> None:
    queues = {("atlas", *AB): queue(1000, 10), ("cms", *AB): []}
    assert pick(FairDispatcher(), queues, limit=4, weights={"cms": 100}) == [1000, 1001, 1002, 1003]


def test_priority_does_not_cross_scopes() -> None:
    queues = {
        ("atlas", *AB): queue(1000, 10, priority=5),
        ("cms", *AB): queue(2000, 10, priority=1),
    }
    picked = pick(FairDispatcher(), queues, limit=4)
    assert scope_of(picked, {"atlas": 1000, "cms": 2000}) == ["atlas", "cms", "atlas", "cms"]


# --- inside a scope -------------------------------------------------------------------------------


def test_priority_is_strict_inside_a_scope_across_its_channels() -> None:
    queues = {
        ("atlas", *AB): queue(1000, 3, priority=1),
        ("atlas", *AC): queue(2000, 3, priority=5),
    }
    assert pick(FairDispatcher(), queues, limit=5) == [2000, 2001, 2002, 1000, 1001]


def test_channels_of_a_scope_at_equal_priority_take_turns() -> None:
    queues = {("atlas", *AB): queue(1000, 3), ("atlas", *AC): queue(2000, 3)}
    assert pick(FairDispatcher(), queues, limit=6) == [1000, 2000, 1001, 2001, 1002, 2002]


def test_at_equal_priority_the_oldest_head_goes_first() -> None:
    queues = {("atlas", *AB): [Queued(7, 3)], ("atlas", *AC): [Queued(3, 3)]}
    assert pick(FairDispatcher(), queues, limit=2) == [3, 7]


def test_a_queue_is_served_in_the_order_it_was_given() -> None:
    queues = {("atlas", *AB): [Queued(5, 3), Queued(9, 3), Queued(2, 3)]}
    assert pick(FairDispatcher(), queues, limit=3) == [5, 9, 2]


# --- channel room ---------------------------------------------------------------------------------


def test_a_channel_gives_no_more_than_its_room_and_the_room_is_used_up() -> None:
    queues = {("atlas", *AB): queue(1000, 10)}
    room = {AB: 2}
    picked = pick(FairDispatcher(), queues, limit=10, channel_of={("atlas", *AB): AB}, room=room)
    assert picked == [1000, 1001]
    assert room == {AB: 0}


def test_scopes_sharing_a_channel_share_its_room() -> None:
    queues = {("atlas", *AB): queue(1000, 10), ("cms", *AB): queue(2000, 10)}
    channel_of: dict[QueueKey, Pair | None] = {("atlas", *AB): AB, ("cms", *AB): AB}
    picked = pick(FairDispatcher(), queues, limit=10, channel_of=channel_of, room={AB: 3})
    assert len(picked) == 3
    assert set(scope_of(picked, {"atlas": 1000, "cms": 2000})) == {"atlas", "cms"}


def test_a_full_channel_lets_the_rest_of_its_scope_through() -> None:
    queues = {("atlas", *AB): queue(1000, 5, priority=9), ("atlas", *AC): queue(2000, 5)}
    channel_of: dict[QueueKey, Pair | None] = {("atlas", *AB): AB, ("atlas", *AC): None}
    picked = pick(FairDispatcher(), queues, limit=4, channel_of=channel_of, room={AB: 1})
    assert picked == [1000, 2000, 2001, 2002]


def test_a_channel_without_room_gives_nothing() -> None:
    queues = {("atlas", *AB): queue(1000, 5)}
    assert pick(FairDispatcher(), queues, limit=5, channel_of={("atlas", *AB): AB}, room={}) == []


def test_nothing_is_picked_with_a_limit_of_zero_or_no_queues() -> None:
    assert pick(FairDispatcher(), {("atlas", *AB): queue(1000, 5)}, limit=0) == []
    assert pick(FairDispatcher(), {}, limit=5) == []


# --- credits between calls ------------------------------------------------------------------------


def fresh_queues() -> dict[QueueKey, list[Queued]]:
    return {("atlas", *AB): queue(1000, 5), ("cms", *AB): queue(2000, 5)}


def test_credits_persist_so_that_leases_of_one_still_alternate() -> None:
    dispatcher = FairDispatcher()
    picked = [pick(dispatcher, fresh_queues(), limit=1)[0] for _ in range(6)]
    assert scope_of(picked, {"atlas": 1000, "cms": 2000}) == ["atlas", "cms"] * 3


def test_credits_persist_so_that_weights_hold_one_pick_at_a_time() -> None:
    dispatcher = FairDispatcher()
    weights = {"atlas": 3, "cms": 1}
    picked = [pick(dispatcher, fresh_queues(), limit=1, weights=weights)[0] for _ in range(8)]
    assert Counter(scope_of(picked, {"atlas": 1000, "cms": 2000})) == {"atlas": 6, "cms": 2}


def test_a_new_dispatcher_restarts_the_rotation() -> None:
    picked = [pick(FairDispatcher(), fresh_queues(), limit=1)[0] for _ in range(3)]
    assert picked == [1000, 1000, 1000]


def test_a_task_past_the_limit_of_objects_ends_the_batch_and_keeps_its_scopes_turn() -> None:
    dispatcher = FairDispatcher()
    carriers = [Queued(1000 + n, 3, objects=64) for n in range(10)]
    queues = {("atlas", *AB): carriers, ("cms", *AB): [Queued(2000 + n, 3, 2) for n in range(5)]}

    first = pick(dispatcher, queues, limit=64)
    second = pick(dispatcher, {**queues, ("atlas", *AB): carriers[1:]}, limit=64)
    third = pick(
        dispatcher, {("atlas", *AB): carriers[1:], ("cms", *AB): queues["cms", *AB][1:]}, limit=64
    )

    # cms's carrier of 2 would pass the first lease's limit; it comes first in the next, and
    # atlas's turn after it, not fitting, waits for the third.
    assert (first, second, third) == ([1000], [2000], [1001])
