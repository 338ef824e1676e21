"""Re-running a transfer: a new transfer with its spec, scope and labels, to run now, made
through the one way in for a submission; from the API and from a transfer's page."""

from __future__ import annotations

from typing import Any

from test_dashboard_sessions import browser, csrf_in, sign_in
from users_support import add_user, as_user

WAITING = {
    "sources": ["local:a.txt", "local:b.txt"],
    "destination": "local:out",
    "schedule": {"kind": "at", "at": "+1d"},
    "options": {"labels": ["nightly", "raw"], "checksum": "sha256", "priority": 5},
}


async def waiting(api) -> dict[str, Any]:
    created = await api.client.post("/api/v1/transfers", json=WAITING)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_a_rerun_is_a_new_transfer_of_the_same_spec_to_run_now(api) -> None:
    first = await waiting(api)
    alice = await add_user(api, "alice", "WRITE")
    answer = await as_user(
        api, alice["token"]["token"], "POST", f"/api/v1/transfers/{first['id'][:8]}/rerun"
    )
    assert answer.status_code == 201, answer.text
    again = answer.json()
    assert again["id"] != first["id"]
    for field in ("kind", "sources", "destination", "options", "scope"):
        assert again[field] == first[field], field
    assert again["schedule"]["kind"] == "direct"
    assert again["submitter"] == "alice"
    assert again["submission_id"] is None
    labeled = await api.client.get("/api/v1/transfers", params={"label": "raw"})
    assert {t["id"] for t in labeled.json()["items"]} == {first["id"], again["id"]}
    records = (await api.client.get("/api/v1/audit", params={"user": "alice"})).json()
    assert [(r["action"], r["target"], r["status"]) for r in records] == [
        ("POST /api/v1/transfers/{transfer_id}/rerun", again["id"], 201)
    ]


async def test_a_rerun_asks_what_a_submission_asks(api) -> None:
    first = await waiting(api)
    path = f"/api/v1/transfers/{first['id']}/rerun"
    assert (await api.client.put("/api/v1/scopes/other", json={"weight": 1})).is_success
    rita = await add_user(api, "rita", "READ")
    otto = await add_user(api, "otto", "WRITE", scopes=["other"])
    refused = await as_user(api, rita["token"]["token"], "POST", path)
    assert (refused.status_code, refused.headers["content-type"]) == (
        403,
        "application/problem+json",
    )
    assert (await as_user(api, otto["token"]["token"], "POST", path)).status_code == 404
    unknown = await api.client.post("/api/v1/transfers/00000000-0000-4000-8000-000000000000/rerun")
    assert unknown.status_code == 404
    # The storage its scope may no longer read: refused as a submission would be.
    will = await add_user(api, "will", "WRITE")
    assert (await api.client.delete("/api/v1/storages/local/grants/default")).status_code == 204
    ungranted = await as_user(api, will["token"]["token"], "POST", path)
    assert ungranted.status_code == 403
    assert "may not read storage 'local'" in ungranted.json()["detail"]


async def test_a_push_is_not_rerun(api) -> None:
    body = {"destination": "local:in", "objects": [{"name": "x.txt"}]}
    pushed = (await api.client.post("/api/v1/transfers/push", json=body)).json()
    refused = await api.client.post(f"/api/v1/transfers/{pushed['transfer']['id']}/rerun")
    assert refused.status_code == 409
    assert "push or pull again" in refused.json()["detail"]


async def test_the_rerun_is_in_the_openapi_document_with_its_answers(api) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    operation = document["paths"]["/api/v1/transfers/{transfer_id}/rerun"]["post"]
    assert set(operation["responses"]) == {"201", "400", "401", "403", "404", "409", "422", "503"}
    schema = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TransferPublic"}


async def test_the_rerun_button_is_a_writers_and_asks_for_the_forms_token(api) -> None:
    first = await waiting(api)
    rita = await add_user(api, "rita", "READ")
    async with await browser(api) as client:
        await sign_in(client, rita["token"]["token"])
        page = await client.get(f"/transfers/{first['id']}")
        assert 'id="rerun"' not in page.text
        forged = await client.post(f"/transfers/{first['id']}/rerun", data={"csrf": csrf_in(page)})
        assert forged.status_code == 403
    alice = await add_user(api, "alice", "WRITE")
    async with await browser(api) as client:
        await sign_in(client, alice["token"]["token"])
        page = await client.get(f"/transfers/{first['id']}")
        assert 'id="rerun"' in page.text
        assert (await client.post(f"/transfers/{first['id']}/rerun", data={})).status_code == 403
        rerun = await client.post(f"/transfers/{first['id']}/rerun", data={"csrf": csrf_in(page)})
    assert rerun.status_code == 303
    again = rerun.headers["location"].rsplit("/", 1)[1]
    assert (await api.client.get(f"/api/v1/transfers/{again}")).json()["sources"] == WAITING[
        "sources"
    ]
    records = (await api.client.get("/api/v1/audit")).json()
    acts = [(r["actor"], r["action"], r["target"], r["status"]) for r in records]
    assert ("rita", "dashboard rerun", first["id"], 403) in acts
    assert ("alice", "dashboard rerun", again, 303) in acts
