"""What each link has moved, for the link optimizer: sums per agent and link, added to in the
transaction that records a report, and read by the optimizer at each window; and the
optimizer's decisions, kept in the channel's row."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Executable, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ferry.domain.dispatch import Pair
from ferry.domain.optimizer import Decision, OpenWindow, Search
from ferry.store import tables as t
from ferry.store.abc import ChunkTally, LinkTally
from ferry.store.sql_base import SqlBase
from ferry.store.sql_dispatch import optimizer_json

_KEY = ("agent_id", "source_site", "destination_site")


def _adding(dialect: str, row: dict[str, Any]) -> Executable:
    """An insert of ``row`` that adds to the sums of the row already there."""
    if dialect == "postgresql":
        pg = postgresql_insert(t.link_tallies).values(row)
        return pg.on_conflict_do_update(index_elements=_KEY, set_=_sums(pg.excluded))
    lite = sqlite_insert(t.link_tallies).values(row)
    return lite.on_conflict_do_update(index_elements=_KEY, set_=_sums(lite.excluded))


def _sums(excluded: Any) -> dict[str, Any]:
    c = t.link_tallies.c
    return {
        "succeeded": c.succeeded + excluded.succeeded,
        "failed": c.failed + excluded.failed,
        "bytes": c.bytes + excluded.bytes,
    }


class LinkCounts:
    """A report's objects by link: succeeded, failed attempts, bytes moved."""

    def __init__(self) -> None:
        self.by_pair: dict[Pair, list[int]] = {}

    def add(self, pair: Pair, succeeded: int = 0, failed: int = 0, moved: int = 0) -> None:
        counts = self.by_pair.setdefault(pair, [0, 0, 0])
        counts[0] += succeeded
        counts[1] += failed
        counts[2] += moved

    def add_chunks(self, tallies: Iterable[ChunkTally]) -> LinkCounts:
        for tally in tallies:
            pair = (tally.change.source_site, tally.change.destination_site)
            self.add(pair, tally.done, tally.failed + tally.retried, tally.bytes)
        return self

    def write(self, conn: Connection, agent_id: str) -> None:
        """Add the counts to the agent's sums, one statement per link (a report has one
        link, mostly)."""
        for (source, destination), (succeeded, failed, moved) in self.by_pair.items():
            if not (succeeded or failed):
                continue
            row = {
                "agent_id": agent_id,
                "source_site": source,
                "destination_site": destination,
                "succeeded": succeeded,
                "failed": failed,
                "bytes": moved,
            }
            conn.execute(_adding(conn.dialect.name, row))


class LinksMixin(SqlBase):
    async def link_tallies(self) -> dict[Pair, LinkTally]:
        return dict(await self._reading(_link_tallies))

    async def record_channel_decision(
        self,
        pair: Pair,
        search: Search,
        decision: Decision | None,
        window: OpenWindow | None = None,
    ) -> bool:
        state = optimizer_json(search, decision, window)
        c = t.channels.c
        async with self._tx() as conn:
            changed = await conn.execute(
                update(t.channels)
                .where((c.source_site == pair[0]) & (c.destination_site == pair[1]) & c.optimize)
                .values(optimizer=state)
            )
        return bool(changed.rowcount)


def _link_tallies(conn: Connection) -> Mapping[Pair, LinkTally]:
    c = t.link_tallies.c
    rows = conn.execute(
        select(c.source_site, c.destination_site, func.sum(c.succeeded), func.sum(c.failed),
               func.sum(c.bytes))
        .group_by(c.source_site, c.destination_site)
    ).all()  # fmt: skip
    return {(row[0], row[1]): LinkTally(int(row[2]), int(row[3]), int(row[4])) for row in rows}
