"""Users and tokens through the API in-process (issue 19, part 1): an administrator adds a user
and gets its token once; tokens are listed by id and prefix, never shown again; a revoked or
expired token stops working at once."""

from __future__ import annotations

from datetime import timedelta

from users_support import add_user, as_user, grant

PROBLEM = "application/problem+json"


async def test_a_new_user_gets_its_token_once_and_acts_with_its_role(api) -> None:
    alice = await add_user(api, "alice", "WRITE")
    token = alice["token"]["token"]

    assert alice["scopes"] == ["default"]
    assert token.startswith(alice["token"]["prefix"])
    me = (await as_user(api, token, "GET", "/api/v1/whoami")).json()
    assert (me["name"], me["kind"], me["role"], me["scopes"]) == (
        "alice",
        "user",
        "WRITE",
        ["default"],
    )
    (api.root / "a.txt").write_text("a")
    submitted = await as_user(
        api,
        token,
        "POST",
        "/api/v1/transfers",
        json={"sources": ["local:a.txt"], "destination": "local:o"},
    )
    assert submitted.status_code == 201
    assert (await as_user(api, token, "GET", "/api/v1/users")).status_code == 403
    listed = (await api.client.get("/api/v1/tokens")).json()
    assert token not in str(listed)
    assert {t["user"] for t in listed} >= {"admin", "alice"}


async def test_a_read_user_cannot_submit(api) -> None:
    reader = await add_user(api, "rita", "READ")
    body = {"sources": ["local:a.txt"], "destination": "local:o"}
    refused = await as_user(api, reader["token"]["token"], "POST", "/api/v1/transfers", json=body)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM


async def test_a_revoked_token_stops_at_once_and_others_of_the_user_go_on(api) -> None:
    bob = await add_user(api, "bob")
    first = bob["token"]["token"]
    second = (await as_user(api, first, "POST", "/api/v1/tokens", json={})).json()
    assert (await as_user(api, second["token"], "GET", "/api/v1/whoami")).status_code == 200

    revoked = await as_user(api, second["token"], "DELETE", f"/api/v1/tokens/{bob['token']['id']}")
    assert revoked.status_code == 204
    gone = await as_user(api, first, "GET", "/api/v1/whoami")
    assert gone.status_code == 401
    assert "revoked" in gone.json()["detail"]
    assert (await as_user(api, second["token"], "GET", "/api/v1/whoami")).status_code == 200
    mine = (await as_user(api, second["token"], "GET", "/api/v1/tokens")).json()
    assert [t["id"] for t in mine] == [second["id"]]


async def test_a_user_revokes_only_its_own_tokens(api) -> None:
    carol, dave = await add_user(api, "carol"), await add_user(api, "dave")
    theirs = f"/api/v1/tokens/{dave['token']['id']}"
    assert (await as_user(api, carol["token"]["token"], "DELETE", theirs)).status_code == 404
    assert (await as_user(api, dave["token"]["token"], "GET", "/api/v1/whoami")).status_code == 200
    others = await as_user(api, carol["token"]["token"], "GET", "/api/v1/tokens?user=dave")
    assert others.status_code == 403


async def test_an_expired_token_is_refused_and_says_so(api) -> None:
    await add_user(api, "erin")
    store = api.state.store
    expired = "e" * 43
    await store.create_token("erin", expired, api.state.clock() - timedelta(seconds=1))
    refused = await as_user(api, expired, "GET", "/api/v1/whoami")
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


async def test_removing_a_user_ends_its_tokens(api) -> None:
    frank = await add_user(api, "frank")
    assert (await api.client.delete("/api/v1/users/frank")).status_code == 204
    refused = await as_user(api, frank["token"]["token"], "GET", "/api/v1/whoami")
    assert refused.status_code == 401
    assert (await api.client.delete("/api/v1/users/admin")).status_code == 409


async def test_a_user_needs_scopes_that_exist_and_a_free_name(api) -> None:
    body = {"name": "gina", "role": "WRITE", "scopes": ["nowhere"]}
    unknown = await api.client.post("/api/v1/users", json=body)
    assert unknown.status_code == 422
    assert "no scope 'nowhere'" in unknown.json()["detail"]
    await add_user(api, "gina")
    again = await api.client.post("/api/v1/users", json={**body, "scopes": ["default"]})
    assert again.status_code == 409


