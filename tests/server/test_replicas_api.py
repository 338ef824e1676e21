"""Sources with replicas through the HTTP API in-process: each place is checked as a source
is (its storage exists, the caller's scope may read it, its path stays inside it), refused
as problem+json where it cannot be used, and shown back as the list it was given."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_dashboard_registry import admin_token
from test_dashboard_sessions import browser, sign_in
from users_support import add_user, as_user, grant

from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferSpec
from ferry.store.abc import NewTransfer
from ferry.store.sql_transfers import spec_hash

SUBMIT = "/api/v1/transfers"
PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"sources": [["local:a.txt", "nowhere:a.txt"]], "destination": "local:out"},
            "nowhere",
        ),
        (
            {"sources": [["local:a.txt", "local:../a.txt"]], "destination": "local:out"},
            "outside storage 'local'",
        ),
        (
            {"sources": [["local:in", "local:in2"]], "destination": "local:out", "kind": "tree"},
            "replicas apply to file transfers only",
        ),
        ({"sources": [[]], "destination": "local:out"}, "at least 1 item"),
        (
            {"sources": [[f"local:{n}.txt" for n in range(17)]], "destination": "local:out"},
            "at most 16 items",
        ),
        ({"sources": [["local:a.txt", "local:a.txt"]], "destination": "local:out"}, "twice"),
        (
            {
                "sources": [["local:a.txt", "local:b.txt"]],
                "destination": "local:out",
                "options": {"expected_checksum": "sha256:ab"},
            },
            "set checksum to sha256",
        ),
        (
            {
                "sources": ["local:a.txt", "local:b.txt"],
                "destination": "local:out",
                "options": {"checksum": "md5", "expected_checksum": "md5:ab"},
            },
            "a file transfer of one source",
        ),
        (
            {
                "sources": ["local:a.zip"],
                "destination": "local:out",
                "options": {"checksum": "md5", "expected_checksum": "md5:ab", "unzip": True},
            },
            "not with unzip",
        ),
        (
            {
                "sources": ["local:a.txt"],
                "destination": "local:out",
                "options": {"checksum": "md5", "expected_checksum": "md5:XYZ"},
            },
            "should match pattern",
        ),
    ],
)
async def test_replicas_that_cannot_be_used_are_problems_and_write_nothing(
    api, body, needle
) -> None:
    response = await api.client.post(SUBMIT, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]
    assert (await api.client.get(SUBMIT)).json()["items"] == []


async def test_sources_with_replicas_are_shown_as_given(api) -> None:
    (api.root / "mirror").mkdir()
    added = await api.client.post(
        "/api/v1/storages", json={"name": "mirror", "url": (api.root / "mirror").as_uri()}
    )
    assert added.status_code == 201, added.text
    sources = [["local:a.txt", "mirror:copies/a.txt"], "local:b.txt"]
    created = await api.client.post(
        SUBMIT,
        json={
            "sources": sources,
            "destination": "local:out",
            "schedule": {"kind": "at", "at": "+1d"},
        },
    )
    assert created.status_code == 201, created.text
    shown = (await api.client.get(f"{SUBMIT}/{created.json()['id']}")).json()
    assert shown["sources"] == sources
    rerun = await api.client.post(f"{SUBMIT}/{created.json()['id']}/rerun")
    assert rerun.status_code == 201, rerun.text
    assert rerun.json()["sources"] == sources
    async with await browser(api) as client:
        await sign_in(client, admin_token(api))
        page = await client.get(f"/transfers/{created.json()['id']}")
    assert page.status_code == 200
    assert "<code>local:a.txt</code> (replicas: <code>mirror:copies/a.txt</code>)" in page.text


async def test_each_replica_needs_the_read_grant_a_source_needs(api) -> None:
    await api.client.put("/api/v1/scopes/lab", json={"weight": 1})
    (api.root / "archive").mkdir()
    added = await api.client.post(
        "/api/v1/storages", json={"name": "archive", "url": (api.root / "archive").as_uri()}
    )
    assert added.status_code == 201, added.text
    lena = str((await add_user(api, "lena", scopes=["lab"]))["token"]["token"])
    await grant(api, "local", "lab", read=True, write=True)
    body = {
        "sources": [["local:a.txt", "archive:a.txt"]],
        "destination": "local:out",
        "scope": "lab",
    }
    refused = await as_user(api, lena, "POST", SUBMIT, json=body)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert "scope 'lab' may not read storage 'archive'" in refused.json()["detail"]
    await grant(api, "archive", "lab", read=True, write=False)
    assert (await as_user(api, lena, "POST", SUBMIT, json=body)).status_code == 201


async def test_a_transfer_without_replicas_keeps_its_spec_and_hash() -> None:
    """The hash a file transfer's spec had before replicas existed (the previous release's)."""
    spec = TransferSpec(
        TransferKind.FILE,
        (parse_location("local:a.txt"), parse_location("local:b.txt")),
        parse_location("local:out"),
    )
    new = NewTransfer(
        "default", "admin", spec, {"kind": "direct"}, datetime(2026, 12, 7, tzinfo=UTC)
    )
    assert spec.to_json()["sources"] == ["local:a.txt", "local:b.txt"]
    assert spec_hash(new, spec.to_json()) == HASH_BEFORE_REPLICAS


HASH_BEFORE_REPLICAS = "067ba798a643ecd71843e4270ffd06e5a2039ae0d77962ee54fee9595aa20378"


async def test_an_expected_checksum_is_kept_in_the_options(api) -> None:
    body = {
        "sources": [["local:a.txt", "local:b.txt"]],
        "destination": "local:out",
        "options": {"checksum": "md5", "expected_checksum": "md5:0123abcd"},
        "schedule": {"kind": "at", "at": "+1d"},
    }
    created = await api.client.post(SUBMIT, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["options"]["expected_checksum"] == "md5:0123abcd"
    push = {
        "destination": "local:out",
        "objects": [{"name": "a"}],
        "options": {"checksum": "md5", "expected_checksum": "md5:0123abcd"},
    }
    refused = await api.client.post(f"{SUBMIT}/push", json=push)
    assert refused.status_code == 422
    assert "not to a push or a pull" in refused.json()["detail"]
