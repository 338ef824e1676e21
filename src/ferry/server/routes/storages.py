"""Storages (the registry): add, list, remove, grant to scopes. Credentials go in, never out.

A user sees the storages granted to its scopes, with those grants; an administrator sees all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response

from ferry.api.schemas import GrantIn, GrantPublic, StorageCreate, StorageHealth, StoragePublic
from ferry.domain.channels import check_storage_site
from ferry.domain.locations import parse_location
from ferry.domain.transfers import Credentials, Role, Storage
from ferry.errors import InvalidRequest, StorageNotFound
from ferry.scheduler.browse import list_folder
from ferry.scheduler.registry import check_backend, probe
from ferry.server.audit_trail import note_target
from ferry.server.deps import Administrator, Reader, StateDep
from ferry.server.state import ServerState
from ferry.store.abc import Grant, Principal
from ferry.store.sql_passive import CLIENT_STORAGE

router = APIRouter(prefix="/storages", tags=["storages"])
ScopeName = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")

HEALTH_TIMEOUT_S = 10.0
IN_USE = {"description": "A waiting or running transfer names the storage"}


def present(storage: Storage, grants: Sequence[Grant] = ()) -> StoragePublic:
    health = StorageHealth(**storage.health) if storage.health else None
    return StoragePublic(
        name=storage.name,
        url=storage.url,
        site=storage.site,
        options=storage.options,
        credentials=storage.credentials.keys,
        health=health,
        grants=[_grant(g) for g in grants if g.storage == storage.name],
    )


def _grant(grant: Grant) -> GrantPublic:
    return GrantPublic(storage=grant.storage, scope=grant.scope, read=grant.read, write=grant.write)


async def grants_seen_by(
    state: ServerState, caller: Principal, storage: str | None = None
) -> list[Grant]:
    """The grants ``caller`` may see: all for an administrator, its scopes' for a user."""
    scopes = None if caller.role is Role.ADMINISTRATOR else list(caller.scopes)
    return await state.store.storage_grants(storage=storage, scopes=scopes)


@router.get("", response_model=list[StoragePublic])
async def list_storages(state: StateDep, caller: Reader) -> list[StoragePublic]:
    grants = await grants_seen_by(state, caller)
    granted = {g.storage for g in grants}
    everything = caller.role is Role.ADMINISTRATOR
    storages = await state.store.list_storages()
    return [present(s, grants) for s in storages if everything or s.name in granted]


@router.get("/{name}", response_model=StoragePublic)
async def get_storage(name: str, state: StateDep, caller: Reader) -> StoragePublic:
    grants = await grants_seen_by(state, caller, name)
    if not grants and caller.role is not Role.ADMINISTRATOR:
        raise StorageNotFound(name)  # what is not granted to its scopes, a user does not see
    return present(await state.store.get_storage(name), grants)


@router.get("/{name}/entries")
async def list_entries(
    name: str,
    state: StateDep,
    caller: Reader,
    path: str = "",
    scope: str = Query("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$"),
    after: str | None = Query(None, max_length=4096),
    limit: int = Query(1000, ge=1, le=10_000),
) -> dict[str, Any]:
    """One folder of the storage (``path`` below its root; a file: itself), sorted by name, as
    a transfer of ``scope`` would read it: 403 when the scope may not read the storage, 404
    when nothing is there. ``next_after``: the ``after`` of the next page, null at the end."""
    location = parse_location(f"{name}:{path}")
    listing = await list_folder(
        state.store,
        caller,
        location,
        scope=scope,
        protected=state.protected,
        endpoints=state.endpoints,
        after=after,
        limit=limit,
    )
    return {
        "location": str(listing.location),
        "entries": [entry.to_json() for entry in listing.entries],
        "next_after": listing.next_after,
    }


@router.put("/{name}/grants/{scope}", response_model=GrantPublic)
async def grant_storage(
    name: str, body: GrantIn, state: StateDep, caller: Administrator, scope: str = ScopeName
) -> GrantPublic:
    """What ``scope``'s transfers may do with the storage: read from it, write to it, or both
    (replacing what it had)."""
    return _grant(await state.store.grant_storage(name, scope, read=body.read, write=body.write))


@router.delete("/{name}/grants/{scope}", status_code=204)
async def ungrant_storage(
    name: str, state: StateDep, caller: Administrator, scope: str = ScopeName
) -> Response:
    """Take the grant away: the scope's transfers submitted from now on may not use it."""
    await state.store.ungrant_storage(name, scope)
    return Response(status_code=204)


@router.post(
    "",
    status_code=201,
    response_model=StoragePublic,
    responses={409: {"description": "A storage of that name exists"}},
)
async def add_storage(
    body: StorageCreate, state: StateDep, caller: Administrator, request: Request
) -> StoragePublic:
    """Add a storage, check that it answers, and record its health; a name already taken is
    409 (replace it with ``PUT /storages/{name}``)."""
    note_target(request, body.name)
    storage = await _checked(body)
    await state.store.add_storage(storage)
    return present(storage)


@router.put("/{name}", response_model=StoragePublic, responses={409: IN_USE})
async def replace_storage(
    name: str, body: StorageCreate, state: StateDep, caller: Administrator
) -> StoragePublic:
    """Replace a storage, refused (409) while a waiting or running transfer names it: those
    would otherwise run against whatever the new URL points at."""
    if body.name != name:
        raise InvalidRequest(f"the body names {body.name!r}, the URL {name!r}")
    storage = await _checked(body)
    await state.store.replace_storage(storage)
    state.storages.forget(storage.name)
    return present(storage, await state.store.storage_grants(storage=name))


async def _checked(body: StorageCreate) -> Storage:
    """The storage ``body`` describes, its name, site, URL and options checked, with its
    health as probed now."""
    check_storage_site(body.site)
    if body.name.lower() == CLIENT_STORAGE:
        raise InvalidRequest(f"{CLIENT_STORAGE!r} is reserved: it names the client's side of push")
    check_backend(body.url, body.options)
    storage = Storage(body.name, body.url, body.site, body.options, Credentials(body.credentials))
    return Storage(**{**_fields(storage), "health": await probe(storage, HEALTH_TIMEOUT_S)})


@router.delete("/{name}", status_code=204, responses={409: IN_USE})
async def remove_storage(name: str, state: StateDep, caller: Administrator) -> Response:
    await state.store.delete_storage(name)
    state.storages.forget(name)
    return Response(status_code=204)


def _fields(storage: Storage) -> dict[str, Any]:
    return {name: getattr(storage, name) for name in Storage.__dataclass_fields__}
