"""Storage grants (issue 19, part 2): a user's transfer reads only from storages its scope may
read and writes only to those it may write; a user sees only the storages of its scopes."""

from __future__ import annotations

from users_support import add_user, as_user, grant

SUBMIT = "/api/v1/transfers"


async def prepare(api) -> str:
    """A scope ``lab`` with a user ``lena`` in it, and a second storage ``archive``."""
    await api.client.put("/api/v1/scopes/lab", json={"weight": 1})
    (api.root / "archive").mkdir()
    (api.root / "a.txt").write_text("a")
    added = await api.client.post(
        "/api/v1/storages", json={"name": "archive", "url": (api.root / "archive").as_uri()}
    )
    assert added.status_code == 201, added.text
    return str((await add_user(api, "lena", scopes=["lab"]))["token"]["token"])


async def test_the_servers_own_storages_are_granted_to_the_default_scope(api) -> None:
    local = (await api.client.get("/api/v1/storages/local")).json()
    assert local["grants"] == [
        {"storage": "local", "scope": "default", "read": True, "write": True}
    ]


async def test_a_transfer_reads_and_writes_only_what_its_scope_is_granted(api) -> None:
    lena = await prepare(api)
    body = {"sources": ["local:a.txt"], "destination": "archive:in", "scope": "lab"}

    refused = await as_user(api, lena, "POST", SUBMIT, json=body)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "scope 'lab' may not read storage 'local'" in refused.json()["detail"]

    await grant(api, "local", "lab", read=True, write=False)
    refused = await as_user(api, lena, "POST", SUBMIT, json=body)
    assert "scope 'lab' may not write storage 'archive'" in refused.json()["detail"]
    backwards = {**body, "sources": ["archive:x"], "destination": "local:out"}
    assert (await as_user(api, lena, "POST", SUBMIT, json=backwards)).status_code == 403

    await grant(api, "archive", "lab", read=False, write=True)
    assert (await as_user(api, lena, "POST", SUBMIT, json=body)).status_code == 201
    by_admin = await api.client.post(SUBMIT, json={**body, "destination": "archive:in2"})
    assert by_admin.status_code == 201  # administrators need no grant


async def test_push_and_pull_need_the_grant_of_the_side_they_touch(api) -> None:
    lena = await prepare(api)
    push = {"destination": "archive:in", "objects": [{"name": "x"}], "scope": "lab"}
    pull = {"sources": ["archive:"], "scope": "lab"}
    assert (await as_user(api, lena, "POST", f"{SUBMIT}/push", json=push)).status_code == 403
    assert (await as_user(api, lena, "POST", f"{SUBMIT}/pull", json=pull)).status_code == 403

    await grant(api, "archive", "lab", read=False, write=True)
    assert (await as_user(api, lena, "POST", f"{SUBMIT}/push", json=push)).status_code == 201
    assert (await as_user(api, lena, "POST", f"{SUBMIT}/pull", json=pull)).status_code == 403
    await grant(api, "archive", "lab", read=True, write=False)
    assert (await as_user(api, lena, "POST", f"{SUBMIT}/pull", json=pull)).status_code == 201


async def test_a_user_sees_only_the_storages_and_grants_of_its_scopes(api) -> None:
    lena = await prepare(api)
    await grant(api, "archive", "lab")
    await grant(api, "archive", "default", read=True, write=False)

    seen = (await as_user(api, lena, "GET", "/api/v1/storages")).json()
    assert [(s["name"], [g["scope"] for g in s["grants"]]) for s in seen] == [("archive", ["lab"])]
    assert (await as_user(api, lena, "GET", "/api/v1/storages/local")).status_code == 404
    everything = (await api.client.get("/api/v1/storages")).json()
    assert {s["name"]: len(s["grants"]) for s in everything} == {"archive": 2, "local": 1}


async def test_grants_are_made_and_taken_by_administrators_only(api) -> None:
    lena = await prepare(api)
    body = {"read": True}
    path = "/api/v1/storages/archive/grants/lab"
    assert (await as_user(api, lena, "PUT", path, json=body)).status_code == 403
    assert (await api.client.put(path, json={})).status_code == 422  # a grant of nothing
    assert (await api.client.put("/api/v1/storages/nope/grants/lab", json=body)).status_code == 404
    assert (
        await api.client.put("/api/v1/storages/archive/grants/nope", json=body)
    ).status_code == 422
    assert (await api.client.put(path, json=body)).status_code == 200
    assert (await as_user(api, lena, "DELETE", path)).status_code == 403
    assert (await api.client.delete(path)).status_code == 204
    assert (await api.client.delete(path)).status_code == 404
    body = {"sources": ["archive:x"], "destination": "archive:y", "scope": "lab"}
    assert (await as_user(api, lena, "POST", SUBMIT, json=body)).status_code == 403


async def test_a_removed_storage_takes_its_grants_along(api) -> None:
    await prepare(api)
    await grant(api, "archive", "lab")
    assert (await api.client.delete("/api/v1/storages/archive")).status_code == 204
    added = await api.client.post(
        "/api/v1/storages", json={"name": "archive", "url": (api.root / "archive").as_uri()}
    )
    assert added.json()["grants"] == []
