"""The dashboard's storages, channels and scopes in-process: what each role sees, and the
administrator's edits (CSRF, refused to other roles, made in the store, in the audit trail)."""

from __future__ import annotations

import re

import pytest
from test_agents import leased, register
from test_dashboard_sessions import browser, csrf_in, sign_in
from users_support import add_user, grant

from ferry.domain.channels import Channel
from ferry.domain.optimizer import Decision, Search
from ferry.server.ui.registry import active_cell

ADMIN_EDITS = [
    ("/channels", {"source_site": "siteA", "destination_site": "siteB", "max_active": "2"}),
    ("/channels/remove", {"source_site": "siteA", "destination_site": "siteB"}),
    ("/scopes", {"name": "lab", "weight": "7"}),
]


def admin_token(api) -> str:
    return str(api.client.headers["Authorization"].removeprefix("Bearer "))


async def audited(api, user: str) -> list[tuple[str, str, int]]:
    records = (await api.client.get("/api/v1/audit", params={"user": user})).json()
    return [(r["action"], r["target"], r["status"]) for r in records]


async def test_a_user_sees_its_scopes_storages_with_their_grants_only(api) -> None:
    await api.client.put("/api/v1/scopes/lab", json={"weight": 1})
    (api.root / "archive").mkdir()
    body = {"name": "archive", "url": (api.root / "archive").as_uri()}
    assert (await api.client.post("/api/v1/storages", json=body)).status_code == 201
    await grant(api, "archive", "lab")
    await grant(api, "archive", "default", read=True, write=False)
    lena = await add_user(api, "lena", "WRITE", scopes=["lab"])
    async with await browser(api) as client:
        await sign_in(client, lena["token"]["token"])
        seen = (await client.get("/storages")).text
    assert re.findall(r'data-storage="([^"]+)"', seen) == ["archive"]
    assert '<span class="grant">lab: read+write</span>' in seen
    assert "default: read" not in seen  # another scope's grant
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        everything = (await client.get("/storages")).text
    assert re.findall(r'data-storage="([^"]+)"', everything) == ["archive", "local"]
    assert "default: read</span>" in everything
    assert "reachable" in everything


@pytest.mark.parametrize("role", ["READ", "WRITE"])
async def test_non_administrators_see_no_edit_forms_and_their_edits_are_refused(
    api,
    role: str,
) -> None:
    channel = {"max_active": 4, "bandwidth": None, "state": "active"}
    assert (await api.client.put("/api/v1/channels/siteA/siteB", json=channel)).status_code == 200
    assert (await api.client.put("/api/v1/scopes/lab", json={"weight": 3})).status_code == 200
    user = await add_user(api, "uma", role)
    async with await browser(api) as client:
        await sign_in(client, user["token"]["token"])
        channels = await client.get("/channels")
        scopes = await client.get("/scopes")
        for shown in (channels, scopes):
            assert shown.status_code == 200
            assert 'action="/channels' not in shown.text
            assert 'action="/scopes' not in shown.text
        assert '<td class="max-active">4</td>' in channels.text
        assert '<span class="weight">3</span>' in scopes.text
        csrf = csrf_in(channels)  # the session's own token: still refused
        for path, form in ADMIN_EDITS:
            assert (await client.post(path, data={**form, "csrf": csrf})).status_code == 403
    assert (await api.client.get("/api/v1/channels")).json()[0]["max_active"] == 4
    assert (await api.client.get("/api/v1/scopes")).json() == [
        {"name": "default", "weight": 1},
        {"name": "lab", "weight": 3},
    ]
    assert await audited(api, "uma") == [
        ("dashboard channel set", "siteA→siteB", 403),
        ("dashboard channel remove", "siteA→siteB", 403),
        ("dashboard scope set", "lab", 403),
    ]


@pytest.mark.parametrize("csrf", [None, "", "forged"])
async def test_an_administrators_edit_needs_the_sessions_csrf_token(api, csrf: str | None) -> None:
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        for path, form in ADMIN_EDITS:
            data = form if csrf is None else {**form, "csrf": csrf}
            assert (await client.post(path, data=data)).status_code == 403
    assert (await api.client.get("/api/v1/channels")).json() == []
    assert {s["name"] for s in (await api.client.get("/api/v1/scopes")).json()} == {"default"}


