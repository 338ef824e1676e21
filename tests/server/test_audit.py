"""The audit trail through the API in-process (issue 19, part 5): every state-changing call is
recorded once, with who, from where, what, on what and the result, and never a secret; reads
and the agents' protocol are not; administrators list and verify it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from ferry.server.audit_trail import entry_of
from ferry.store import tables as t

SUBMIT = "POST /api/v1/transfers"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def audit(api, **params: Any) -> list[dict[str, Any]]:
    response = await api.client.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def acts(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["actor"], r["action"], r["status"]) for r in records]


async def add_user(api, name: str, role: str) -> str:
    body = {"name": name, "role": role, "scopes": ["default"]}
    response = await api.client.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"]["token"])


async def test_acts_are_recorded_with_who_where_what_and_result(api) -> None:
    (api.root / "a.txt").write_text("a")
    token = await add_user(api, "alice", "WRITE")
    body = {"sources": ["local:a.txt"], "destination": "local:o"}
    submitted = await api.anonymous.post("/api/v1/transfers", json=body, headers=bearer(token))
    transfer = submitted.json()["id"]
    await api.client.get(f"/api/v1/transfers/{transfer}")  # a read: not recorded
    await api.client.post(f"/api/v1/transfers/{transfer}/cancel")
    await api.client.put("/api/v1/scopes/physics", json={"weight": 2})
    made = (await api.client.post("/api/v1/tokens", json={"user": "alice"})).json()

    records = await audit(api)
    assert acts(records) == [
        ("admin", "POST /api/v1/users", 201),
        ("alice", SUBMIT, 201),
        ("admin", "POST /api/v1/transfers/{transfer_id}/cancel", 200),
        ("admin", "PUT /api/v1/scopes/{name}", 200),
        ("admin", "POST /api/v1/tokens", 201),
    ]
    user, submit, cancel, scope, new_token = records
    assert (user["target"], user["role"]) == ("alice", "ADMINISTRATOR")
    assert user["address"] == "127.0.0.1"
    assert (submit["target"], submit["role"]) == (transfer, "WRITE")
    assert cancel["params"] == {"transfer_id": transfer}
    assert scope["params"] == {"name": "physics"}
    assert new_token["target"] == made["id"]
    text = str(records)
    assert token not in text
    assert made["token"] not in text
    assert [r["prev_hash"] for r in records[1:]] == [r["hash"] for r in records[:-1]]


async def test_refused_calls_are_recorded_with_their_status(api) -> None:
    reader = await add_user(api, "rita", "READ")
    body = {"sources": ["local:a.txt"], "destination": "local:o"}
    await api.anonymous.post("/api/v1/transfers", json=body, headers=bearer(reader))
    await api.anonymous.post("/api/v1/transfers", json=body)
    await api.anonymous.delete("/api/v1/users/rita", headers=bearer("not-a-token-" * 3))
    await api.client.delete("/api/v1/storages/nowhere")

    assert acts(await audit(api))[1:] == [
        ("rita", SUBMIT, 403),
        (None, SUBMIT, 401),
        (None, "DELETE /api/v1/users/{name}", 401),
        ("admin", "DELETE /api/v1/storages/{name}", 404),
    ]


async def test_agents_are_recorded_as_invited_and_registered_not_at_work(api) -> None:
    invited = await api.client.post("/api/v1/agents/invite", json={"name": "far", "ttl_s": 60})
    secret = invited.json()["secret"]
    registered = await api.anonymous.post(
        "/api/v1/agents/register", json={"secret": secret, "name": "far"}
    )
    agent = registered.json()
    for call, body in (("heartbeat", {}), ("results", {"chunks": []}), ("report", [])):
        answer = await api.anonymous.post(
            f"/api/v1/agents/{agent['id']}/{call}", json=body, headers=bearer(agent["token"])
        )
        assert answer.status_code == 200, (call, answer.text)

    records = await audit(api)
    assert acts(records) == [
        ("admin", "POST /api/v1/agents/invite", 201),
        (None, "POST /api/v1/agents/register", 200),
    ]
    assert [r["target"] for r in records] == ["far", "far"]
    assert secret not in str(records)
    assert agent["token"] not in str(records)


async def test_the_trail_is_listed_by_user_and_time_for_administrators_only(api) -> None:
    token = await add_user(api, "wendy", "WRITE")
    await api.anonymous.post("/api/v1/tokens", json={}, headers=bearer(token))
    first = (await audit(api))[0]

    assert acts(await audit(api, user="wendy")) == [("wendy", "POST /api/v1/tokens", 201)]
    later = first["at"].replace("+00:00", "")  # a time without its zone is UTC
    assert len(await audit(api, since=later)) == 2
    after = await audit(api, since=(await audit(api))[-1]["at"], limit=1)
    assert [r["seq"] for r in after] == [2]
    for bad in ("0001-01-01T00:00+14:00", "0.5", "2026-13-01"):
        refused = await api.client.get("/api/v1/audit", params={"since": bad})
        assert refused.status_code == 422, bad  # out of range; a number; no such month
    refused = await api.anonymous.get("/api/v1/audit", headers=bearer(token))
    assert refused.status_code == 403
    refused = await api.anonymous.get("/api/v1/audit/verify", headers=bearer(token))
    assert refused.status_code == 403


async def test_verify_names_the_first_changed_record(api) -> None:
    for weight in (2, 3, 4):
        await api.client.put("/api/v1/scopes/physics", json={"weight": weight})
    whole = (await api.client.get("/api/v1/audit/verify")).json()
    assert (whole["ok"], whole["records"], whole["first_bad"]) == (True, 3, None)
    assert whole["head"] == (await audit(api))[-1]["hash"]

    with api.state.store.engines[0].begin() as conn:
        conn.execute(update(t.audit).where(t.audit.c.seq == 2).values(status=403))

    broken = (await api.client.get("/api/v1/audit/verify")).json()
    assert (broken["ok"], broken["records"], broken["first_bad"]) == (False, 1, 2)
    assert broken["why"] == "record 2 was changed: its hash does not match its contents"


async def test_an_unwritable_trail_does_not_undo_the_act(api, monkeypatch) -> None:
    async def failing(entry: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(api.state.store, "append_audit", failing)
    response = await api.client.put("/api/v1/scopes/physics", json={"weight": 2})
    assert response.status_code == 200
    monkeypatch.undo()
    assert await audit(api) == []
    assert [s["name"] for s in (await api.client.get("/api/v1/scopes")).json()] == [
        "default",
        "physics",
    ]


def test_records_keep_only_a_bounded_path() -> None:
    scope = {"method": "POST", "path": "/api/v1/" + "x" * 1000, "client": ("::1", 5)}
    entry = entry_of(scope, 404)
    assert (len(entry.action), entry.params, entry.address) == (256, {}, "::1")
