"""The storage registry through the API: credentials go in and never come out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

PROBLEM = "application/problem+json"
SECRET = "s3cr3t-value-that-must-never-show"


def storage(name: str, url: str, **extra: object) -> dict[str, object]:
    return {"name": name, "url": url, **extra}


async def test_a_storage_with_credentials_shows_their_names_only(api, tmp_path) -> None:
    (tmp_path / "archive").mkdir()
    body = storage("archive", (tmp_path / "archive").as_uri(), credentials={"password": SECRET})
    added = await api.client.post("/api/v1/storages", json=body)
    assert added.status_code == 201
    assert added.json()["credentials"] == ["password"]
    assert added.json()["health"]["reachable"] is True
    for path in ("/api/v1/storages", "/api/v1/storages/archive"):
        response = await api.client.get(path)
        assert SECRET not in response.text
    database = (api.state.settings.data_dir / "ferry.db").read_bytes()
    wal = api.state.settings.data_dir / "ferry.db-wal"
    assert SECRET.encode() not in database + (wal.read_bytes() if wal.exists() else b"")
    key = api.state.settings.data_dir / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600


async def test_credentials_reach_an_agent_inside_its_lease(api, tmp_path, eventually) -> None:
    (tmp_path / "vault").mkdir()
    (tmp_path / "vault" / "a.txt").write_text("a")
    body = storage("vault", (tmp_path / "vault").as_uri(), credentials={"auto_mkdir": "yes"})
    await api.client.post("/api/v1/storages", json=body)
    secret = await api.state.store.issue_agent_secret("a1", timedelta(minutes=1))
    agent = (
        await api.anonymous.post("/api/v1/agents/register", json={"secret": secret, "name": "a1"})
    ).json()
    await api.client.post(
        "/api/v1/transfers", json={"sources": ["vault:a.txt"], "destination": "local:out"}
    )

    async def leased():
        reply = await api.anonymous.post(
            f"/api/v1/agents/{agent['id']}/lease",
            json={"max_tasks": 5, "wait_s": 0.2},
            headers={"Authorization": f"Bearer {agent['token']}"},
        )
        return reply.json() if reply.json()["tasks"] else None

    reply = await eventually(leased)
    assert reply["storages"]["vault"]["options"] == {"auto_mkdir": "yes"}


async def test_a_storage_whose_root_is_missing_is_reachable_and_says_so(api, tmp_path) -> None:
    body = storage("later", (tmp_path / "does-not-exist").as_uri())
    added = (await api.client.post("/api/v1/storages", json=body)).json()
    assert added["health"]["reachable"] is True
    assert "does not exist yet" in added["health"]["error"]


async def test_an_unreachable_storage_is_added_and_shown_down(api) -> None:
    options = {"username": "nobody", "known_hosts": None, "connect_timeout": 2}
    body = storage("nowhere", "sftp://127.0.0.1:9/data", options=options)
    added = (await api.client.post("/api/v1/storages", json=body)).json()
    assert added["health"]["reachable"] is False
    assert added["health"]["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (storage("x", "nosuch://host/path"), "no storage backend"),
        (storage("x", "sftp://user:hunter2@host/path"), "not in the URL"),
        (storage("x", "file:///tmp", site="UNKNOWN"), "reserved"),
        (storage("9lives", "file:///tmp"), "name"),
        (storage("x", "https://host/data?access_token=hunter2"), "'access_token' in a credential"),
        (storage("x", "s3://b", options={"secret": "hunter2"}), "put secret in credentials"),
        (storage("x", "https://h/", options={"headers": {"Authorization": "hunter2"}}), "headers"),
        (storage("x", "file:///tmp/a\x00b"), "control characters"),
        (storage("x", "file://elsewhere/etc"), "not a host"),
    ],
)
async def test_bad_storages_are_refused(api, body, needle) -> None:
    response = await api.client.post("/api/v1/storages", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]
    assert "hunter2" not in response.text


async def test_only_an_administrator_adds_storages(api) -> None:
    secret = await api.state.store.issue_agent_secret("a1", timedelta(minutes=1))
    agent = (
        await api.anonymous.post("/api/v1/agents/register", json={"secret": secret, "name": "a1"})
    ).json()
    response = await api.anonymous.post(
        "/api/v1/storages",
        json=storage("x", "file:///tmp"),
        headers={"Authorization": f"Bearer {agent['token']}"},
    )
    assert response.status_code == 403


async def test_a_storage_in_use_is_not_removed(api, tmp_path) -> None:
    (tmp_path / "box").mkdir()
    await api.client.post("/api/v1/storages", json=storage("box", (tmp_path / "box").as_uri()))
    schedule = {"kind": "every", "unit": "day", "start": "2099-01-01T00:00Z"}
    created = await api.client.post(
        "/api/v1/transfers",
        json={"sources": ["box:a"], "destination": "local:out", "schedule": schedule},
    )
    refused = await api.client.delete("/api/v1/storages/box")
    assert refused.status_code == 409
    assert created.json()["id"] in refused.json()["detail"]
    await api.client.post(f"/api/v1/transfers/{created.json()['id']}/cancel")
    assert (await api.client.delete("/api/v1/storages/box")).status_code == 204
    assert (await api.client.get("/api/v1/storages/box")).status_code == 404


async def test_a_storage_is_replaced_only_when_asked_and_not_while_in_use(api, tmp_path) -> None:
    # POST of a taken name replaced it silently: waiting transfers then ran against whatever
    # the new URL pointed at (file:///etc), though a DELETE was refused while they waited.
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = storage("src", (tmp_path / "one").as_uri()), storage("src", "file:///etc")
    assert (await api.client.post("/api/v1/storages", json=first)).status_code == 201

    again = await api.client.post("/api/v1/storages", json=second)
    assert again.status_code == 409
    assert "--replace" in again.json()["detail"]

    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    waiting = await api.client.post(
        "/api/v1/transfers",
        json={
            "sources": ["src:a"],
            "destination": "local:o",
            "schedule": {"kind": "at", "at": later},
        },
    )
    assert waiting.status_code == 201
    refused = await api.client.put("/api/v1/storages/src", json=second)
    assert refused.status_code == 409
    assert "used by 1 waiting or running transfers" in refused.json()["detail"]
    assert (await api.client.get("/api/v1/storages/src")).json()["url"] == first["url"]

    await api.client.post(f"/api/v1/transfers/{waiting.json()['id']}/cancel")
    moved = storage("src", (tmp_path / "two").as_uri())
    replaced = await api.client.put("/api/v1/storages/src", json=moved)
    assert replaced.status_code == 200
    assert (await api.client.get("/api/v1/storages/src")).json()["url"] == moved["url"]