async def test_an_administrator_sets_and_removes_a_channel_and_sets_a_weight(api) -> None:
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        csrf = csrf_in(await client.get("/channels"))
        form = {"source_site": "siteA", "destination_site": "*", "max_active": "2", "csrf": csrf}
        added = await client.post("/channels", data={**form, "bandwidth": "", "state": "drain"})
        assert (added.status_code, added.headers["location"]) == (303, "/channels")
        assert (await api.client.get("/api/v1/channels")).json() == [
            {
                "source_site": "siteA",
                "destination_site": "*",
                "max_active": 2,
                "bandwidth": None,
                "state": "drain",
                "active": 0,
                "bandwidth_timetable": None,
                "timezone": "UTC",
                "bandwidth_now": None,
                "next_change": None,
                "optimize": False,
                "min_active": None,
                "limit": 2,
                "decision": None,
            }
        ]
        page = (await client.get("/channels")).text
        assert 'data-channel="siteA→*"' in page
        assert re.search(r'<td class="active" id="active-[0-9a-f]+">0</td>', page)
        bad = await client.post("/channels", data={**form, "max_active": "-1"})
        assert bad.status_code == 422
        assert 'class="error"' in bad.text
        nowhere = await client.post("/channels", data={**form, "source_site": "a b"})
        assert nowhere.status_code == 422
        assert "is not a site name" in nowhere.text
        removed = await client.post("/channels/remove", data=form)
        assert removed.status_code == 303
        assert (await client.post("/channels/remove", data=form)).status_code == 404
        weighed = await client.post("/scopes", data={"name": "lab", "weight": "7", "csrf": csrf})
        assert weighed.status_code == 303
        assert (
            await client.post("/scopes", data={"name": "lab", "weight": "0", "csrf": csrf})
        ).status_code == 422
    assert (await api.client.get("/api/v1/channels")).json() == []
    assert {"name": "lab", "weight": 7} in (await api.client.get("/api/v1/scopes")).json()
    records = (await api.client.get("/api/v1/audit")).json()
    dashboard = [
        (r["action"], r["target"], r["status"]) for r in records if "dashboard" in r["action"]
    ]
    assert dashboard == [
        ("dashboard channel set", "siteA→*", 303),
        ("dashboard channel remove", "siteA→*", 303),
        ("dashboard scope set", "lab", 303),
    ]


async def test_the_nav_links_to_the_registry_pages(api) -> None:
    user = await add_user(api, "rita", "READ")
    async with await browser(api) as client:
        await sign_in(client, user["token"]["token"])
        nav = (await client.get("/agents")).text
    for path in ("/storages", "/channels", "/scopes"):
        assert f'<a href="{path}">' in nav


async def test_the_channels_active_counts_come_as_cells_of_their_own(api, eventually) -> None:
    channel = {"max_active": 5, "bandwidth": None, "state": "active"}
    assert (await api.client.put("/api/v1/channels/local/local", json=channel)).status_code == 200
    (api.root / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:out"}
    assert (await api.client.post("/api/v1/transfers", json=body)).status_code == 201
    agent = await register(api, "a1")
    await eventually(lambda: leased(api, agent))
    cell = f'id="{active_cell(Channel("local", "local"))}" hx-swap-oob="true">1</td>'
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        polled = await client.get("/channels/active")
        shown = await client.get("/channels")
    assert cell in polled.text
    assert "<input" not in polled.text  # the edit forms are left alone
    assert 'hx-get="/channels/active"' in shown.text


async def test_a_channels_timetable_is_set_shown_and_kept_by_its_form(api) -> None:
    """Issue 24, item 4: the row's form carries the timetable, so saving a new max active
    does not drop it; a wrong timetable is explained, and nothing changes."""
    timetable = "Mon-Fri 08:00,50M; 19:00,off"
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        csrf = csrf_in(await client.get("/channels"))
        form = {"source_site": "siteA", "destination_site": "*", "csrf": csrf}
        form |= {"bandwidth_timetable": timetable, "timezone": "Europe/Rome"}
        assert (await client.post("/channels", data=form)).status_code == 303
        page = (await client.get("/channels")).text
        assert f'name="bandwidth_timetable" size="24" value="{timetable}"' in page
        assert 'name="timezone" size="12" value="Europe/Rome"' in page
        again = await client.post("/channels", data={**form, "max_active": "3"})
        assert again.status_code == 303
        wrong = await client.post("/channels", data={**form, "bandwidth_timetable": "8:00,1X"})
        assert wrong.status_code == 422
        assert "&#39;1X&#39; is not a rate" in wrong.text
    [channel] = (await api.client.get("/api/v1/channels")).json()
    assert (channel["max_active"], channel["bandwidth_timetable"]) == (3, timetable)
    assert channel["timezone"] == "Europe/Rome"


async def test_an_administrator_sets_an_optimized_channel_and_sees_its_last_decision(api) -> None:
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        csrf = csrf_in(await client.get("/channels"))
        form = {"source_site": "siteA", "destination_site": "siteB", "csrf": csrf}
        optimized = {**form, "optimize": "on", "min_active": "2", "max_active": "32"}
        assert (await client.post("/channels", data=optimized)).status_code == 303
        [channel] = (await api.client.get("/api/v1/channels")).json()
        assert (channel["optimize"], channel["min_active"], channel["limit"]) == (True, 2, 2)
        decision = Decision(4, 2, "throughput grew +80%", 3e6, 6.0, 1.0)
        assert await api.state.store.record_channel_decision(
            ("siteA", "siteB"), Search(limit=4), decision
        )
        page = (await client.get("/channels")).text
        assert '<td class="limit">4</td>' in page
        assert "2 → 4:" in page
        assert "throughput grew +80%" in page
        upside_down = {**optimized, "min_active": "9", "max_active": "8"}
        refused = await client.post("/channels", data=upside_down)
        assert refused.status_code == 422
        assert "must not exceed max_active" in refused.text
