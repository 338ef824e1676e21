"""Accepting a transfer: check what it names, store it in STANDBY, wake the due loop."""

from __future__ import annotations

import asyncio
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ferry.domain.locations import Location, is_endpoint, is_within
from ferry.domain.schedules import Schedule, first_due
from ferry.domain.transfers import Role, Transfer, TransferKind, TransferSpec
from ferry.engine.storages import StorageFS, check_url, open_storage
from ferry.errors import InvalidRequest, InvalidSchedule, OutOfScope, StorageNotFound
from ferry.scheduler.guard import EndpointPolicy, ProtectedPaths, lookup_storage
from ferry.scheduler.loop import Wakeups
from ferry.store.abc import NewTransfer, Principal, Store

DEFAULT_SCOPE = "default"


def check_scope(principal: Principal, scope: str) -> None:
    """A user submits only into its own scopes; an administrator into any, a new one made with
    weight 1 (a user whose scopes were ["other"] submitted into "default", and into scopes it
    invented, each a new share of the dispatch)."""
    if principal.role is Role.ADMINISTRATOR or scope in principal.scopes:
        return
    held = ", ".join(principal.scopes) or "none"
    raise OutOfScope(f"{principal.name} may not submit into scope {scope!r} (its scopes: {held})")


async def check_grants(
    store: Store,
    principal: Principal,
    scope: str,
    *,
    reads: Iterable[Location] = (),
    writes: Iterable[Location] = (),
) -> None:
    """A user's transfer reads only from storages its scope is granted to read and writes only
    to those granted to write. An administrator's needs no grant, nor does an endpoint outside
    the registry (the operator allows its host for everyone)."""
    if principal.role is Role.ADMINISTRATOR:
        return
    granted = {g.storage: g for g in await store.storage_grants(scopes=[scope])}
    for need, locations in (("read", reads), ("write", writes)):
        for name in sorted({loc.storage for loc in locations if not is_endpoint(loc.storage)}):
            grant = granted.get(name)
            if grant is None or not getattr(grant, need):
                raise OutOfScope(
                    f"scope {scope!r} may not {need} storage {name!r}"
                    f" (an administrator grants it: ferry storage grant {name} --scope {scope}"
                    f" --{need})"
                )


async def submit_transfer(
    store: Store,
    wakeups: Wakeups,
    principal: Principal,
    spec: TransferSpec,
    *,
    schedule: Schedule,
    requested_schedule: dict[str, Any] | None = None,
    submission_id: str | None,
    scope: str = DEFAULT_SCOPE,
    clock: Callable[[], datetime],
    protected: ProtectedPaths,
    endpoints: EndpointPolicy | None = None,
) -> tuple[Transfer, bool]:
    """Store the transfer and return it with whether it is new (an idempotent resubmission
    returns the existing one). Sources need not exist yet; their storages must."""
    await check_submission(store, principal, spec, scope, protected, endpoints)
    now = clock()
    anchored = schedule.anchored(now)
    first = first_due(anchored, now)
    if first is None:
        raise InvalidSchedule("it has no occurrence left (until has passed or count is spent)")
    new = NewTransfer(
        scope=scope,
        submitter=principal.name,
        spec=spec,
        schedule=anchored.to_json(),
        next_run_at=first,
        submission_id=submission_id,
        requested_schedule=requested_schedule
        if requested_schedule is not None
        else schedule.to_json(),
    )
    transfer, created = await store.create_transfer(new)
    if created:
        wakeups.transfers_may_be_due()
    return transfer, created


async def check_submission(
    store: Store,
    principal: Principal,
    spec: TransferSpec,
    scope: str,
    protected: ProtectedPaths,
    endpoints: EndpointPolicy | None = None,
) -> None:
    """Everything a submission is checked for before it is stored (a dry run too): its
    shape, the submitter's scope and grants, the storages and paths it names."""
    check_shape(spec)
    check_scope(principal, scope)
    reads = spec.all_sources()  # a replica is read as its source is: checked the same way
    await check_grants(store, principal, scope, reads=reads, writes=[spec.destination])
    await check_locations(store, spec, protected, endpoints or EndpointPolicy())


def check_shape(spec: TransferSpec) -> None:
    """Refuse what could only end badly: two sources landing on one name, a tree copied into
    itself."""
    if spec.kind is TransferKind.FILE:
        names = Counter(s.name for s in spec.sources)
        if clash := sorted(name for name, count in names.items() if count > 1):
            raise InvalidRequest(
                f"several sources would be written to {spec.destination.child(clash[0])}"
            )
        return
    destination = spec.destination
    for source in spec.sources:
        if source.storage == destination.storage and is_within(destination.path, source.path):
            raise InvalidRequest(
                f"the destination {destination} is inside the source tree {source}"
            )
        if (
            spec.options.delete_extra
            and source.storage == destination.storage
            and is_within(source.path, destination.path)
        ):
            raise InvalidRequest(_SOURCE_INSIDE.format(source=source, destination=destination))


# With --delete-extra, the source's own files would be extras of the destination around it.
_SOURCE_INSIDE = (
    "the source tree {source} is inside the destination {destination}: with delete_extra"
    " its files would be deleted there"
)


async def check_locations(
    store: Store, spec: TransferSpec, protected: ProtectedPaths, endpoints: EndpointPolicy
) -> None:
    """Every storage must be registered (or be an allowed endpoint); on local storages, no
    location may be in the server's data directory, and a tree may not be copied into itself
    under another storage's name."""
    locations = [*spec.all_sources(), spec.destination]
    local: dict[str, StorageFS] = {}
    for name in sorted({loc.storage for loc in locations}):
        try:
            storage = await lookup_storage(store, name, endpoints)
        except StorageNotFound as exc:
            raise InvalidRequest(str(exc)) from exc
        if is_endpoint(name):
            check_url(storage.url)
        if storage.url.startswith("file:"):  # only local storages can hold the server's files
            local[name] = await asyncio.to_thread(
                open_storage, storage.name, storage.url, storage.options
            )
    for location in locations:
        if location.storage in local:
            protected.check(local[location.storage], location)
    if spec.kind is TransferKind.TREE and spec.destination.storage in local:
        target = _real(local[spec.destination.storage], spec.destination.path)
        for source in spec.sources:
            if source.storage in local and is_within(
                target, _real(local[source.storage], source.path)
            ):
                raise InvalidRequest(
                    f"the destination {spec.destination} is inside the source tree {source}"
                )
            if (
                spec.options.delete_extra
                and source.storage in local
                and is_within(_real(local[source.storage], source.path), target)
            ):
                raise InvalidRequest(
                    _SOURCE_INSIDE.format(source=source, destination=spec.destination)
                )


def _real(storage: StorageFS, path: str) -> str:
    return os.path.realpath(posixpath.join(storage.root, path))
