"""New tasks in SQL: a page of a listing inserted, numbered and counted into its run (the
expand loop's side), single tasks and the carriers of chunks of small objects alike
(docs/small-files.md, §3 "Expansion")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Select, Update, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ferry.domain.chunks import PlannedChunk
from ferry.domain.locations import Location
from ferry.domain.sites import UNKNOWN_SITE
from ferry.domain.states import TaskState, TransferStatus
from ferry.domain.transfers import ListedThrough, PlannedTask, Transfer, TransferOptions
from ferry.store import tables as t
from ferry.store.sql_base import SqlBase
from ferry.store.sql_bulk import BulkStatement, execute_many
from ferry.store.sql_tasks import RunCounter

# The columns of a new task, in the order of the tuples ``task_rows`` makes.
TASK_COLUMNS = (
    "transfer_id",
    "run",
    "scope",
    "source_site",
    "destination_site",
    "priority",
    "state",
    "source",
    "destination",
    "size",
    "attempts",
    "max_attempts",
    "cancel_requested",
    "bytes_done",
    "error_class",
    "error",
    "folder",
    "object",
    "replicas",
)
_STATE, _DESTINATION, _SIZE = (TASK_COLUMNS.index(n) for n in ("state", "destination", "size"))

_TASK_VALUES: dict[str, Any] = {name: bindparam(name) for name in TASK_COLUMNS}
TASK_INSERT = BulkStatement(insert(t.tasks).values(_TASK_VALUES), TASK_COLUMNS)
# An object already in its run is left alone (the unique index on run and destination).
NEW_TASK_INSERTS = {
    "sqlite": BulkStatement(
        sqlite_insert(t.tasks).values(_TASK_VALUES).on_conflict_do_nothing(), TASK_COLUMNS
    ),
    "postgresql": BulkStatement(
        postgresql_insert(t.tasks).values(_TASK_VALUES).on_conflict_do_nothing(), TASK_COLUMNS
    ),
}

# A carrier: a task's columns, then how many objects it carries, its chunk list and which of
# that list's objects it carries (offsets, as stored JSON; NULL: all of them).
CARRIER_COLUMNS = (*TASK_COLUMNS, "objects", "origin", "members")
CARRIER_INSERT = BulkStatement(
    insert(t.tasks).values({name: bindparam(name) for name in CARRIER_COLUMNS}), CARRIER_COLUMNS
)
# A chunk list is inserted without a conflict clause: one listed twice is an error, not a skip.
_CHUNK_COLUMNS = ("transfer_id", "run", "first", "count", "size", "objects")
_CHUNK_INSERT = BulkStatement(
    insert(t.chunks).values({name: bindparam(name) for name in _CHUNK_COLUMNS}), _CHUNK_COLUMNS
)


def task_rows(
    transfer_id: str,
    scope: str,
    options: TransferOptions,
    run: int,
    planned: Sequence[PlannedTask],
    sites: dict[str, str],
    numbers: Sequence[int] | None = None,
) -> list[tuple[Any, ...]]:
    """The rows of new tasks; their sites are those of their storages (UNKNOWN if none), their
    ``object`` the number of the same place in ``numbers`` (NULL without numbers)."""
    site_of = _Memo(lambda storage: sites.get(storage, UNKNOWN_SITE))
    text_of = _Memo(lambda storage: str(Location(storage, "")))  # what precedes the path
    head = (transfer_id, run, scope)
    tail = (0, options.retries + 1, False, 0)
    objects: Sequence[int | None] = [None] * len(planned) if numbers is None else numbers
    return [
        (
            *head,
            site_of[p.source.storage],
            site_of[p.destination.storage],
            options.priority,
            p.state.value,
            text_of[p.source.storage] + p.source.path,
            text_of[p.destination.storage] + p.destination.path,
            p.size,
            *tail,
            p.error_class,
            p.error,
            p.folder,
            number,
            replicas_text(p.replicas) if p.replicas else None,
        )
        for p, number in zip(planned, objects, strict=True)
    ]


def _paused(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of new tasks of a paused transfer: those to be QUEUED are PAUSED."""
    queued, paused = TaskState.QUEUED.value, TaskState.PAUSED.value
    return [
        (*row[:_STATE], paused, *row[_STATE + 1 :]) if row[_STATE] == queued else row
        for row in rows
    ]


