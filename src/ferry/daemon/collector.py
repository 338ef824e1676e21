"""Python's cyclic garbage collector, set for a long-running daemon.

A daemon builds most of what it keeps while it starts: modules, the web application, the
database engine and its compiled statements. The collector's defaults then cost it dearly: the
youngest objects are collected every 700 allocations, and each full collection walks everything
the process holds again. Moving a tree of 30,000 small objects, the server ran a thousand
collections, an eighth of its CPU. Once started, ``settle`` moves what exists to a permanent
generation that no collection walks, and lets ten thousand allocations pass between collections
of the youngest objects; full collections still come, each walking only what was made since."""

from __future__ import annotations

import gc

YOUNG_EVERY = 10_000  # allocations between collections of the youngest generation (Python: 700)


def settle() -> None:
    """Call once the process has built its long-lived objects."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_EVERY, middle, old)
