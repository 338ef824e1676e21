"""The overview's store reading is shared: viewers of the same scopes who ask at once, or
within ``FRESH_S``, get one reading (the bench's four clients each waited for all four)."""

from __future__ import annotations

import asyncio

from ferry.server.ui.overview import SharedReading


async def test_viewers_asking_at_once_share_one_reading() -> None:
    shared: SharedReading[int] = SharedReading(fresh_s=60)
    readings = 0
    release = asyncio.Event()

    async def read() -> int:
        nonlocal readings
        readings += 1
        await release.wait()  # the others arrive while this one reads
        return readings

    waiting = [asyncio.ensure_future(shared.get(("lab",), read)) for _ in range(4)]
    release.set()

    assert await asyncio.gather(*waiting) == [1, 1, 1, 1]
    assert await shared.get(None, read) == 2  # an administrator's figures are other figures
    assert readings == 2


async def test_a_reading_older_than_its_freshness_is_read_again() -> None:
    shared: SharedReading[int] = SharedReading(fresh_s=0)
    readings = 0

    async def read() -> int:
        nonlocal readings
        readings += 1
        return readings

    assert [await shared.get(None, read) for _ in range(3)] == [1, 2, 3]