def replicas_text(replicas: Sequence[Location]) -> str:
    """A task's replicas as its row keeps them: a JSON list of locations, in order."""
    return orjson.dumps([str(place) for place in replicas]).decode()


def _carrier_rows(
    transfer: Transfer,
    run: int,
    chunks: Sequence[PlannedChunk],
    firsts: Sequence[int],
    sites: dict[str, str],
) -> list[tuple[Any, ...]]:
    """The carrier rows of new chunks, ``firsts`` their numbers: each carries its whole list."""
    options = transfer.spec.options
    rows = task_rows(
        transfer.id,
        transfer.scope,
        options,
        run,
        [PlannedTask(c.source, c.destination, c.size) for c in chunks],
        sites,
        firsts,
    )
    return [
        (*row, chunk.count, first, None)
        for row, chunk, first in zip(rows, chunks, firsts, strict=True)
    ]


def _chunk_rows(
    transfer_id: str, run: int, chunks: Sequence[PlannedChunk], firsts: Sequence[int]
) -> list[tuple[Any, ...]]:
    """The ``chunks`` rows of new chunks: each list as JSON, made once, here."""
    return [
        (transfer_id, run, first, c.count, c.size, orjson.dumps(c.objects).decode())
        for c, first in zip(chunks, firsts, strict=True)
    ]


def _first_of_each(rows: list[tuple[Any, ...]], destinations: set[str]) -> list[tuple[Any, ...]]:
    """The first row of each of ``destinations``: the one an insert that skips repeats kept."""
    first = []
    for row in rows:
        if row[_DESTINATION] in destinations:
            destinations.discard(row[_DESTINATION])
            first.append(row)
    return first


class _Memo(dict[str, str]):
    """A value per storage name, computed once per batch."""

    def __init__(self, compute: Callable[[str], str]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: str) -> str:
        self[key] = value = self.compute(key)
        return value


class _Page:
    """A page's single tasks and chunks apart, and the number of each in listing order from
    ``base`` (None: the run is not numbered)."""

    def __init__(self, planned: Sequence[PlannedTask | PlannedChunk], base: int | None) -> None:
        self.tasks: list[PlannedTask] = []
        self.chunks: list[PlannedChunk] = []
        self.task_numbers: list[int] = []
        self.chunk_numbers: list[int] = []
        number = base or 0
        for item in planned:
            if isinstance(item, PlannedChunk):
                self.chunks.append(item)
                self.chunk_numbers.append(number)
                number += item.count
            else:
                self.tasks.append(item)
                self.task_numbers.append(number)
                number += 1
        self.objects = number - (base or 0)
        if base is None and self.chunks:
            raise ValueError("a run made before objects were numbered cannot take chunks")