async def test_a_user_submits_only_into_its_own_scopes(api) -> None:
    """Issue 19: a user whose scopes were ["other"] submitted into "default", and into a
    scope it invented (a new share of the dispatch, weight 1)."""
    assert (await api.client.put("/api/v1/scopes/other", json={"weight": 1})).status_code == 200
    await grant(api, "local", "other")
    olga = await add_user(api, "olga", scopes=["other"])
    token = olga["token"]["token"]
    (api.root / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:o"}

    for scope in ("default", "invented"):
        refused = await as_user(
            api, token, "POST", "/api/v1/transfers", json={**body, "scope": scope}
        )
        assert refused.status_code == 403, refused.text
        assert (
            f"may not submit into scope {scope!r} (its scopes: other)" in refused.json()["detail"]
        )
    push = {"destination": "local:in", "objects": [{"name": "x"}], "scope": "default"}
    assert (
        await as_user(api, token, "POST", "/api/v1/transfers/push", json=push)
    ).status_code == 403
    ok = await as_user(api, token, "POST", "/api/v1/transfers", json={**body, "scope": "other"})
    assert ok.status_code == 201
    scopes = {s["name"] for s in (await api.client.get("/api/v1/scopes")).json()}
    assert "invented" not in scopes
    by_admin = await api.client.post("/api/v1/transfers", json={**body, "scope": "invented"})
    assert by_admin.status_code == 201


async def test_users_see_and_cancel_only_the_transfers_of_their_scopes(api) -> None:
    """Issue 19: a READ user saw every user's transfers, webhook URLs with their ?token=
    included, and a WRITE user canceled the administrator's transfers."""
    for scope in ("physics", "biology"):
        await api.client.put(f"/api/v1/scopes/{scope}", json={"weight": 1})
        await grant(api, "local", scope)
    phil = (await add_user(api, "phil", scopes=["physics"]))["token"]["token"]
    bill = (await add_user(api, "bill", scopes=["biology"]))["token"]["token"]
    reed = (await add_user(api, "reed", "READ", scopes=["physics"]))["token"]["token"]
    hook = "https://hooks.example.org/run?token=s3cret"
    body = {
        "sources": ["local:a.txt"],
        "destination": "local:o",
        "schedule": {"kind": "at", "at": "+1d"},
        "options": {"notify": hook},
    }
    mine = await as_user(api, phil, "POST", "/api/v1/transfers", json={**body, "scope": "physics"})
    theirs = await as_user(
        api, bill, "POST", "/api/v1/transfers", json={**body, "scope": "biology"}
    )
    mine_id, theirs_id = mine.json()["id"], theirs.json()["id"]

    listed = (await as_user(api, phil, "GET", "/api/v1/transfers")).json()["items"]
    assert [t["id"] for t in listed] == [mine_id]
    for path in ("", "/outcomes", "/runs"):
        hidden = await as_user(api, phil, "GET", f"/api/v1/transfers/{theirs_id}{path}")
        assert hidden.status_code == 404, path
    refused = await as_user(api, phil, "POST", f"/api/v1/transfers/{theirs_id}/cancel")
    assert refused.status_code == 404
    assert (await api.client.get(f"/api/v1/transfers/{theirs_id}")).json()["status"] == "STANDBY"

    seen_by_reader = (await as_user(api, reed, "GET", f"/api/v1/transfers/{mine_id}")).json()
    assert "notify" not in seen_by_reader["options"]
    assert "s3cret" not in (await as_user(api, reed, "GET", "/api/v1/transfers")).text
    seen_by_writer = (await as_user(api, phil, "GET", f"/api/v1/transfers/{mine_id}")).json()
    assert seen_by_writer["options"]["notify"] == hook
    everything = (await api.client.get("/api/v1/transfers")).json()["items"]
    assert {mine_id, theirs_id} <= {t["id"] for t in everything}
    canceled = await as_user(api, phil, "POST", f"/api/v1/transfers/{mine_id}/cancel")
    assert canceled.status_code == 200
