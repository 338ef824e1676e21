"""The schema (DESIGN §9). The indexes are the point: every loop's query touches only its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    literal_column,
)
from sqlalchemy.sql.elements import ColumnElement


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

scopes = Table(
    "scopes",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("weight", Integer, nullable=False, default=1),
    Column("created_at", UtcDateTime, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("client", String(128), ForeignKey("clients.name"), nullable=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("prefix", String(8), nullable=True),  # the token's first characters, to tell it by
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),  # to the minute
    Index(None, "agent_id"),
)

agent_secrets = Table(
    "agent_secrets",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("agent_name", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("status", JSON, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("last_heartbeat", UtcDateTime, nullable=True),
    # Statistics (gCube's agent statistics), added to with each batch of results it reports.
    Column("succeeded", Integer, nullable=False, default=0, server_default="0"),
    Column("failed", Integer, nullable=False, default=0, server_default="0"),
    Column("canceled", Integer, nullable=False, default=0, server_default="0"),
    Column("bytes", BigInteger, nullable=False, default=0, server_default="0"),
    # Paused (drained) since then: it gets no new leases and finishes what it holds.
    Column("paused_at", UtcDateTime, nullable=True),
)

channels = Table(
    "channels",
    metadata,
    Column("source_site", String(64), primary_key=True),
    Column("destination_site", String(64), primary_key=True),
    Column("max_active", Integer, nullable=True),
    Column("bandwidth", BigInteger, nullable=True),
    Column("state", String(8), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # In place of bandwidth: the rate by time of week, as written, read on the clock of timezone.
    Column("bandwidth_timetable", Text, nullable=True),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    # Optimized: the link optimizer moves its limit between min_active and max_active;
    # ``optimizer`` holds its search and its last decision (``domain/optimizer.py``).
    Column("optimize", Boolean, nullable=False, default=False, server_default=false()),
    Column("min_active", Integer, nullable=True),
    Column("optimizer", JSON, nullable=True),
)

# What each agent's reports have moved on each link (source site, destination site), summed
# since the row was made: the link optimizer reads the sums at each window and takes the
# difference. One row per agent, so that agents reporting at once never wait on one row.
link_tallies = Table(
    "link_tallies",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("source_site", String(64), primary_key=True),
    Column("destination_site", String(64), primary_key=True),
    Column("succeeded", BigInteger, nullable=False, default=0),
    Column("failed", BigInteger, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
)

# Every (scope, source site, destination site) that has ever had tasks: the queues the lease
# visits, each through the tasks' queue index, instead of grouping the whole tasks table.
queues = Table(
    "queues",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("source_site", String(64), primary_key=True),
    Column("destination_site", String(64), primary_key=True),
)

storages = Table(
    "storages",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("site", String(64), nullable=False),
    Column("options", JSON, nullable=False),
    Column("credentials", Text, nullable=True),  # Fernet token of a JSON object; never returned
    Column("health", JSON, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# What a scope's transfers may do with a storage: read from it (sources), write to it
# (destination). Administrators' transfers need no grant.
storage_grants = Table(
    "storage_grants",
    metadata,
    Column(
        "storage", String(64), ForeignKey("storages.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("scope", String(64), ForeignKey("scopes.name", ondelete="CASCADE"), primary_key=True),
    Column("read", Boolean, nullable=False),
    Column("write", Boolean, nullable=False),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("scope", String(64), ForeignKey("scopes.name"), nullable=False),
    Column("submitter", String(128), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("schedule", JSON, nullable=False),
    Column("status", String(24), nullable=False),
    Column("next_run_at", UtcDateTime, nullable=True),
    Column("runs", Integer, nullable=False, default=0),
    Column("submission_id", String(128), nullable=True),
    Column("spec_hash", String(64), nullable=False),
    Column("schedule_kind", String(8), nullable=True),  # direct, at, every, cron: a filter
    Column("error", Text, nullable=True),
    # Canceled while ONGOING: it becomes CANCELED once its active tasks have stopped.
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # When its next run is late if it has not started (the late_after option); NULL once told.
    Column("late_at", UtcDateTime, nullable=True),
    # Paused since then: its QUEUED and WAITING tasks are PAUSED (out of the lease's queue
    # index), and tasks that come back to the queue meanwhile are PAUSED as they do
    # (``sql_pauses``); its occurrences due meanwhile are SKIPPED runs. ``pause_stops``: its
    # active copies were told to stop too, and are given back.
    Column("paused_at", UtcDateTime, nullable=True),
    Column("pause_stops", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("scope", "submitter", "submission_id"),
    Index(None, "status", "next_run_at"),
    Index(None, "late_at"),
    Index(None, "created_at", "id"),
    # Listing pages, newest first, filtered by status, scope or both: no sort of the matches.
    Index(None, "status", "created_at", "id"),
    Index(None, "scope", "created_at", "id"),
    Index(None, "scope", "status", "created_at", "id"),
)

transfer_labels = Table(
    "transfer_labels",
    metadata,
    Column("transfer_id", String(36), ForeignKey("transfers.id"), primary_key=True),
    Column("label", String(64), primary_key=True),
    Index(None, "label", "transfer_id"),
)

# Passive transfers (the transfer daemon's write-files / read-files): the client's machine is one
# end, and streams each object through the API with a one-time capability bound to the transfer.
capabilities = Table(
    "capabilities",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("transfer_id", String(36), ForeignKey("transfers.id"), nullable=False),
    Column("direction", String(8), nullable=False),  # push, pull
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    Index(None, "closed_at", "expires_at"),
)

# The finalize hooks' outbox: a run's summary waits here until its URL has taken it.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("transfer_id", String(36), ForeignKey("transfers.id"), nullable=False),
    Column("run", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(12), nullable=False),  # PENDING, DELIVERED, FAILED
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Index(None, "state", "next_attempt_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("transfer_id", String(36), ForeignKey("transfers.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("status", String(24), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("occurrences", Integer, nullable=False, default=1),  # due ones it stands for
    Column("skipped_occurrences", Integer, nullable=False, default=0),  # due while it ran
    Column("expanded", Boolean, nullable=False, default=False),
    Column("total", Integer, nullable=False, default=0),
    Column("done", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("canceled", Integer, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("size_total", BigInteger, nullable=False, default=0),  # known sizes of its objects
    # Tree entries the transfer's filters left out: not objects, so in no other counter.
    Column("filtered", BigInteger, nullable=False, default=0, server_default="0"),
    # --delete-extra: the files its deletion step deleted (DELETED objects, not in ``total``),
    # the step's state (``DeletionState``; NULL: not asked for) and what it says.
    Column("deleted", BigInteger, nullable=False, default=0, server_default="0"),
    Column("deleted_bytes", BigInteger, nullable=False, default=0, server_default="0"),
    Column("deletion", String(16), nullable=True),
    Column("deletion_note", Text, nullable=True),
    Column("last_result_at", UtcDateTime, nullable=True),  # when its latest object ended
    Column("error", Text, nullable=True),
    # How far a tree's listing has come (``ListedThrough``), written with each page's tasks.
    Column("listed_source", Integer, nullable=True),
    Column("listed_through", Text, nullable=True),
    # The number the run's next listed object gets (docs/small-files.md); NULL in a run made
    # before objects were numbered, whose tasks' ids are their objects' numbers.
    Column("next_object", BigInteger, nullable=True),
    # When it must end (its transfer's deadline option), and whether it was ended then.
    Column("deadline_at", UtcDateTime, nullable=True),
    Column("past_deadline", Boolean, nullable=False, default=False, server_default=false()),
    Index(None, "status", "expanded"),
    Index(None, "deadline_at"),
)

# Indexes of the tasks in one state only. An index of every state rewrote a task's entries at
# its lease and again at its result, lease columns set and cleared included; these gain an
# entry at one change and lose it at the next (bench/findings.md, "Indexes of one state"). The
# queries that search them name the state as the index
# does, as literal text: SQLite plans with a bound value and matches it either way, but a
# generic plan of PostgreSQL's, for a statement its driver has prepared, cannot see a
# parameter's value and would not use the index; and a statement of SQLite's whose plan
# looked at a bound value against such an index is prepared again at every execution
# (``task_state_is``, which the indexes' own conditions are written with too).

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("transfer_id", String(36), ForeignKey("transfers.id"), nullable=False),
    Column("run", Integer, nullable=False),
    Column("scope", String(64), nullable=False),
    Column("source_site", String(64), nullable=False, server_default=""),
    Column("destination_site", String(64), nullable=False, server_default=""),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("destination", Text, nullable=False),
    Column("size", BigInteger, nullable=True),
    Column("checksum", String(80), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_agent", String(36), nullable=True),
    Column("lease_token", String(64), nullable=True),
    Column("leased_at", UtcDateTime, nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("not_before", UtcDateTime, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("bytes_done", BigInteger, nullable=False, default=0),
    Column("error_class", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    # An empty folder of a tree, made at the destination (nothing is copied).
    Column("folder", Boolean, nullable=False, default=False, server_default=false()),
    # Small objects travel in chunks (docs/small-files.md): a carrier is a task that carries
    # several objects of one chunk list (``chunks``), its source and destination their roots.
    # ``object``: the run-wide number of its (first) object; NULL in a run made before numbering.
    Column("object", BigInteger, nullable=True),
    # The objects it carries now; once it ended, those it moved (DONE or SKIPPED).
    Column("objects", Integer, nullable=False, server_default="1"),
    Column("origin", BigInteger, nullable=True),  # a carrier's chunk list (its ``first``)
    Column("members", JSON, nullable=True),  # offsets into that list it carries; NULL: all
    # A file transfer's source with replicas: the other places (JSON list of locations, in
    # the order they are tried) and, once it ended, the place it was read from.
    Column("replicas", Text, nullable=True),
    Column("replica", Text, nullable=True),
    Index(None, "transfer_id", "run", "id"),
    Index(None, "transfer_id", "run", "origin"),
)


def task_state_is(*states: str) -> ColumnElement[bool]:
    """A task's state is one of ``states`` (the stored values of ``TaskState``), written into
    the statement as literals. With a bound value, SQLite's planner compared it with the
    partial indexes' conditions and marked the statement to be prepared again whenever the
    value is bound, that is at every execution: a transfer's status read cost 320 → 470 µs."""
    values: list[ColumnElement[Any]] = [literal_column(f"'{state}'") for state in states]
    return tasks.c.state == values[0] if len(values) == 1 else tasks.c.state.in_(values)


