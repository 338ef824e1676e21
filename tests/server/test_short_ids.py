"""Short ids: any unique prefix of six characters or more stands for a transfer's id, among
the transfers the caller may see."""

from __future__ import annotations

import uuid

import pytest
from users_support import add_user, as_user

from ferry.store import sql_transfers

SOMEDAY = {"kind": "at", "at": "2099-01-01T00:00:00Z"}
TWINS = ("abcdef01-0000-4000-8000-000000000001", "abcdef02-0000-4000-8000-000000000002")


async def submit(api, scope: str = "default") -> str:
    (api.root / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:out", "schedule": SOMEDAY}
    response = await api.client.post("/api/v1/transfers", json={**body, "scope": scope})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def ids_given(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids the store gives the next transfers it creates (then random ones again)."""
    given: list[str] = []
    real = uuid.uuid4
    monkeypatch.setattr(
        sql_transfers.uuid, "uuid4", lambda: uuid.UUID(given.pop(0)) if given else real()
    )
    return given


async def test_a_unique_prefix_stands_for_the_transfer(api) -> None:
    transfer_id = await submit(api)
    short = transfer_id[:8]

    for path in ("", "/runs", "/outcomes"):
        found = await api.client.get(f"/api/v1/transfers/{short}{path}")
        assert found.status_code == 200, (path, found.text)
    assert (await api.client.get(f"/api/v1/transfers/{short}")).json()["id"] == transfer_id
    canceled = await api.client.post(f"/api/v1/transfers/{transfer_id[:6]}/cancel")
    assert canceled.json()["id"] == transfer_id
    assert (await api.client.get(f"/api/v1/transfers/{transfer_id[:5]}")).status_code == 404


async def test_an_ambiguous_prefix_is_409_naming_the_candidates(api, ids_given) -> None:
    ids_given.extend(TWINS)
    assert {await submit(api), await submit(api)} == set(TWINS)

    ambiguous = await api.client.get("/api/v1/transfers/abcdef")
    assert ambiguous.status_code == 409
    assert ambiguous.headers["content-type"] == "application/problem+json"
    assert all(twin in ambiguous.json()["detail"] for twin in TWINS)
    assert (await api.client.get("/api/v1/transfers/abcdef02")).json()["id"] == TWINS[1]
    assert (await api.client.get("/api/v1/transfers/abcdef03")).status_code == 404


async def test_a_prefix_never_reaches_another_scopes_transfer(api, ids_given) -> None:
    await api.client.put("/api/v1/scopes/physics", json={"weight": 1})
    reader = (await add_user(api, "rita", "READ"))["token"]["token"]
    ids_given.extend(TWINS)
    await submit(api, scope="physics")
    mine = await submit(api)

    # the physics twin is not a candidate: the prefix is unique among what rita sees
    seen = await as_user(api, reader, "GET", "/api/v1/transfers/abcdef")
    assert seen.status_code == 200
    assert seen.json()["id"] == mine
    hidden = await as_user(api, reader, "GET", "/api/v1/transfers/abcdef01")
    assert hidden.status_code == 404
    assert TWINS[0] not in hidden.text