class InsertMixin(SqlBase):
    async def add_tasks(
        self,
        transfer: Transfer,
        run: int,
        planned: Sequence[PlannedTask | PlannedChunk],
        *,
        expanded: bool = False,
        listed: ListedThrough | None = None,
        filtered: int = 0,
    ) -> bool:
        return await self._write(
            self._add_tasks, transfer, run, planned, expanded, listed, filtered, self.clock()
        )

    def _add_tasks(
        self,
        conn: Connection,
        transfer: Transfer,
        run: int,
        planned: Sequence[PlannedTask | PlannedChunk],
        expanded: bool,
        listed: ListedThrough | None,
        filtered: int,
        now: datetime,
    ) -> bool:
        if expanded:
            conn.execute(expanded_run(transfer.id, run, None))
        c = t.transfers.c
        # Share-locked: a pause waits for these tasks, or they see it (``sql_pauses``).
        wanted = conn.execute(
            select(c.status, c.cancel_requested, c.paused_at)
            .where(c.id == transfer.id)
            .with_for_update(read=True)
        ).one()
        if wanted.status == TransferStatus.CANCELED.value or wanted.cancel_requested:
            return False  # canceled while it was being listed: nothing more to queue
        if conn.execute(_past_deadline(transfer.id, run)).scalar():
            return False  # ended at its deadline while it was being listed
        if listed is not None:  # committed with the page's tasks: a restart lists on after it
            conn.execute(_listed(transfer.id, run, listed, filtered))
        if not planned:
            return True
        base = self._next_object(conn, transfer.id, run)
        page = _Page(planned, base)
        sites = self._sites_of(conn, transfer.spec.storages())
        options = transfer.spec.options
        numbers = page.task_numbers if base is not None else None
        rows = task_rows(transfer.id, transfer.scope, options, run, page.tasks, sites, numbers)
        paused = wanted.paused_at is not None
        rows = _paused(rows) if paused else rows
        inserted = self._insert_new_tasks(conn, rows) if rows else []
        counter = RunCounter()
        for state, count in Counter(row[_STATE] for row in inserted).items():
            counter.add(transfer.id, run, TaskState(state), count=count)
        size = sum(row[_SIZE] or 0 for row in inserted)
        objects = len(inserted)
        if page.chunks:
            carriers = _carrier_rows(transfer, run, page.chunks, page.chunk_numbers, sites)
            carriers = _paused(carriers) if paused else carriers
            execute_many(conn, CARRIER_INSERT, carriers)
            chunks = _chunk_rows(transfer.id, run, page.chunks, page.chunk_numbers)
            execute_many(conn, _CHUNK_INSERT, chunks)
            self._add_queues(conn, carriers)
            objects += sum(chunk.count for chunk in page.chunks)
            size += sum(chunk.size for chunk in page.chunks)
        counter.grow(transfer.id, run, "total", objects)
        counter.grow(transfer.id, run, "size_total", size)
        if base is not None:  # every number of the page is taken, skipped repeats included
            counter.grow(transfer.id, run, "next_object", page.objects)
        counter.apply(conn, now)
        return True

    def _next_object(self, conn: Connection, transfer_id: str, run: int) -> int | None:
        """The run's next object number, its row locked until the page is in (None: a run
        made before objects were numbered)."""
        r = t.runs.c
        number: int | None = conn.execute(
            select(r.next_object)
            .where((r.transfer_id == transfer_id) & (r.number == run))
            .with_for_update()
        ).scalar_one()
        return number

    def _insert_new_tasks(
        self, conn: Connection, rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Insert the rows whose object is not in the run yet (a listing resumed after a crash
        repeats some) and return them; all of one run. The insert skips those itself: only when
        it skipped some are the new ones read back."""
        c = t.tasks.c
        last_id = conn.execute(select(func.max(c.id))).scalar() or 0
        inserted = execute_many(conn, NEW_TASK_INSERTS[conn.dialect.name], rows)
        fresh = rows
        if inserted is not None and inserted.rowcount != len(rows):
            transfer_id, run = rows[0][0], rows[0][1]
            added = conn.execute(
                select(c.destination).where(
                    (c.transfer_id == transfer_id) & (c.run == run) & (c.id > last_id)
                )
            )
            fresh = _first_of_each(rows, set(added.scalars()))
        self._add_queues(conn, fresh)
        return fresh

    def _add_queues(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Make known the queues of these new tasks (scope, source site, destination site)."""
        queues = {row[2:5] for row in rows}
        self._insert_missing(
            conn,
            t.queues,
            [{"scope": q[0], "source_site": q[1], "destination_site": q[2]} for q in queues],
        )

    def _sites_of(self, conn: Connection, storages: set[str]) -> dict[str, str]:
        rows = conn.execute(
            select(t.storages.c.name, t.storages.c.site).where(t.storages.c.name.in_(storages))
        )
        return {r.name: r.site for r in rows.all()}


def _listed(transfer_id: str, run: int, listed: ListedThrough, filtered: int) -> Update:
    """The statement that records how far the run's listing has come, and what of it the
    filters left out."""
    values: dict[str, Any] = {"listed_source": listed.source, "listed_through": listed.cursor}
    if filtered:
        values["filtered"] = t.runs.c.filtered + filtered
    return (
        update(t.runs)
        .where((t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run))
        .values(**values)
    )


def expanded_run(transfer_id: str, run: int, error: str | None) -> Update:
    """The statement that marks a run expanded: every task of it exists. Without ``error``
    the run keeps the one it has (its deadline's)."""
    values: dict[str, Any] = {"expanded": True}
    if error is not None:
        values["error"] = error
    return (
        update(t.runs)
        .where((t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run))
        .values(**values)
    )


def _past_deadline(transfer_id: str, run: int) -> Select[Any]:
    r = t.runs.c
    return select(r.past_deadline).where((r.transfer_id == transfer_id) & (r.number == run))