def _of_state(state: str) -> dict[str, Any]:
    """The condition of a partial index of the tasks in ``state``, for SQLite and PostgreSQL."""
    return {"sqlite_where": task_state_is(state), "postgresql_where": task_state_is(state)}


# The lease walks each queue in dispatch order: priority high first, then oldest. QUEUED tasks
# only: a lease takes a task out of it and nothing else touches it again.
Index(
    "ix_tasks_queue",
    tasks.c.scope,
    tasks.c.source_site,
    tasks.c.destination_site,
    tasks.c.priority.desc(),
    tasks.c.id,
    **_of_state("QUEUED"),
)
# ACTIVE tasks only, by their lease's agent, then its expiry. The expiry's search reads the
# whole index, which holds only what the agents have leased (a thousand or so each), without
# a row of the table; a second index, by expiry, cost an entry more at every lease and every
# result.
Index(
    "ix_tasks_lease_agent",
    tasks.c.lease_agent,
    tasks.c.lease_expires_at,
    **_of_state("ACTIVE"),
)
# A run's ACTIVE tasks (its bytes in flight, a cancel's stops), its first FAILED one (the run's
# error), and the WAITING tasks by when their retry is due. An index of every task of a run by
# its state moved two entries at each lease and each result; these, one at each change.
Index("ix_tasks_run_active", tasks.c.transfer_id, tasks.c.run, **_of_state("ACTIVE"))
Index("ix_tasks_run_failed", tasks.c.transfer_id, tasks.c.run, tasks.c.id, **_of_state("FAILED"))
Index("ix_tasks_not_before", tasks.c.not_before, **_of_state("WAITING"))
# DONE tasks by the agent that moved them and when: its throughput over the last minute. A
# DONE task is its own last attempt (``sql_tasks.IN_ITS_ROW``), with no row of attempts.
Index("ix_tasks_done_by_agent", tasks.c.lease_agent, tasks.c.finished_at, **_of_state("DONE"))
# FAILED tasks by when they ended: the dashboard's failures of the last hour. An entry only at a
# final failure, which moving objects never pays.
Index("ix_tasks_failed_at", tasks.c.finished_at, **_of_state("FAILED"))
# One single task per object of a run: listing a tree again after a crash adds no duplicates.
# Carriers share their root as destination; a chunk list's key keeps them unique instead.
Index(
    "uq_tasks_object",
    tasks.c.transfer_id,
    tasks.c.run,
    tasks.c.destination,
    unique=True,
    sqlite_where=tasks.c.origin.is_(None),
    postgresql_where=tasks.c.origin.is_(None),
)
# A run's single tasks by object number, which a page of outcomes reads in order. Carriers,
# numbered too, are found by their origin: with an entry here, a page of a run in chunks
# walked every carrier after its cursor to find no single task.
Index(
    "ix_tasks_single_object",
    tasks.c.transfer_id,
    tasks.c.run,
    tasks.c.object,
    sqlite_where=tasks.c.origin.is_(None),
    postgresql_where=tasks.c.origin.is_(None),
)

