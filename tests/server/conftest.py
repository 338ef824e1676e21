"""The API in-process: the real app, its lifespan and loops, over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ferry.config import ServerSettings
from ferry.server.app import create_app
from ferry.server.state import ServerState


@dataclass
class Api:
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    state: ServerState
    root: Path
    transport: httpx.ASGITransport


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    root = tmp_path / "root"
    root.mkdir()
    settings = ServerSettings(
        data_dir=tmp_path / ".ferry", agents=0, local_root=root, heartbeat_s=0.2
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        token = (settings.data_dir / "admin.token").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://ferry", headers=headers
            ) as client,
            httpx.AsyncClient(transport=transport, base_url="http://ferry") as anonymous,
        ):
            yield Api(client, anonymous, app.state.ferry, root, transport)


async def until(check, *, timeout: float = 20.0, interval: float = 0.02):
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(interval)


@pytest.fixture
def eventually():
    return until
