"""Management through the API in-process: listing pages and filters, cancel of a transfer that
has not started, the not-started outcomes, idempotent submission."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer

PROBLEM = "application/problem+json"
LATER = datetime.now(UTC) + timedelta(days=30)  # never due while a test runs


def waiting(
    *,
    submitter: str = "admin",
    scope: str = "default",
    kind: TransferKind = TransferKind.FILE,
    schedule: str = "at",
    labels: tuple[str, ...] = (),
) -> NewTransfer:
    """A transfer the due loop leaves alone (it is due in a month)."""
    spec = TransferSpec(
        kind,
        (parse_location("local:in"),),
        parse_location("local:out"),
        TransferOptions(labels=labels),
    )
    return NewTransfer(scope, submitter, spec, {"kind": schedule}, LATER)


async def insert(api, count: int, **fields) -> list[str]:
    ids = []
    for _ in range(count):
        transfer, _created = await api.state.store.create_transfer(waiting(**fields))
        ids.append(transfer.id)
    return ids


async def every_page(api, limit: int, **params) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get("/api/v1/transfers", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [t["id"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            return seen


async def test_pages_return_each_transfer_once_while_new_ones_arrive(api) -> None:
    original = await insert(api, 5000)
    paging = asyncio.create_task(every_page(api, 100))
    arrived: list[str] = []
    while not paging.done():  # insert for as long as the paging goes on
        arrived += await insert(api, 5)
    seen = await paging

    assert arrived, "nothing arrived while paging: the test proved nothing"
    assert len(seen) == len(set(seen)), "an id was returned twice"
    assert set(original) <= set(seen)
    assert set(seen) <= set(original) | set(arrived)


async def test_pages_are_newest_first_without_gaps(api) -> None:
    ids = await insert(api, 250)
    assert await every_page(api, 100) == ids[::-1]
    assert await every_page(api, 1000) == ids[::-1]


async def test_listing_filters(api) -> None:
    plain = await insert(api, 2)
    alice = await insert(api, 2, submitter="alice")
    team = await insert(api, 1, scope="team-a")
    trees = await insert(api, 1, kind=TransferKind.TREE)
    periodic = await insert(api, 1, schedule="every")
    nightly = await insert(api, 2, labels=("nightly", "x"))
    everyone = plain + alice + team + trees + periodic + nightly
    expected = {
        (("submitter", "alice"),): alice,
        (("submitter", "admin"),): [i for i in everyone if i not in alice],
        (("scope", "team-a"),): team,
        (("kind", "tree"),): trees,
        (("kind", "file"),): [i for i in everyone if i not in trees],
        (("schedule", "every"),): periodic,
        (("schedule", "at"),): [i for i in everyone if i not in periodic],
        (("schedule", "cron"),): [],
        (("label", "nightly"),): nightly,
        (("label", "x"),): nightly,
        (("label", "none"),): [],
        (("status", "STANDBY"),): everyone,
        (("status", "COMPLETED"),): [],
        (("submitter", "alice"), ("scope", "team-a")): [],
        (("scope", "default"), ("label", "nightly"), ("kind", "file")): nightly,
    }
    for params, ids in expected.items():
        assert sorted(await every_page(api, 3, **dict(params))) == sorted(ids), params


async def test_listing_shows_each_transfer_as_get_does(api) -> None:
    (transfer_id,) = await insert(api, 1, labels=("nightly",))
    (listed,) = (await api.client.get("/api/v1/transfers", params={"label": "nightly"})).json()[
        "items"
    ]
    assert listed == (await api.client.get(f"/api/v1/transfers/{transfer_id}")).json()
    assert listed["options"]["labels"] == ["nightly"]


async def test_bad_filters_are_refused(api) -> None:
    for params in ({"status": "DONE"}, {"kind": "folder"}, {"schedule": "weekly"}):
        response = await api.client.get("/api/v1/transfers", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == PROBLEM
    response = await api.client.get("/api/v1/transfers", params={"cursor": "not-a-cursor"})
    assert response.status_code in (400, 422)


def later_body(**extra: object) -> dict[str, object]:
    return {
        "sources": ["local:a.txt"],
        "destination": "local:out",
        "schedule": {"kind": "at", "at": "+1h"},
        **extra,
    }


async def test_outcomes_before_the_first_run(api) -> None:
    created = (await api.client.post("/api/v1/transfers", json=later_body())).json()
    assert created["status"] == "STANDBY"

    response = await api.client.get(f"/api/v1/transfers/{created['id']}/outcomes")

    assert response.status_code == 200
    body = response.json()
    assert body["started"] is False
    assert body["message"] == "The transfer has not started yet"
    assert body["run"] is None
    assert body["objects"] == []
    assert body["status"] == "STANDBY"


async def test_cancel_of_a_waiting_transfer_is_immediate_and_no_agent_hears_of_it(api) -> None:
    secret = await api.state.store.issue_agent_secret("a1", timedelta(minutes=1))
    agent = (
        await api.anonymous.post("/api/v1/agents/register", json={"secret": secret, "name": "a1"})
    ).json()
    as_agent = {"Authorization": f"Bearer {agent['token']}"}
    created = (await api.client.post("/api/v1/transfers", json=later_body())).json()

    response = await api.client.post(f"/api/v1/transfers/{created['id']}/cancel")

    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "status": "CANCELED",
        "outcome": "canceled",
        "canceled_objects": 0,
        "stopping_objects": 0,
    }
    fetched = (await api.client.get(f"/api/v1/transfers/{created['id']}")).json()
    assert fetched["status"] == "CANCELED"
    assert fetched["runs"] == 0
    assert fetched["next_run_at"] is None
    beat = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/heartbeat",
        json={"active": [], "state": {}},
        headers=as_agent,
    )
    assert beat.json() == {
        "cancel": [],
        "bandwidth": {},
        "commands": [],
        "unlimited": [],
        "next_change_s": None,
    }
    lease = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/lease",
        json={"max_tasks": 10, "wait_s": 0.1},
        headers=as_agent,
    )
    assert lease.json()["tasks"] == []

    again = await api.client.post(f"/api/v1/transfers/{created['id']}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert "already finished" in again.json()["detail"]


async def test_cancel_of_an_unknown_transfer_is_404(api) -> None:
    response = await api.client.post("/api/v1/transfers/no-such-transfer/cancel")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_resubmission_with_the_same_key(api) -> None:
    body = later_body(submission_id="key-1")
    first = await api.client.post("/api/v1/transfers", json=body)
    same = await api.client.post("/api/v1/transfers", json=body)
    other = await api.client.post(
        "/api/v1/transfers", json={**body, "destination": "local:elsewhere"}
    )

    assert (first.status_code, same.status_code, other.status_code) == (201, 200, 409)
    assert same.json()["id"] == first.json()["id"]
    assert same.json()["submission_id"] == "key-1"
    assert other.headers["content-type"] == PROBLEM
    assert first.json()["id"] in other.json()["detail"]
    listed = (await api.client.get("/api/v1/transfers")).json()["items"]
    assert [t["id"] for t in listed] == [first.json()["id"]]


async def test_a_channel_is_stored_between_the_two_sites_it_names(api) -> None:
    # One Path() shared by both parameters made siteA/siteC into siteA→siteA, '* fnal' into
    # the catch-all, and a delete of '* fnal' removed '*→*'.
    def pairs(listed: list[dict]) -> set[tuple[str, str, int | None]]:
        return {(c["source_site"], c["destination_site"], c["max_active"]) for c in listed}

    for source, destination, limit in [("*", "*", 9), ("siteA", "siteC", 2), ("*", "fnal", 3)]:
        reply = await api.client.put(
            f"/api/v1/channels/{source}/{destination}", json={"max_active": limit}
        )
        assert reply.status_code == 200
        assert (reply.json()["source_site"], reply.json()["destination_site"]) == (
            source,
            destination,
        )
    listed = (await api.client.get("/api/v1/channels")).json()
    assert pairs(listed) == {("*", "*", 9), ("siteA", "siteC", 2), ("*", "fnal", 3)}

    assert (await api.client.delete("/api/v1/channels/*/fnal")).status_code == 204
    listed = (await api.client.get("/api/v1/channels")).json()
    assert pairs(listed) == {("*", "*", 9), ("siteA", "siteC", 2)}

    document = (await api.client.get("/api/v1/openapi.json")).json()
    put = document["paths"]["/api/v1/channels/{source_site}/{destination_site}"]["put"]
    assert {p["name"] for p in put["parameters"]} == {"source_site", "destination_site"}
