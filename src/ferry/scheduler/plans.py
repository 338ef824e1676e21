"""Dry runs: what a run of a transfer would do now, object by object (copy, skip and why,
fail, delete), with counts and bytes, moving nothing and creating no run. Each answer comes
from the code the run itself uses: the expand loop's filters and planned entries, the agents'
``plan_copy`` (the rules of ``domain.sync``) and the deletion step's ``extra_files``."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ferry.daemon.logs import REDACTOR
from ferry.domain.filters import ListingFilter
from ferry.domain.states import TaskState
from ferry.domain.sync import Action, Decision
from ferry.domain.transfers import PlannedTask, TransferKind, TransferSpec, file_task
from ferry.engine.copy import CopyRequest, plan_copy
from ferry.engine.errors import classify
from ferry.engine.storages import StorageFS
from ferry.engine.trees import walk_tree
from ferry.errors import (
    Conflict,
    FerryError,
    SourceAccessDenied,
    SourceNotFound,
    StorageUnreachable,
    TransferError,
)
from ferry.scheduler.expand import plan_entry, unlistable
from ferry.scheduler.guard import EndpointPolicy, ProtectedPaths, open_named_storage
from ferry.scheduler.prune import extra_files
from ferry.store.abc import Store
from ferry.store.sql_passive import CLIENT_STORAGE

ENTRIES_MAX = 10_000  # entries a plan lists; its counts and bytes cover every entry


@dataclass(frozen=True, slots=True)
class PlanEntry:
    action: Action
    source: str
    destination: str
    size: int | None
    reason: str


@dataclass(slots=True)
class Plan:
    entries: list[PlanEntry] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    filtered: int = 0
    truncated: bool = False  # more entries than ENTRIES_MAX: those past it are only counted
    deletion: str | None = None  # why nothing would be deleted, when the deletions would stop

    def add(self, entry: PlanEntry, limit: int) -> None:
        self.counts[entry.action.value] += 1
        self.bytes[entry.action.value] += entry.size or 0
        if len(self.entries) < limit:
            self.entries.append(entry)
        else:
            self.truncated = True


class Planner:
    """Makes plans, opening storages as the loops do (credentials, endpoint policy, protected
    paths refused)."""

    def __init__(
        self,
        store: Store,
        protected: ProtectedPaths,
        endpoints: EndpointPolicy,
        clock: Callable[[], datetime],
        limit: int = ENTRIES_MAX,
    ) -> None:
        self.store = store
        self.protected = protected
        self.endpoints = endpoints
        self.clock = clock
        self.limit = limit

    async def plan(self, spec: TransferSpec) -> Plan:
        """What a run of ``spec`` begun now would do. A storage that cannot be opened or
        listed is ``StorageUnreachable``, with its error: a plan is whole or not at all."""
        if CLIENT_STORAGE in spec.storages():
            raise Conflict("a push or pull has the client's machine at one end: no plan")
        try:
            storages = {
                name: await open_named_storage(self.store, name, self.endpoints, self.protected)
                for name in sorted(spec.storages())
            }
            return await asyncio.to_thread(self._plan, spec, storages, self.clock())
        except FerryError:
            raise
        except Exception as exc:
            error = REDACTOR.redact(classify(exc, str(spec.sources[0])).message)
            raise StorageUnreachable(f"no plan could be made: {error}") from exc

    def _plan(self, spec: TransferSpec, storages: dict[str, StorageFS], now: datetime) -> Plan:
        plan = Plan()
        for planned in self._objects(spec, storages, now, plan):
            plan.add(_entry(planned, spec, storages), self.limit)
        if spec.options.delete_extra:
            self._deletions(spec, storages, now, plan)
        return plan

    def _objects(
        self, spec: TransferSpec, storages: dict[str, StorageFS], now: datetime, plan: Plan
    ) -> Iterator[PlannedTask]:
        """The objects the run would have, as the expand loop plans them."""
        if spec.kind is TransferKind.FILE:
            yield from (file_task(source, spec.destination) for source in spec.sources)
            return
        source = spec.sources[0]
        refused = self.protected.inside_of(storages[spec.destination.storage])
        filters = ListingFilter.of(spec.options.filters, now)
        walk = walk_tree(storages[source.storage], source.path, exclude=self.protected.absolute)
        try:
            for page in walk:
                kept = filters.kept(page) if filters else page
                plan.filtered += len(page) - len(kept)
                for entry in kept:
                    yield plan_entry(source, entry, spec.destination, refused, spec.options)
        except (FileNotFoundError, NotADirectoryError) as exc:
            yield unlistable(source, spec.destination, exc, spec.options)

    def _deletions(
        self, spec: TransferSpec, storages: dict[str, StorageFS], now: datetime, plan: Plan
    ) -> None:
        """The files the deletion step would delete, if the copies all succeed; with more than
        ``max_delete`` of them, none (the plan says why)."""
        if plan.counts[Action.FAIL.value]:
            plan.deletion = "nothing would be deleted: objects would fail"
            return
        source, destination = storages[spec.sources[0].storage], storages[spec.destination.storage]
        extras = list(extra_files(source, destination, spec, now, self.protected.absolute))
        limit = spec.options.delete_limit
        if len(extras) > limit:
            plan.deletion = (
                f"nothing would be deleted: {len(extras)} files to delete,"
                f" more than max-delete {limit}"
            )
            return
        for planned in extras:
            entry = PlanEntry(
                Action.DELETE,
                str(planned.source),
                str(planned.destination),
                planned.size,
                planned.error or "",
            )
            plan.add(entry, self.limit)


def _entry(planned: PlannedTask, spec: TransferSpec, storages: dict[str, StorageFS]) -> PlanEntry:
    source, destination = str(planned.source), str(planned.destination)
    if planned.state is TaskState.SKIPPED:
        return PlanEntry(Action.SKIP, source, destination, planned.size, planned.error or "")
    if planned.state is TaskState.FAILED:
        return PlanEntry(Action.FAIL, source, destination, planned.size, planned.error or "")
    decision = _decide(planned, spec, storages)
    size = planned.size
    if decision.action is Action.FAIL or planned.folder:
        size = 0
    elif size is None:  # a file transfer's source, not listed
        size = _size_of(storages[planned.source.storage], planned.source.path)
    return PlanEntry(decision.action, source, destination, size, decision.reason)


def _size_of(storage: StorageFS, path: str) -> int | None:
    try:
        size = storage.fs.size(storage.resolve(path))
    except Exception:
        return None
    return None if size is None else int(size)


def _decide(planned: PlannedTask, spec: TransferSpec, storages: dict[str, StorageFS]) -> Decision:
    """What the agent would decide for ``planned``: ``plan_copy`` with the options its lease
    would carry; a source error SKIPPED with ``skip_source_errors``, as the agent does."""
    options = spec.options
    request = CopyRequest(
        source=storages[planned.source.storage],
        source_path=planned.source.path,
        destination=storages[planned.destination.storage],
        destination_path=planned.destination.path,
        checksum=options.checksum,
        overwrite=options.overwrite,
        sync=options.sync,
        unzip=options.unzip,
        folder=planned.folder,
    )
    try:
        return plan_copy(request)
    except TransferError as exc:
        if options.skip_source_errors and isinstance(exc, SourceNotFound | SourceAccessDenied):
            return Decision(Action.SKIP, exc.message)
        return Decision(Action.FAIL, exc.message)
