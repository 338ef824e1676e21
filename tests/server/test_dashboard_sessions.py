"""The dashboard's sessions in-process: what the cookie holds, CSRF on every form, a revoked
token ending its sessions, scopes, and the audit trail of the dashboard's acts."""

from __future__ import annotations

import re

import httpx
import pytest
from test_passive_api import close, put
from users_support import add_user

from ferry.server.ui.sessions import LOGIN_COOKIE, SESSION_COOKIE


async def browser(api) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=api.transport, base_url="http://ferry")


def csrf_in(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={"token": token, "csrf": csrf_in(form)})


def session_cookie(answer: httpx.Response) -> str:
    (cookie,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    return cookie


async def test_the_cookie_holds_a_session_id_never_the_token(api) -> None:
    alice = await add_user(api, "alice", "WRITE")
    token = alice["token"]["token"]
    async with await browser(api) as client:
        signed = await sign_in(client, token)
        assert (signed.status_code, signed.headers["location"]) == (303, "/")
        cookie = session_cookie(signed)
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
        assert token not in cookie
        assert token not in str(client.cookies.jar)
        page = await client.get("/transfers")
        assert page.status_code == 200
        assert "alice · WRITE" in page.text


@pytest.mark.parametrize("csrf", [None, "", "forged"])
async def test_sign_in_needs_its_form_token(api, csrf: str | None) -> None:
    token = (await add_user(api, "alice", "WRITE"))["token"]["token"]
    async with await browser(api) as client:
        await client.get("/login")
        assert client.cookies.get(LOGIN_COOKIE)
        data = {"token": token} if csrf is None else {"token": token, "csrf": csrf}
        refused = await client.post("/login", data=data)
        assert refused.status_code == 403
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")


async def test_an_unknown_or_agent_token_does_not_sign_in(api) -> None:
    async with await browser(api) as client:
        refused = await sign_in(client, "nobody's token")
        assert refused.status_code == 401
        assert "not known" in refused.text
        assert (await client.get("/transfers")).headers["location"] == "/login"


async def test_a_revoked_token_ends_its_sessions(api) -> None:
    bob = await add_user(api, "bob", "WRITE")
    async with await browser(api) as client:
        await sign_in(client, bob["token"]["token"])
        assert (await client.get("/transfers")).status_code == 200
        revoked = await api.client.delete(f"/api/v1/tokens/{bob['token']['id']}")
        assert revoked.status_code == 204
        after = await client.get("/transfers")
        assert (after.status_code, after.headers["location"]) == (303, "/login")


async def test_a_user_sees_its_scopes_only(api) -> None:
    (api.root / "a.txt").write_text("a")
    assert (await api.client.put("/api/v1/scopes/lab", json={"weight": 1})).status_code < 300
    body = {"sources": ["local:a.txt"], "destination": "local:o", "schedule": {"kind": "at"}}
    body["schedule"]["at"] = "+1h"
    theirs = (await api.client.post("/api/v1/transfers", json={**body, "scope": "lab"})).json()
    mine = (await api.client.post("/api/v1/transfers", json=body)).json()
    alice = await add_user(api, "alice", "READ")
    async with await browser(api) as client:
        await sign_in(client, alice["token"]["token"])
        listed = (await client.get("/transfers")).text
        assert mine["id"] in listed
        assert theirs["id"] not in listed
        assert (await client.get(f"/transfers/{theirs['id']}")).status_code == 404
        assert (await client.get(f"/transfers/{theirs['id']}/events")).status_code == 404


async def test_a_dashboard_cancel_is_in_the_audit_trail(api) -> None:
    (api.root / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:o", "schedule": {"kind": "at"}}
    body["schedule"]["at"] = "+1h"
    waiting = (await api.client.post("/api/v1/transfers", json=body)).json()["id"]
    alice = await add_user(api, "alice", "WRITE")
    async with await browser(api) as client:
        await sign_in(client, alice["token"]["token"])
        page = await client.get(f"/transfers/{waiting}")
        canceled = await client.post(f"/transfers/{waiting}/cancel", data={"csrf": csrf_in(page)})
        assert canceled.status_code == 303
    status = (await api.client.get(f"/api/v1/transfers/{waiting}")).json()["status"]
    assert status == "CANCELED"
    records = (await api.client.get("/api/v1/audit", params={"user": "alice"})).json()
    assert [(r["action"], r["target"], r["status"]) for r in records] == [
        ("dashboard cancel", waiting, 303)
    ]


KEPT, NEVER = "<td><code>client:kept.txt</code></td>", "<td><code>client:never.txt</code></td>"


async def test_a_runs_objects_are_filtered_by_status(api) -> None:
    body = {"destination": "local:in", "objects": [{"name": "kept.txt"}, {"name": "never.txt"}]}
    created = (await api.client.post("/api/v1/transfers/push", json=body)).json()
    assert (await put(api, created, "kept.txt", b"kept")).status_code == 200
    assert (await close(api, created)).status_code == 200
    page = f"/transfers/{created['transfer']['id']}"
    async with await browser(api) as client:
        await sign_in(client, api.client.headers["Authorization"].removeprefix("Bearer "))
        everything = (await client.get(page)).text
        done = (await client.get(page, params={"objects": "DONE"})).text
        failed = (await client.get(page, params={"objects": "FAILED"})).text  # never sent
        canceled = (await client.get(page, params={"objects": "CANCELED"})).text

    assert KEPT in everything
    assert NEVER in everything
    assert KEPT in done
    assert NEVER not in done
    assert NEVER in failed
    assert KEPT not in failed
    assert "No CANCELED object." in canceled
