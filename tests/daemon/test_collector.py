"""The garbage collector's settings once a daemon has started."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ferry.daemon import collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_leaves_what_exists_out_of_every_collection(restored_collector) -> None:
    kept = [[n] for n in range(1000)]  # long-lived objects, tracked by the collector
    gc.unfreeze()
    collector.settle()
    walked = gc.get_objects()  # every generation a collection walks
    assert not any(o is kept[0] or o is kept[-1] for o in walked)


def test_settle_collects_the_young_less_often_and_keeps_the_older_pace(restored_collector) -> None:
    _young, middle, old = gc.get_threshold()
    collector.settle()
    assert gc.get_threshold() == (collector.YOUNG_EVERY, middle, old)


class _Node:
    pass


def test_settle_collects_garbage_made_before_it(restored_collector) -> None:
    node = _Node()
    node.itself = node  # a cycle: only the collector frees it
    gone = weakref.ref(node)
    del node
    collector.settle()
    assert gone() is None  # freed, not frozen for the process's lifetime
