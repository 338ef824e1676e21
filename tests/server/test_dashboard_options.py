"""The dashboard's new-transfer options and the transfer list's label and schedule filters,
in-process: the options reach the stored spec through ``TransferCreate``; the filters are the
API's own (``TransferFilter``)."""

from __future__ import annotations

import re

from test_dashboard_registry import admin_token
from test_dashboard_sessions import browser, csrf_in, sign_in


async def test_the_forms_options_reach_the_transfers_spec(api) -> None:
    (api.root / "a.txt").write_text("a")
    form = {
        "kind": "file",
        "sources": "local:a.txt",
        "destination": "local:out",
        "schedule": "at",
        "at": "+1h",
        "checksum": "sha256",
        "overwrite": "if-different",
        "retries": "7",
        "priority": "5",
        "labels": "nightly, run:42 lab",
    }
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        shown = await client.get("/transfers/new")
        for name in ("checksum", "overwrite", "retries", "priority", "labels"):
            assert f'name="{name}"' in shown.text
        sent = await client.post("/transfers/new", data={**form, "csrf": csrf_in(shown)})
        assert sent.status_code == 303
        bad = await client.post(
            "/transfers/new", data={**form, "priority": "9", "csrf": csrf_in(shown)}
        )
        assert bad.status_code == 422
        assert "options.priority" in bad.text
    transfer_id = sent.headers["location"].rsplit("/", 1)[1]
    options = (await api.client.get(f"/api/v1/transfers/{transfer_id}")).json()["options"]
    assert {k: options[k] for k in ("checksum", "overwrite", "retries", "priority", "labels")} == {
        "checksum": "sha256",
        "overwrite": "if-different",
        "retries": 7,
        "priority": 5,
        "labels": ["lab", "nightly", "run:42"],
    }


async def test_the_list_filters_by_label_and_schedule_kind(api) -> None:
    base = {"sources": ["local:a.txt"], "destination": "local:o"}
    made = {}
    for name, schedule, labels in [
        ("at", {"kind": "at", "at": "+1h"}, ["nightly"]),
        ("cron", {"kind": "cron", "expr": "0 3 * * *"}, ["nightly"]),
        ("every", {"kind": "every", "interval": 1, "unit": "day"}, []),
    ]:
        body = {**base, "schedule": schedule, "options": {"labels": labels}}
        created = await api.client.post("/api/v1/transfers", json=body)
        assert created.status_code == 201, created.text
        made[name] = created.json()["id"]
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))

        async def listed(**query: str) -> set[str]:
            page = await client.get("/transfers", params=query)
            return set(re.findall(r'href="/transfers/([0-9a-f-]{36})"', page.text))

        assert await listed(label="nightly") == {made["at"], made["cron"]}
        assert await listed(schedule="cron") == {made["cron"]}
        assert await listed(label="nightly", schedule="every") == set()
        assert await listed(schedule="no-such-kind") == set(made.values())
        page = await client.get("/transfers", params={"schedule": "cron", "label": "nightly"})
    assert "<option selected>cron</option>" in page.text
    assert 'name="label" value="nightly"' in page.text
