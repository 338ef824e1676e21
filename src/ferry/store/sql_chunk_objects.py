"""The objects of chunks as a page of outcomes shows them: each from its chunk list (or its
FAILED outcome, which names it), its carriers and its outcome rows (docs/small-files.md §3,
"GET /outcomes").

A page's cost is mostly Python's, one object at a time, so each carrier's roots and state are
made once for all the objects it holds, an outcome row is read as a plain tuple of the columns
shown, and a chunk list is parsed only when one of its objects is not named by its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, bindparam, func, select, text

from ferry.domain.locations import Location, split_location
from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import Attempt, RunObject
from ferry.store.sql_outcome_rows import PATH, RunKey, Shown, outcome_rows

# An outcome in one of these states is the object's last word; otherwise its carrier's is.
FINAL = frozenset({"DONE", "SKIPPED", "FAILED", "CANCELED"})
_STATES = {state.value: state for state in TaskState}
# How an attempt ended, from the state its outcome row gave its object: a retryable failure
# left the object WAITING, and the attempt, as a single task's in ``attempts``, FAILED.
_ENDED = {"WAITING": "FAILED"}
_FIRST_HEADS = 8  # chunk heads read first for a page; doubled while the page is not full
# Objects ``numbers`` apart on average are spread over the run: looked up one by one, since
# their range holds more origins than numbers (a chunk holds 64 objects or more).
_SPREAD = 64
_EACH_ORIGIN = (
    "SELECT {n}, (SELECT max(origin) FROM tasks WHERE transfer_id = :transfer_id"
    " AND run = :run AND origin <= {n}) FROM {numbers}"
)
_EACH = {
    "sqlite": text(_EACH_ORIGIN.format(n="value", numbers="json_each(:numbers)")),
    "postgresql": text(
        _EACH_ORIGIN.format(n="n", numbers="unnest(CAST(:numbers AS BIGINT[])) AS n")
    ),
}


class Carrier(NamedTuple):
    """A carrier as its objects show it, made once for all of them."""

    id: int
    state: TaskState
    attempts: int
    agent: str | None  # while ACTIVE
    error_class: str | None  # its own, shown by its objects when it was CANCELED
    error: str | None
    members: list[int] | None
    source: Location
    destination: Location


@dataclass(slots=True)
class Chunk:
    """A chunk list of the page: its first number, then its carriers (by id) and, when
    needed, its entries ``[relative path, size]``."""

    first: int
    carriers: list[Carrier] = field(default_factory=list)
    entries: list[list[Any]] | None = None
    _holders: dict[int, Carrier] | None = None
    _whole: Carrier | None = None  # the latest carrier of all its list, if any

    def carrier_of(self, offset: int) -> Carrier:
        """The latest carrier holding ``offset`` (the latest of all, should none list it)."""
        if len(self.carriers) == 1:
            return self.carriers[0]
        if self._holders is None:
            self._holders = {}
            for carrier in self.carriers:  # by id: a later one holds an offset over an earlier
                if carrier.members is None:
                    self._holders.clear()
                    self._whole = carrier
                else:
                    self._holders.update(dict.fromkeys(carrier.members, carrier))
        return self._holders.get(offset) or self._whole or self.carriers[-1]


def covering_first(conn: Connection, key: RunKey, number: int) -> int | None:
    """The ``first`` of the chunk list that would hold ``number``: the greatest not above it."""
    ch = t.chunks.c
    return conn.execute(
        select(func.max(ch.first)).where(key.of(t.chunks), ch.first <= number)
    ).scalar()


def heads(
    conn: Connection, key: RunKey, after: int, bound: int | None, limit: int
) -> list[tuple[Chunk, range]]:
    """The chunk lists holding objects above ``after`` (up to ``bound``), in order, as many as
    hold ``limit`` of them or all there are, each with the range of numbers it holds: read a
    few heads at a time, since a list holds hundreds of objects. A head's columns come before
    the list itself, so the list is not read."""
    ch = t.chunks.c
    start = covering_first(conn, key, after)
    found: list[tuple[Chunk, range]] = []
    batch, lowest = _FIRST_HEADS, (start if start is not None else after + 1)
    while True:
        query = select(ch.first, ch.count).where(key.of(t.chunks), ch.first >= lowest)
        if bound is not None:
            query = query.where(ch.first <= bound)
        rows = conn.execute(query.order_by(ch.first).limit(batch)).all()
        found += [
            (Chunk(first), range(max(first, after + 1), first + count))
            for first, count in rows
            if first + count > after + 1
        ]
        if len(rows) < batch or sum(len(held) for _, held in found) >= limit:
            return found
        lowest, batch = rows[-1][0] + 1, batch * 2


def chunks_holding(
    conn: Connection, key: RunKey, numbers: Sequence[int]
) -> list[tuple[int, Chunk]]:
    """Each of ``numbers`` (ascending, each the number of an object of a chunk) with the
    chunk list that holds it: the greatest origin of a carrier not above it, from the index
    of carriers by ``(transfer_id, run, origin)`` alone (a list's head is in a row as long as
    the list, which a range of hundreds would read). Numbers close together (a page) read the
    origins of their range; numbers spread over the run (a filter's page) look each one up."""
    if not numbers:
        return []
    if numbers[-1] - numbers[0] > _SPREAD * len(numbers):
        origin_of = _origins_each(conn, key, numbers)
    else:
        origin_of = _origins_along(conn, key, numbers)
    places: list[tuple[int, Chunk]] = []
    chunk: Chunk | None = None
    for number in numbers:
        origin = origin_of.get(number)
        if origin is None:
            continue
        if chunk is None or chunk.first != origin:
            chunk = Chunk(origin)
        places.append((number, chunk))
    return places


def _origins_along(conn: Connection, key: RunKey, numbers: Sequence[int]) -> dict[int, int]:
    """The origin holding each of ``numbers``, from every origin of their range."""
    c = t.tasks.c
    low = select(func.max(c.origin)).where(key.of(t.tasks), c.origin <= numbers[0])
    lowest = conn.execute(low).scalar()
    if lowest is None:
        return {}
    query = (
        select(c.origin)
        .where(key.of(t.tasks), c.origin >= lowest, c.origin <= numbers[-1])
        .distinct()
        .order_by(c.origin)
    )
    origins = list(conn.execute(query).scalars())
    found, at = {}, 0
    for number in numbers:
        while at + 1 < len(origins) and origins[at + 1] <= number:
            at += 1
        found[number] = origins[at]
    return found


def _origins_each(conn: Connection, key: RunKey, numbers: Sequence[int]) -> dict[int, int]:
    """The origin holding each of ``numbers``, one seek of the carriers' index each, in one
    statement (the numbers bound as one list)."""
    listed = _EACH[conn.dialect.name]
    wanted = orjson.dumps(list(numbers)).decode() if conn.dialect.name == "sqlite" else numbers
    rows = conn.execute(listed, {"transfer_id": key.transfer_id, "run": key.run, "numbers": wanted})
    return {number: origin for number, origin in rows if origin is not None}


def fill_carriers(conn: Connection, key: RunKey, chunks: Sequence[Chunk]) -> None:
    """Read the carriers of ``chunks`` not read yet, in id order; each carrier's roots are
    split once."""
    by_first = {chunk.first: chunk for chunk in chunks if not chunk.carriers}
    if not by_first:
        return
    c = t.tasks.c
    carriers = select(
        c.id, c.origin, c.state, c.attempts, c.lease_agent, c.error_class, c.error,
        c.members, c.source, c.destination,
    ).where(key.of(t.tasks), c.origin.in_(bindparam("firsts", expanding=True)))  # fmt: skip
    # Sorted here: ordered by id, SQLite's planner walks every task of the run by that index.
    rows = sorted(conn.execute(carriers, {"firsts": list(by_first)}))
    roots: dict[str, Location] = {}
    for row in rows:
        ident, origin, state, attempts, agent, error_class, error, members, source, target = row
        state = _STATES[state]
        by_first[origin].carriers.append(
            Carrier(
                ident, state, attempts, agent if state is TaskState.ACTIVE else None,
                error_class, error, members,
                roots.get(source) or roots.setdefault(source, split_location(source)),
                roots.get(target) or roots.setdefault(target, split_location(target)),
            )
        )  # fmt: skip


def fill_entries(conn: Connection, key: RunKey, chunks: Sequence[Chunk]) -> None:
    """Read and parse the lists of ``chunks``."""
    if not chunks:
        return
    by_first = {chunk.first: chunk for chunk in chunks}
    ch = t.chunks.c
    lists = select(ch.first, ch.objects).where(key.of(t.chunks), ch.first.in_(list(by_first)))
    for first, listed in conn.execute(lists):
        by_first[first].entries = orjson.loads(listed)


def chunk_objects(
    conn: Connection,
    key: RunKey,
    places: Sequence[tuple[int, Chunk]],
    found: dict[int, Shown] | None = None,
) -> list[RunObject]:
    """The objects at ``places`` (number ascending, and the chunk holding it), each from its
    outcome rows and its latest carrier; a chunk's list is read only for objects that no
    outcome names. ``found``: an outcome of each object read already (``outcomes_in``)."""
    chunks = list({id(chunk): chunk for _, chunk in places}.values())
    fill_carriers(conn, key, chunks)
    numbers = [number for number, _ in places]
    if found is None:
        outcomes = outcome_rows(conn, key, numbers)
    else:  # an outcome at a first attempt is all there is; later ones have earlier attempts
        outcomes = outcome_rows(conn, key, [n for n in numbers if found[n][1] > 1])
        for number in numbers:
            outcomes.setdefault(number, (found[number],))
    unnamed = {
        id(chunk): chunk
        for number, chunk in places
        if chunk.entries is None and not _named(outcomes.get(number))
    }
    fill_entries(conn, key, list(unnamed.values()))
    return [_chunked(chunk, number, outcomes.get(number)) for number, chunk in places]


def _named(rows: tuple[Shown, ...] | None) -> bool:
    return rows is not None and rows[-1][PATH] is not None


def _chunked(chunk: Chunk, number: int, rows: tuple[Shown, ...] | None) -> RunObject:
    """Object ``number`` of ``chunk``: its latest outcome when final, else its carrier's
    state."""
    offset = number - chunk.first
    carrier = chunk.carrier_of(offset)
    if rows is not None and rows[-1][PATH] is not None:
        relative, size = rows[-1][PATH], rows[-1][PATH + 1]
    else:
        assert chunk.entries is not None
        relative, size = chunk.entries[offset]
    source, destination = carrier.source.child(relative), carrier.destination.child(relative)
    if rows is None:
        canceled = carrier.state is TaskState.CANCELED
        error_class, error = (carrier.error_class, carrier.error) if canceled else (None, None)
        return RunObject(
            number, carrier.id, carrier.state, source, destination, size, 0, None,
            carrier.attempts, error_class, error, carrier.agent, [],
        )  # fmt: skip
    # A row of SHOWN: object, attempt, state, bytes, checksum, error_class, error, agent,
    # started_at, finished_at, path, size.
    history = [
        Attempt(r[1], r[7], r[8], r[9], r[3], r[5], r[6], _ENDED.get(r[2], r[2])) for r in rows
    ]
    last = rows[-1]
    if last[2] in FINAL:
        return RunObject(
            number, carrier.id, _STATES[last[2]], source, destination, size, last[3],
            last[4], last[1], last[5], last[6], None, history,
        )  # fmt: skip
    return RunObject(
        number, carrier.id, carrier.state, source, destination, size, 0, None,
        carrier.attempts, last[5], last[6], carrier.agent, history,
    )  # fmt: skip
