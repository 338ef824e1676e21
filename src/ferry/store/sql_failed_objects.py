"""A chunk's object that fails for good keeps its path and listed size in its FAILED outcome
(migration 0016): ``--status FAILED`` and a run's first error then name it without reading
its chunk list, which holds hundreds of objects for the one wanted. Objects that move keep
their rows as narrow as before: only failures pay, one list read per chunk that has one."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, func, select, update

from ferry.store import tables as t
from ferry.store.sql_bulk import BulkStatement, execute_many

# Where an outcome tuple of ``sql_chunks.OUTCOME_COLUMNS`` holds what this module reads.
_TRANSFER, _RUN, _OBJECT, _ATTEMPT, _STATE = range(5)

_o = t.outcomes.c
_NAME = BulkStatement(
    update(t.outcomes)
    .where(
        (_o.transfer_id == bindparam("n_transfer"))
        & (_o.run == bindparam("n_run"))
        & (_o.object == bindparam("n_object"))
        & (_o.attempt == bindparam("n_attempt"))
    )
    .values(path=bindparam("n_path"), size=bindparam("n_size")),
    ("n_transfer", "n_run", "n_object", "n_attempt", "n_path", "n_size"),
)


def name_failed_objects(conn: Connection, outcomes: Sequence[tuple[Any, ...]]) -> None:
    """Write the path and size of each FAILED outcome among ``outcomes`` (tuples in the order
    of ``sql_chunks.OUTCOME_COLUMNS``, inserted in this transaction) from its chunk list."""
    failed: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for outcome in outcomes:
        if outcome[_STATE] == "FAILED":
            failed[outcome[_TRANSFER], outcome[_RUN]].append((outcome[_OBJECT], outcome[_ATTEMPT]))
    for (transfer_id, run), objects in failed.items():
        entries = listed_entries(conn, transfer_id, run, [number for number, _ in objects])
        named = [
            (transfer_id, run, number, attempt, *entries[number]) for number, attempt in objects
        ]
        execute_many(conn, _NAME, named)


def listed_entries(
    conn: Connection, transfer_id: str, run: int, numbers: Sequence[int]
) -> dict[int, tuple[str, int]]:
    """The chunk-list entry (relative path, listed size) of each object of ``numbers``: the
    heads of the lists between the lowest and the highest, then only the lists that hold
    one of them."""
    ch = t.chunks.c
    of_run = (ch.transfer_id == transfer_id) & (ch.run == run)
    low, high = min(numbers), max(numbers)
    covering = select(func.max(ch.first)).where(of_run, ch.first <= low).scalar_subquery()
    heads = select(ch.first).where(of_run, ch.first >= covering, ch.first <= high)
    firsts = list(conn.execute(heads.order_by(ch.first)).scalars())
    first_of = {n: firsts[bisect.bisect_right(firsts, n) - 1] for n in numbers}
    lists = select(ch.first, ch.objects).where(of_run, ch.first.in_(sorted(set(first_of.values()))))
    parsed = {first: orjson.loads(text) for first, text in conn.execute(lists)}
    entries: dict[int, tuple[str, int]] = {}
    for number, first in first_of.items():
        path, size = parsed[first][number - first]
        entries[number] = (path, size)
    return entries
