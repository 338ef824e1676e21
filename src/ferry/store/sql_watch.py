"""Word of revoked credentials between servers sharing a PostgreSQL database.

A transaction that revokes a token (or removes a user, or replaces an agent's or the
administrator's token) sends a notification on ``CREDENTIALS_CHANNEL`` as it commits. Each
server listens on a connection of its own and forgets the principals it keeps when one arrives.
While that connection is down the server keeps none: a revocation never waits out the cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import make_url

if TYPE_CHECKING:
    from ferry.store.sql_base import PrincipalCache

log = logging.getLogger("ferry.security")

CREDENTIALS_CHANNEL = "ferry_credentials"
RECONNECT_S = 1.0


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL ``url`` as libpq takes it (``postgresql+psycopg://`` → ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class CredentialWatch:
    """Listens for other servers' revocations and clears ``cache`` on each, from ``start`` to
    ``stop``; the cache is trusted only while listening."""

    def __init__(self, url: str, cache: PrincipalCache) -> None:
        self._url = libpq_url(url)
        self._cache = cache
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._distrust()
        self._task = asyncio.create_task(self._run(), name="credential-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._distrust()

    async def _run(self) -> None:
        import psycopg  # PostgreSQL's own driver: a server on SQLite never loads it

        while True:
            try:
                await self._listen()
            except (OSError, psycopg.Error) as exc:
                log.warning("not listening for revoked tokens (%s): tokens read every time", exc)
            self._distrust()
            await asyncio.sleep(RECONNECT_S)

    async def _listen(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CREDENTIALS_CHANNEL}")
            self._cache.clear()  # what was revoked while nobody listened
            self._cache.trusted = True
            self.listening.set()
            async for _ in conn.notifies():
                self._cache.clear()

    def _distrust(self) -> None:
        self.listening.clear()
        self._cache.trusted = False
        self._cache.clear()
