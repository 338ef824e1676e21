"""The dashboard's schedule previews in-process: the new-transfer form's preview endpoint and a
transfer page's next occurrences, both from the scheduler's own functions."""

from __future__ import annotations

import re

import httpx
from test_dashboard_sessions import browser, sign_in


async def admin_signs_in(api, client: httpx.AsyncClient) -> None:
    await sign_in(client, api.client.headers["Authorization"].removeprefix("Bearer "))


async def test_the_preview_lists_the_next_ten_occurrences_of_the_forms_schedule(api) -> None:
    async with await browser(api) as client:
        await admin_signs_in(api, client)
        query = {"schedule": "every", "interval": "2", "unit": "hour", "timezone": "UTC"}
        shown = await client.get("/transfers/new/preview", params=query)
        assert shown.status_code == 200
        assert len(re.findall(r"<li>", shown.text)) == 10
        bad = await client.get("/transfers/new/preview", params={"schedule": "cron", "expr": "x"})
        assert 'class="error"' in bad.text
        assert "<li>" not in bad.text


async def test_a_periodic_transfers_page_shows_its_next_occurrences(api) -> None:
    body = {
        "sources": ["local:a.txt"],
        "destination": "local:out",
        "schedule": {
            "kind": "every",
            "interval": 1,
            "unit": "day",
            "start": "2099-01-01T00:00:00Z",
        },
    }
    created = await api.client.post("/api/v1/transfers", json=body)
    assert created.status_code == 201, created.text
    async with await browser(api) as client:
        await admin_signs_in(api, client)
        page = await client.get(f"/transfers/{created.json()['id']}")
    coming = re.search(r'<ol class="occurrences" id="coming">(.*?)</ol>', page.text, re.S)
    assert coming is not None
    assert re.findall(r"<li>(\S+)", coming.group(1)) == [f"2099-01-{d:02d}" for d in range(1, 11)]
