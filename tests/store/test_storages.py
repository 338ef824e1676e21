"""Storages in the SQL store's registry, on a real SQLite file: stored, replaced, listed, not
found."""

from __future__ import annotations

import pytest

from ferry.domain.transfers import Storage
from ferry.errors import (
    StorageNotFound,
)


async def test_put_then_get_storage(store):
    storage = Storage("data", "file:///srv/data", site="cern", options={"auto_mkdir": True})
    await store.put_storage(storage)
    assert await store.get_storage("data") == storage


async def test_put_storage_replaces_the_same_name(store):
    await store.put_storage(Storage("data", "file:///a"))
    await store.put_storage(Storage("data", "file:///b", site="x"))
    assert await store.list_storages() == [Storage("data", "file:///b", site="x")]


async def test_storages_are_listed_by_name(store):
    for name in ("b", "c", "a"):
        await store.put_storage(Storage(name, f"memory://{name}"))
    assert [s.name for s in await store.list_storages()] == ["a", "b", "c"]


async def test_unknown_storage_is_not_found(store):
    with pytest.raises(StorageNotFound, match="'nope'"):
        await store.get_storage("nope")
