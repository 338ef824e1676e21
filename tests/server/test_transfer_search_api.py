"""The transfers list's text search through the API (``q``) and the dashboard's filter form."""

from __future__ import annotations

from test_dashboard_sessions import browser, sign_in


async def submit(api, destination: str, labels: list[str]) -> str:
    body = {
        "sources": ["local:a.txt"],
        "destination": destination,
        "schedule": {"kind": "at", "at": "+1d"},
        "options": {"labels": labels},
    }
    created = await api.client.post("/api/v1/transfers", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_the_api_finds_transfers_by_label_path_or_id_start(api) -> None:
    nightly = await submit(api, "local:backups/2030_01", ["nightly"])
    other = await submit(api, "local:backups/2030-01", [])

    async def found(q: str) -> list[str]:
        listed = await api.client.get("/api/v1/transfers", params={"q": q})
        assert listed.status_code == 200, listed.text
        return [item["id"] for item in listed.json()["items"]]

    assert await found("nightly") == [nightly]
    assert await found("2030_01") == [nightly]  # "_" matches only itself
    assert await found("BACKUPS/") == [other, nightly]
    assert await found(other[:8]) == [other]
    assert await found("  ") == [other, nightly]  # blank: no search
    paged = await api.client.get("/api/v1/transfers", params={"q": "backups", "limit": 1})
    assert paged.json()["items"][0]["id"] == other
    rest = await api.client.get(
        "/api/v1/transfers",
        params={"q": "backups", "limit": 1, "cursor": paged.json()["next_cursor"]},
    )
    assert [item["id"] for item in rest.json()["items"]] == [nightly]


async def test_an_overlong_search_is_refused_as_a_problem(api) -> None:
    refused = await api.client.get("/api/v1/transfers", params={"q": "x" * 201})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "q" in refused.text
    nul = await api.client.get("/api/v1/transfers", params={"q": "a\x00b"})
    assert nul.status_code == 400  # as a NUL anywhere in a path or query (limits.py)


async def test_the_search_is_in_the_openapi_document(api) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    parameters = document["paths"]["/api/v1/transfers"]["get"]["parameters"]
    (q,) = [p for p in parameters if p["name"] == "q"]
    assert "label" in q["description"]
    assert q["schema"]["anyOf"][0]["maxLength"] == 200


async def test_the_dashboards_filter_form_searches_and_keeps_the_text(api) -> None:
    nightly = await submit(api, "local:backups/x", ["nightly"])
    other = await submit(api, "local:elsewhere", [])
    async with await browser(api) as client:
        await sign_in(client, api.client.headers["Authorization"].removeprefix("Bearer "))
        page = await client.get("/transfers", params={"q": "nightly"})
    assert page.status_code == 200
    assert f'href="/transfers/{nightly}"' in page.text
    assert f'href="/transfers/{other}"' not in page.text
    assert 'name="q" value="nightly"' in page.text
