"""Token authentication remembered for a few seconds: revocation takes effect at once, through
this store or through another server sharing the database."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from ferry.domain.transfers import Role
from ferry.errors import NotFound, Unauthenticated
from ferry.store.abc import Principal
from ferry.store.sql import SqlStore
from ferry.store.sql_base import PrincipalCache

ADMIN = Principal("admin", Role.ADMINISTRATOR)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_principal_is_remembered_for_its_ttl_only():
    monotonic = FakeMonotonic()
    cache = PrincipalCache(5.0, monotonic=monotonic)
    cache.put("h", ADMIN, cache.generation)
    monotonic.now += 4.9
    assert cache.get("h") == ADMIN
    monotonic.now += 0.1
    assert cache.get("h") is None


def test_clearing_forgets_everything_and_refuses_reads_begun_before():
    cache = PrincipalCache(5.0)
    cache.put("h", ADMIN, cache.generation)
    begun = cache.generation
    cache.clear()
    assert cache.get("h") is None
    cache.put("h", ADMIN, begun)  # read before the change: not kept
    assert cache.get("h") is None


def test_the_cache_is_bounded():
    cache = PrincipalCache(5.0, limit=2)
    for key in ("a", "b", "c"):
        cache.put(key, ADMIN, cache.generation)
    assert [cache.get(key) for key in ("a", "b", "c")] == [None, ADMIN, ADMIN]


async def test_rotating_the_admin_token_refuses_the_old_one_at_once(fresh_store):
    old = await fresh_store.bootstrap()
    assert (await fresh_store.authenticate(old)).role is Role.ADMINISTRATOR  # now remembered
    new = await fresh_store.rotate_admin_token()
    with pytest.raises(Unauthenticated):
        await fresh_store.authenticate(old)
    assert (await fresh_store.authenticate(new)).role is Role.ADMINISTRATOR


async def test_another_admin_token_leaves_the_first_working(fresh_store):
    # A second server of a shared database issues its own: replacing the first server's token
    # logged the first out.
    first = await fresh_store.bootstrap()
    second = await fresh_store.issue_admin_token()
    assert first != second
    for token in (first, second):
        assert (await fresh_store.authenticate(token)).role is Role.ADMINISTRATOR


async def test_registering_again_refuses_the_old_agent_token_at_once(store):
    secrets = [await store.issue_agent_secret("a", timedelta(hours=1)) for _ in range(2)]
    tokens = []
    for secret in secrets:
        _agent, token = await store.register_agent(
            secret=secret, principal=None, name="a", host="h", capabilities={}
        )
        await store.authenticate(token)
        tokens.append(token)
    with pytest.raises(Unauthenticated):
        await store.authenticate(tokens[0])
    assert (await store.authenticate(tokens[1])).role is Role.DAEMON


async def test_a_token_revoked_by_another_server_stops_at_once(postgres_url, clock):
    first = SqlStore(postgres_url, clock=clock, token_cache_seconds=3600)
    second = SqlStore(postgres_url, clock=clock)
    await first.open()
    await second.open()
    try:
        await asyncio.wait_for(first.listening_for_revocations(), 10)
        old = await first.bootstrap()
        await first.authenticate(old)
        async with second.engine.begin() as conn:  # gone, and nobody told: still remembered
            await conn.execute(text("DELETE FROM tokens WHERE client = 'admin'"))
        assert (await first.authenticate(old)).role is Role.ADMINISTRATOR
        await second.issue_admin_token()
        await first.authenticate(old)

        await second.rotate_admin_token()

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                await first.authenticate(old)
            except Unauthenticated:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(Unauthenticated):
            await first.authenticate(old)
    finally:
        await first.close()
        await second.close()


async def test_a_server_not_listening_keeps_no_principal(postgres_url, clock):
    store = SqlStore(postgres_url, clock=clock, token_cache_seconds=3600)
    await store.open()
    try:
        await asyncio.wait_for(store.listening_for_revocations(), 10)
        token = await store.bootstrap()
        await store._credential_watch.stop()
        await store.authenticate(token)
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM tokens WHERE client = 'admin'"))

        with pytest.raises(Unauthenticated):
            await store.authenticate(token)
    finally:
        await store.close()


async def test_a_users_tokens_are_named_by_id_and_revoked_by_it(store) -> None:
    user, first = await store.add_user("ann", Role.WRITE, ["default"], "a" * 43, None)
    second = await store.create_token("ann", "b" * 43, None)
    assert (user.name, user.scopes, first.prefix) == ("ann", ("default",), "aaaaaa")
    assert (await store.authenticate("a" * 43)).name == "ann"
    assert {t.id for t in await store.list_tokens("ann")} == {first.id, second.id}

    revoked = await store.revoke_token(first.id, user="ann")

    assert revoked.id == first.id
    with pytest.raises(Unauthenticated, match="revoked"):
        await store.authenticate("a" * 43)
    assert (await store.authenticate("b" * 43)).name == "ann"
    with pytest.raises(NotFound):
        await store.revoke_token(second.id, user="someone-else")
    listed = await store.list_tokens()
    assert all(t.user is not None for t in listed)  # users' tokens, not agents'


async def test_a_token_past_its_expiry_is_refused(store, clock) -> None:
    await store.add_user("bea", Role.READ, ["default"], "c" * 43, clock() + timedelta(hours=1))
    assert (await store.authenticate("c" * 43)).name == "bea"
    clock.advance(hours=1)
    with pytest.raises(Unauthenticated, match="expired"):
        await store.authenticate("c" * 43)  # remembered, but not past its expiry
