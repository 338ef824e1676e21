"""The audit trail in SQL: records appended one after another, each carrying the hash of the
one before it (a hash chain), so that a record changed or removed afterwards shows.

A record's hash is sha256 of the previous record's hash followed by the record's canonical
JSON (its seq, time and entry, keys sorted, no spaces); the first record follows ``GENESIS``.
The chain shows an edit by anyone who does not also rewrite every hash after it: note the head
``verify_audit`` returns somewhere else to hold against that, and against a cut at the end."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from ferry.store import tables as t
from ferry.store.abc import AuditCheck, AuditEntry, AuditRecord
from ferry.store.sql_base import SqlBase, all_rows

GENESIS = "0" * 64
VERIFY_BATCH = 1000  # records read at once while walking the chain


def canonical(seq: int, at: datetime, entry: AuditEntry) -> str:
    """The text a record's hash is taken over: the same for the same record on any database."""
    fields = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "actor": entry.actor,
        "role": entry.role,
        "address": entry.address,
        "action": entry.action,
        "params": entry.params,
        "status": entry.status,
        "target": entry.target,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, seq: int, at: datetime, entry: AuditEntry) -> str:
    return hashlib.sha256((prev_hash + canonical(seq, at, entry)).encode()).hexdigest()


def flaw(record: AuditRecord, seq: int, prev_hash: str) -> str | None:
    """Why ``record``, expected at ``seq`` after a record hashed ``prev_hash``, breaks the
    chain; None when it holds."""
    if record.seq != seq:
        return f"record {seq} is missing: removed (the next one is {record.seq})"
    if record.hash != chain_hash(record.prev_hash, record.seq, record.at, record.entry):
        return f"record {seq} was changed: its hash does not match its contents"
    if record.prev_hash != prev_hash:
        return f"record {seq} does not follow record {seq - 1}: one was changed or removed"
    return None


def _record(row: Any) -> AuditRecord:
    entry = AuditEntry(
        actor=row.actor,
        role=row.role,
        address=row.address,
        action=row.action,
        params=dict(row.params),
        status=row.status,
        target=row.target,
    )
    return AuditRecord(row.seq, row.at, entry, row.prev_hash, row.hash)


def _batches(conn: Connection) -> Iterator[list[AuditRecord]]:
    after = 0
    while True:
        query = select(t.audit).where(t.audit.c.seq > after).order_by(t.audit.c.seq)
        rows = conn.execute(query.limit(VERIFY_BATCH)).all()
        if not rows:
            return
        yield [_record(row) for row in rows]
        after = rows[-1].seq


def _walk(conn: Connection) -> AuditCheck:
    seq, head = 1, GENESIS
    for batch in _batches(conn):
        for record in batch:
            why = flaw(record, seq, head)
            if why is not None:
                return AuditCheck(records=seq - 1, head=head, first_bad=seq, why=why)
            seq, head = seq + 1, record.hash
    return AuditCheck(records=seq - 1, head=head)


class AuditMixin(SqlBase):
    async def append_audit(self, entry: AuditEntry) -> AuditRecord:
        return await self._write(self._append_audit, entry)

    def _append_audit(self, conn: Connection, entry: AuditEntry) -> AuditRecord:
        self._serialize(conn, "ferry.audit")  # SQLite: its one writer already serializes
        c = t.audit.c
        last = conn.execute(select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)).first()
        seq, prev_hash = (last.seq + 1, last.hash) if last is not None else (1, GENESIS)
        at = self.clock()
        digest = chain_hash(prev_hash, seq, at, entry)
        conn.execute(
            insert(t.audit).values(
                seq=seq,
                at=at,
                actor=entry.actor,
                role=entry.role,
                address=entry.address,
                action=entry.action,
                params=entry.params,
                status=entry.status,
                target=entry.target,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        return AuditRecord(seq, at, entry, prev_hash, digest)

    async def list_audit(
        self, *, actor: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        c = t.audit.c
        query = select(t.audit).order_by(c.seq.desc()).limit(limit)
        if actor is not None:
            query = query.where(c.actor == actor)
        if since is not None:
            query = query.where(c.at >= since)
        rows = await self._reading(all_rows, query)
        return [_record(row) for row in reversed(rows)]

    async def verify_audit(self) -> AuditCheck:
        return await self._reading(_walk)