# A chunk's object list, written once with its carrier and never updated: the carrier row is
# rewritten at each lease and result, and SQLite rewrites a row whole, overflow pages included.
chunks = Table(
    "chunks",
    metadata,
    Column("transfer_id", String(36), ForeignKey("transfers.id"), primary_key=True),
    Column("run", Integer, primary_key=True),
    Column("first", BigInteger, primary_key=True),  # the number of its first object
    Column("count", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),  # total listed size
    Column("objects", Text, nullable=False),  # JSON [[relative path, size], …], sent as it is
    sqlite_with_rowid=False,
)


def outcome_state_is(*states: str) -> ColumnElement[bool]:
    """An outcome's state is one of ``states``, as literal text (see ``task_state_is``)."""
    values: list[ColumnElement[Any]] = [literal_column(f"'{state}'") for state in states]
    return outcomes.c.state == values[0] if len(values) == 1 else outcomes.c.state.in_(values)


# One row per ended attempt of a chunk's object, appended when reported and never updated. Its
# state is the object's after that attempt: DONE, SKIPPED, FAILED (final), WAITING (to be
# retried), LOST (its lease expired first) or CANCELED.
outcomes = Table(
    "outcomes",
    metadata,
    Column("transfer_id", String(36), primary_key=True),
    Column("run", Integer, primary_key=True),
    Column("object", BigInteger, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("checksum", String(80), nullable=True),
    Column("error_class", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("agent", String(36), nullable=True),
    Column("started_at", UtcDateTime, nullable=True),  # its carrier's leased_at
    Column("finished_at", UtcDateTime, nullable=False),
    # A FAILED outcome's object, from its chunk list: relative path and listed size. NULL in
    # every other state (the moving objects' rows stay as narrow as they were) and in rows
    # written before 0016.
    Column("path", Text, nullable=True),
    Column("size", BigInteger, nullable=True),
    sqlite_with_rowid=False,
)
# An object fails finally once, so these hold few entries: ``--status FAILED`` and a run's first
# error, the dashboard's failures of the last hour, and the objects a lease lost (leftovers).
Index(
    "ix_outcomes_failed",
    outcomes.c.transfer_id,
    outcomes.c.run,
    outcomes.c.object,
    sqlite_where=outcome_state_is("FAILED"),
    postgresql_where=outcome_state_is("FAILED"),
)
Index(
    "ix_outcomes_failed_at",
    outcomes.c.finished_at,
    sqlite_where=outcome_state_is("FAILED"),
    postgresql_where=outcome_state_is("FAILED"),
)
Index(
    "ix_outcomes_lost",
    outcomes.c.transfer_id,
    outcomes.c.run,
    sqlite_where=outcome_state_is("LOST"),
    postgresql_where=outcome_state_is("LOST"),
)


# The attempts that did not move their object: failed (retried or not), lost with their lease,
# stopped by a channel, given back by a stopping agent. The one that moved it is its task's row.
attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("agent", String(36), nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("state", String(16), nullable=True),  # how it ended: DONE, FAILED, QUEUED (lost)…
    Column("error_class", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "task_id"),
)

# The audit trail: one row per state-changing act, each linked to the one before by its hash.
# Rows are only ever appended; seq is given by the appender, not the database, so that a gap
# shows a removed row.
audit = Table(
    "audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=True),
    Column("role", String(16), nullable=True),
    Column("address", String(64), nullable=True),
    Column("action", String(256), nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", Integer, nullable=False),
    Column("target", String(256), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "actor", "seq"),
    Index(None, "at"),
)
