"""A run's objects as its outcomes show them (``Store.outcomes``): single tasks as they are,
and the objects of chunks from their lists, carriers and outcome rows (docs/small-files.md
§3, "GET /outcomes").

A run made before objects were numbered (``runs.next_object`` NULL) has single tasks only,
numbered by their ids. In a numbered run a page of ``limit`` objects after a cursor reads the
single tasks by ``(transfer_id, run, object)``, the heads of the chunk lists that cover the
page (their key; a head's columns come before the list itself, so the list is not read), then
only those lists, their carriers by ``(transfer_id, run, origin)`` and the page's outcomes by
their key: its cost follows the page, not the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, Connection, Row, Table, func, select

from ferry.domain.locations import split_location
from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import Attempt, RunObject
from ferry.store.sql_base import SqlBase, all_rows
from ferry.store.sql_tasks import IN_ITS_ROW
from ferry.wire import INT64_MAX

# An outcome in one of these states is the object's last word; otherwise its carrier's is.
FINAL = frozenset({"DONE", "SKIPPED", "FAILED", "CANCELED"})
_IN_ITS_ROW = frozenset(state.value for state in IN_ITS_ROW)
_FIRST_HEADS = 8  # chunk heads read first for a page; doubled while the page is not full


class OutcomesMixin(SqlBase):
    async def outcomes(
        self,
        transfer_id: str,
        run: int,
        *,
        after: int,
        limit: int,
        state: TaskState | None = None,
    ) -> list[RunObject]:
        return await self._reading(read_outcomes, RunKey(transfer_id, run), after, limit, state)


@dataclass(frozen=True, slots=True)
class RunKey:
    transfer_id: str
    run: int

    def of(self, table: Table) -> ColumnElement[bool]:
        """The rows of ``table`` (tasks, chunks, outcomes) that belong to this run."""
        return (table.c.transfer_id == self.transfer_id) & (table.c.run == self.run)


def read_outcomes(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState | None
) -> list[RunObject]:
    """``Store.outcomes`` on one connection (a reader's)."""
    if after >= INT64_MAX:  # nothing is numbered above it, and after + 1 fits no column
        return []
    numbered = conn.execute(
        select(t.runs.c.next_object).where(
            (t.runs.c.transfer_id == key.transfer_id) & (t.runs.c.number == key.run)
        )
    ).scalar()
    if numbered is None:
        return _unnumbered(conn, key, after, limit, state)
    if state is None:
        return _page(conn, key, after, limit)
    if state is TaskState.FAILED:
        return _failed(conn, key, after, limit)
    return _in_state(conn, key, after, limit, state)


# --- single tasks ---------------------------------------------------------------------------


def _unnumbered(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState | None
) -> list[RunObject]:
    """A run made before numbering: its tasks by id, as they always were read."""
    c = t.tasks.c
    page = select(t.tasks).where(key.of(t.tasks) & (c.id > after))
    if state is not None:
        page = page.where(c.state == state.value)
    rows = all_rows(conn, page.order_by(c.id).limit(limit))
    return _singles(conn, rows, numbered=False)


def _single_tasks(
    conn: Connection, key: RunKey, after: int, limit: int, *extra: ColumnElement[bool]
) -> list[Row[Any]]:
    """Up to ``limit`` single tasks of a numbered run after object ``after``, by number."""
    c = t.tasks.c
    page = select(t.tasks).where(key.of(t.tasks), c.object > after, c.origin.is_(None), *extra)
    return all_rows(conn, page.order_by(c.object).limit(limit))


def _singles(conn: Connection, rows: Sequence[Row[Any]], *, numbered: bool) -> list[RunObject]:
    """Single tasks with their attempts: the failed ones' rows of ``attempts``, and the one
    that moved the object from the task's own row (``IN_ITS_ROW``)."""
    ids = [r.id for r in rows]
    history: dict[int, list[Attempt]] = {i: [] for i in ids}
    if ids:
        a = t.attempts.c
        tried = select(t.attempts).where(a.task_id.in_(ids)).order_by(a.id)
        for row in all_rows(conn, tried):
            history[row.task_id].append(
                Attempt(
                    row.number,
                    row.agent,
                    row.started_at,
                    row.finished_at,
                    row.bytes,
                    row.error_class,
                    row.error,
                    row.state,
                )
            )
    return [_single(r, history[r.id], numbered) for r in rows]


def _single(row: Row[Any], tried: list[Attempt], numbered: bool) -> RunObject:
    # A task SKIPPED when its tree was listed (a link not followed) made no attempt.
    made = row.attempts > 0 and row.state in _IN_ITS_ROW
    if made and not any(a.number == row.attempts for a in tried):
        tried.append(_last_attempt(row))
    return RunObject(
        number=row.object if numbered else row.id,
        task_id=row.id,
        state=TaskState(row.state),
        source=split_location(row.source),
        destination=split_location(row.destination),
        size=row.size,
        bytes_done=row.bytes_done,
        checksum=row.checksum,
        attempts=row.attempts,
        error_class=row.error_class,
        error=row.error,
        agent=row.lease_agent if row.state == TaskState.ACTIVE.value else None,
        history=tried,
    )


def _last_attempt(row: Row[Any]) -> Attempt:
    """The attempt that moved a task's object, kept in the task's own row (``IN_ITS_ROW``).
    A task finished before that was so has a row of ``attempts`` for it instead."""
    return Attempt(
        row.attempts,
        row.lease_agent,
        row.leased_at,
        row.finished_at,
        row.bytes_done,
        row.error_class,
        row.error,
        row.state,
    )


# --- objects of chunks ----------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    """A chunk list of the page: its head, then its objects and carriers (by id)."""

    first: int
    count: int
    objects: list[list[Any]] = field(default_factory=list)
    carriers: list[Any] = field(default_factory=list)  # rows of some columns of tasks
    members: list[frozenset[int] | None] = field(default_factory=list)

    def carrier_of(self, offset: int) -> Any:
        """The latest carrier holding ``offset`` (the latest of all, should none list it)."""
        for row, members in zip(reversed(self.carriers), reversed(self.members), strict=True):
            if members is None or offset in members:
                return row
        return self.carriers[-1]


def _heads(
    conn: Connection, key: RunKey, after: int, bound: int | None, limit: int
) -> list[_Chunk]:
    """The heads of the chunk lists holding objects above ``after`` (up to ``bound``), in
    order, as many as hold ``limit`` of them or all there are: read a few at a time, since
    a list holds hundreds of objects."""
    ch = t.chunks.c
    covering = select(func.max(ch.first)).where(key.of(t.chunks), ch.first <= after)
    start = conn.execute(covering).scalar()
    heads: list[_Chunk] = []
    batch, lowest = _FIRST_HEADS, (start if start is not None else after + 1)
    while True:
        query = select(ch.first, ch.count).where(key.of(t.chunks), ch.first >= lowest)
        if bound is not None:
            query = query.where(ch.first <= bound)
        rows = conn.execute(query.order_by(ch.first).limit(batch)).all()
        heads += [_Chunk(first, count) for first, count in rows if first + count > after + 1]
        held = sum(h.first + h.count - max(h.first, after + 1) for h in heads)
        if len(rows) < batch or held >= limit:
            return heads
        lowest, batch = rows[-1][0] + 1, batch * 2


def _fill(conn: Connection, key: RunKey, chunks: Sequence[_Chunk]) -> None:
    """Read the lists and the carriers of ``chunks``."""
    if not chunks:
        return
    by_first = {chunk.first: chunk for chunk in chunks}
    ch, c = t.chunks.c, t.tasks.c
    lists = select(ch.first, ch.objects).where(key.of(t.chunks), ch.first.in_(list(by_first)))
    for first, text in conn.execute(lists):
        by_first[first].objects = orjson.loads(text)
    carriers = select(
        c.id, c.origin, c.state, c.attempts, c.lease_agent, c.error_class, c.error,
        c.members, c.source, c.destination,
    ).where(key.of(t.tasks), c.origin.in_(list(by_first)))  # fmt: skip
    for row in conn.execute(carriers.order_by(c.id)):
        chunk = by_first[row.origin]
        chunk.carriers.append(row)
        chunk.members.append(None if row.members is None else frozenset(row.members))


def _outcome_rows(
    conn: Connection, key: RunKey, numbers: Sequence[int], *, spread: bool
) -> dict[int, list[Row[Any]]]:
    """The outcome rows of ``numbers``, by object then attempt: one range of the key, or,
    when the numbers are ``spread`` far apart (a filter's page), those objects only."""
    if not numbers:
        return {}
    o = t.outcomes.c
    wanted = o.object.in_(list(numbers)) if spread else o.object.between(numbers[0], numbers[-1])
    found: dict[int, list[Row[Any]]] = {}
    query = select(t.outcomes).where(key.of(t.outcomes), wanted).order_by(o.object, o.attempt)
    for row in conn.execute(query):
        found.setdefault(row.object, []).append(row)
    return found


def _chunked(chunk: _Chunk, number: int, outcomes: list[Row[Any]]) -> RunObject:
    """Object ``number`` of ``chunk``: its latest outcome when final, else its carrier's
    state."""
    offset = number - chunk.first
    relative, size = chunk.objects[offset]
    carrier = chunk.carrier_of(offset)
    history = [_attempt_of(row) for row in outcomes]
    last = outcomes[-1] if outcomes else None
    source = split_location(carrier.source).child(relative)
    destination = split_location(carrier.destination).child(relative)
    if last is not None and last.state in FINAL:
        return RunObject(
            number, carrier.id, TaskState(last.state), source, destination, size, last.bytes,
            last.checksum, last.attempt, last.error_class, last.error, None, history,
        )  # fmt: skip
    state = TaskState(carrier.state)
    if last is not None:
        error_class, error = last.error_class, last.error
    elif state is TaskState.CANCELED:
        error_class, error = carrier.error_class, carrier.error
    else:
        error_class = error = None
    agent = carrier.lease_agent if state is TaskState.ACTIVE else None
    return RunObject(
        number, carrier.id, state, source, destination, size, 0, None, carrier.attempts,
        error_class, error, agent, history,
    )  # fmt: skip


def _attempt_of(row: Row[Any]) -> Attempt:
    return Attempt(
        row.attempt,
        row.agent,
        row.started_at,
        row.finished_at,
        row.bytes,
        row.error_class,
        row.error,
        row.state,
    )


def first_failed_outcome(conn: Connection, transfer_id: str, run: int) -> Failure | None:
    """The lowest-numbered FAILED object of the run's chunks (``ix_outcomes_failed``), its
    source read from its chunk list; None when no object of a chunk failed."""
    key, o = RunKey(transfer_id, run), t.outcomes.c
    failed = select(o.object, o.error).where(key.of(t.outcomes), t.outcome_state_is("FAILED"))
    row = conn.execute(failed.order_by(o.object).limit(1)).first()
    if row is None:
        return None
    ch = t.chunks.c
    head = select(ch.first, ch.count).where(key.of(t.chunks), ch.first <= row.object)
    first, count = conn.execute(head.order_by(ch.first.desc()).limit(1)).one()
    chunk = _Chunk(first, count)
    _fill(conn, key, [chunk])
    relative, _size = chunk.objects[row.object - first]
    source = split_location(chunk.carrier_of(row.object - first).source).child(relative)
    return Failure(row.object, str(source), row.error)


class Failure(NamedTuple):
    """A FAILED object: its number, its source (as text) and its error."""

    number: int
    source: str
    error: str | None


# --- pages ----------------------------------------------------------------------------------


def _page(conn: Connection, key: RunKey, after: int, limit: int) -> list[RunObject]:
    """The next ``limit`` objects after ``after``: single tasks and objects of chunks merged
    by number."""
    singles = _single_tasks(conn, key, after, limit)
    bound = singles[-1].object if len(singles) == limit else None
    heads = _heads(conn, key, after, bound, limit)
    places: list[tuple[int, Row[Any] | _Chunk]] = [(r.object, r) for r in singles]
    for chunk in heads:
        low = max(chunk.first, after + 1)
        places += [(n, chunk) for n in range(low, chunk.first + chunk.count)]
    places.sort(key=lambda place: place[0])
    return _objects(conn, key, places[:limit], spread=False)


def _failed(conn: Connection, key: RunKey, after: int, limit: int) -> list[RunObject]:
    """FAILED objects after ``after``: the FAILED outcomes (``ix_outcomes_failed``) and the
    FAILED single tasks, merged by number."""
    o = t.outcomes.c
    singles = _single_tasks(conn, key, after, limit, t.task_state_is(TaskState.FAILED.value))
    failed = select(o.object).where(
        key.of(t.outcomes), t.outcome_state_is("FAILED"), o.object > after
    )
    numbers = list(conn.execute(failed.order_by(o.object).limit(limit)).scalars())
    places: list[tuple[int, Row[Any] | _Chunk]] = [(r.object, r) for r in singles]
    if numbers:
        ch = t.chunks.c
        covering = select(func.max(ch.first)).where(key.of(t.chunks), ch.first <= numbers[0])
        heads = select(ch.first, ch.count).where(
            key.of(t.chunks), ch.first >= covering.scalar_subquery(), ch.first <= numbers[-1]
        )
        chunks = [_Chunk(first, count) for first, count in conn.execute(heads.order_by(ch.first))]
        firsts, at = [chunk.first for chunk in chunks], 0
        for number in numbers:
            while at + 1 < len(firsts) and firsts[at + 1] <= number:
                at += 1
            places.append((number, chunks[at]))
    places.sort(key=lambda place: place[0])
    return _objects(conn, key, places[:limit], spread=True)


def _in_state(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState
) -> list[RunObject]:
    """Objects in ``state`` after ``after``, other than FAILED: the pages in number order,
    kept to those in it. No index holds an object's current state across its outcomes and
    carriers, so this reads every object up to the ``limit``-th in the state."""
    found: list[RunObject] = []
    while len(found) < limit:
        page = _page(conn, key, after, limit)
        found += [obj for obj in page if obj.state is state]
        if len(page) < limit:
            break
        after = page[-1].number
    return found[:limit]


def _objects(
    conn: Connection, key: RunKey, places: list[tuple[int, Row[Any] | _Chunk]], *, spread: bool
) -> list[RunObject]:
    """The objects at ``places`` (number, then a single task's row or the object's chunk)."""
    rows = [place for _, place in places if isinstance(place, Row)]
    singles = {obj.task_id: obj for obj in _singles(conn, rows, numbered=True)}
    chunks = {id(place): place for _, place in places if isinstance(place, _Chunk)}
    _fill(conn, key, list(chunks.values()))
    carried = [number for number, place in places if isinstance(place, _Chunk)]
    outcomes = _outcome_rows(conn, key, carried, spread=spread)
    return [
        _chunked(place, number, outcomes.get(number, []))
        if isinstance(place, _Chunk)
        else singles[place.id]
        for number, place in places
    ]
