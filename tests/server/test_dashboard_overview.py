"""The overview's throughput chart in-process: an object moved shows as a bar of its bytes in
the last minute, to the viewers of its scope only."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from test_dashboard_sessions import browser, sign_in
from test_passive_api import create_push, put
from users_support import add_user

SIZE = 3 * 1024 * 1024


def bars(page: str) -> list[tuple[str, int]]:
    return [(m[0], int(m[1])) for m in re.findall(r'data-start="([^"]+)" data-bytes="(\d+)"', page)]


async def test_the_chart_shows_the_bytes_moved_in_the_last_minute_to_its_scopes_viewers(
    api,
    eventually,
) -> None:
    created = await create_push(api, [{"name": "x.bin", "size": SIZE}])
    assert (await put(api, created, "x.bin", b"x" * SIZE)).status_code == 200
    assert (await api.client.put("/api/v1/scopes/elsewhere", json={"weight": 1})).is_success
    outsider = await add_user(api, "olga", "READ", scopes=["elsewhere"])
    admin_token = api.client.headers["Authorization"].removeprefix("Bearer ")
    async with await browser(api) as client:
        await sign_in(client, admin_token)

        async def drawn() -> list[tuple[str, int]]:
            return bars((await client.get("/overview/figures")).text)

        [(start, moved)] = await eventually(drawn)
        page = (await client.get("/")).text
    assert moved == SIZE
    ago = api.state.clock() - datetime.fromisoformat(start)
    assert timedelta(0) < ago <= timedelta(minutes=2)  # the last minute's bar
    assert '<svg id="throughput" class="chart"' in page
    assert re.search(
        r'aria-label="Throughput of the last hour: peak 0\.05 MiB/s in the minute'
        r' from \d\d:\d\d UTC, now 0\.05 MiB/s"',
        page,
    )
    assert 'style="' not in page  # the page's policy allows no inline style
    async with await browser(api) as client:
        await sign_in(client, outsider["token"]["token"])
        page = (await client.get("/")).text
    assert bars(page) == []
    assert "Throughput of the last hour: nothing moved" in page
