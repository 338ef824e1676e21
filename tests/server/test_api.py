"""The HTTP API in-process: documents, authentication, problem+json, transfers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferSpec
from ferry.server.limits import MAX_BODY_BYTES
from ferry.store.abc import NewTransfer

PROBLEM = "application/problem+json"


def file_body(*sources: str, destination: str = "local:out") -> dict[str, object]:
    return {"sources": list(sources), "destination": destination}


async def future_transfer(api, hours: int = 1) -> str:
    spec = TransferSpec(
        TransferKind.FILE, (parse_location("local:a"),), parse_location("local:out")
    )
    when = datetime.now(UTC) + timedelta(hours=hours)
    transfer, _ = await api.state.store.create_transfer(
        NewTransfer("default", "admin", spec, {"kind": "at"}, when)
    )
    return transfer.id


async def test_healthz_needs_no_token(api) -> None:
    for path in ("/healthz", "/api/v1/healthz"):
        response = await api.anonymous.get(path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


async def test_openapi_document_lists_the_api(api) -> None:
    paths = (await api.anonymous.get("/api/v1/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/transfers",
        "/api/v1/transfers/{transfer_id}",
        "/api/v1/transfers/{transfer_id}/cancel",
        "/api/v1/transfers/{transfer_id}/outcomes",
        "/api/v1/agents/register",
        "/api/v1/agents/{agent_id}/lease",
        "/api/v1/agents/{agent_id}/report",
        "/api/v1/agents/{agent_id}/heartbeat",
    ):
        assert path in paths


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_transfers_need_a_valid_token(api, token) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.anonymous.get("/api/v1/transfers", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_token_file_is_private(api) -> None:
    mode = (api.state.settings.data_dir / "admin.token").stat().st_mode & 0o777
    assert mode == 0o600


async def test_create_get_and_list(api, eventually) -> None:
    created = await api.client.post("/api/v1/transfers", json=file_body("local:a.txt"))
    assert created.status_code == 201
    body = created.json()
    assert body["kind"] == "file"
    assert body["schedule"] == {"kind": "direct"}
    assert body["objects"] == {
        "total": 0,
        "done": 0,
        "failed": 0,
        "skipped": 0,
        "canceled": 0,
        "filtered": 0,
    }
    fetched = await api.client.get(f"/api/v1/transfers/{body['id']}")
    assert fetched.json()["id"] == body["id"]
    listed = (await api.client.get("/api/v1/transfers")).json()
    assert [t["id"] for t in listed["items"]] == [body["id"]]

    async def run_started():
        return (await api.client.get(f"/api/v1/transfers/{body['id']}")).json()["runs"] == 1

    await eventually(run_started)


async def test_list_pages_with_a_cursor(api) -> None:
    ids = {await future_transfer(api, hours) for hours in range(1, 6)}
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/transfers", params=params)).json()
        seen += [t["id"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5


async def test_submission_id_makes_submission_idempotent(api) -> None:
    body = {**file_body("local:a.txt"), "submission_id": "nightly-1"}
    first = await api.client.post("/api/v1/transfers", json=body)
    again = await api.client.post("/api/v1/transfers", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = await api.client.post("/api/v1/transfers", json={**body, "sources": ["local:b.txt"]})
    assert other.status_code == 409
    assert other.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (file_body("local:../x"), "outside storage"),
        (file_body("local:/etc/passwd"), "outside storage"),
        (file_body("local:a", destination="local:../../tmp"), "outside storage"),
        (file_body("nowhere:a"), "not registered"),
        (file_body("no-colon"), "STORAGE:PATH"),
        ({"sources": "local:a", "destination": "local:out"}, "sources"),
        ({"sources": ["local:a"]}, "destination"),
        ({**file_body("local:a"), "colour": "blue"}, "colour"),
        ({**file_body("local:a", "local:b"), "kind": "tree"}, "exactly one source"),
        ({**file_body("local:a"), "options": {"priority": 6}}, "less than or equal to 5"),
        ({**file_body("local:a"), "options": {"retries": 101}}, "less than or equal to 100"),
        ({**file_body("local:a"), "options": {"deadline": "+0s"}}, "a deadline is +DURATION"),
        ({**file_body("local:a"), "options": {"deadline": "soon"}}, "not 'soon'"),
        (
            {**file_body("local:a"), "options": {"deadline": "2030-01-01T12:00:00"}},
            "give the deadline's offset",
        ),
        (
            {
                **file_body("local:a"),
                "schedule": {"kind": "every", "unit": "hour"},
                "options": {"deadline": "2030-01-01T12:00:00Z"},
            },
            "after each run was due",
        ),
    ],
)
async def test_bad_submissions_are_problems_and_write_nothing(api, body, needle) -> None:
    response = await api.client.post("/api/v1/transfers", json=body)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == response.status_code
    assert needle in problem["detail"]
    assert "Traceback" not in response.text
    assert list(api.root.iterdir()) == []
    assert (await api.client.get("/api/v1/transfers")).json()["items"] == []


async def test_a_deadline_is_kept_in_the_transfers_options(api) -> None:
    body = {**file_body("local:a.txt"), "options": {"deadline": "+6h"}}
    response = await api.client.post("/api/v1/transfers", json=body)
    assert response.status_code == 201
    assert response.json()["options"]["deadline_s"] == 6 * 3600
    at = {**file_body("local:b.txt"), "options": {"deadline": "2030-01-01T13:00:00+01:00"}}
    response = await api.client.post("/api/v1/transfers", json=at)
    assert response.json()["options"]["deadline_at"] == "2030-01-01T12:00:00+00:00"


async def test_malformed_json_is_a_problem(api) -> None:
    response = await api.client.post(
        "/api/v1/transfers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_an_unknown_event_kind_is_a_problem_naming_the_kinds(api) -> None:
    response = await api.client.get("/api/v1/events", params={"kind": ["transfer", "bytes"]})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    named = (
        "'transfer', 'run', 'run.late', 'tasks', 'progress', 'agent', 'transfer.paused',"
        " 'transfer.resumed', 'run.skipped', 'agent.paused', 'agent.resumed' or"
        " 'channel.optimized'"
    )
    assert named in response.text


async def test_unknown_transfer_is_404(api) -> None:
    for path in ("/api/v1/transfers/nope", "/api/v1/transfers/nope/outcomes"):
        response = await api.client.get(path)
        assert response.status_code == 404
        assert response.json()["detail"] == "transfer nope not found"


async def test_outcomes_before_the_first_run(api) -> None:
    transfer_id = await future_transfer(api)
    response = await api.client.get(f"/api/v1/transfers/{transfer_id}/outcomes")
    assert response.status_code == 200
    body = response.json()
    assert body["started"] is False
    assert body["message"] == "The transfer has not started yet"
    assert body["objects"] == []


async def test_cancel_standby_then_again_is_409(api) -> None:
    transfer_id = await future_transfer(api)
    first = await api.client.post(f"/api/v1/transfers/{transfer_id}/cancel")
    assert first.status_code == 200
    assert first.json()["status"] == "CANCELED"
    again = await api.client.post(f"/api/v1/transfers/{transfer_id}/cancel")
    assert again.status_code == 409
    assert "already finished" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"sources": ["local:tree"], "destination": "local:tree/copy", "kind": "tree"},
            "inside the source",
        ),
        ({"sources": ["local:"], "destination": "local:copy", "kind": "tree"}, "inside the source"),
        (
            {"sources": ["local:tree"], "destination": "local:tree", "kind": "tree"},
            "inside the source",
        ),
        (
            file_body("local:a/x.txt", "local:b/x.txt"),
            "several sources would be written to local:out/x.txt",
        ),
    ],
)
async def test_transfers_that_could_only_end_badly_are_refused(api, body, needle) -> None:
    response = await api.client.post("/api/v1/transfers", json=body)
    assert response.status_code == 422
    assert needle in response.json()["detail"]


async def test_an_oversized_body_is_refused_before_anything_reads_it(api) -> None:
    from ferry.server.limits import MAX_BODY_BYTES

    big = b"[" + b"0," * (MAX_BODY_BYTES // 2) + b"0]"
    for client in (api.client, api.anonymous):
        response = await client.post(
            "/api/v1/transfers", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM


async def test_an_oversized_streamed_body_is_refused(api) -> None:
    from ferry.server.limits import MAX_BODY_BYTES

    async def chunks():
        yield b"["
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 1):
            yield b"0," * (1 << 19)
        yield b"0]"

    response = await api.anonymous.post(
        "/api/v1/transfers", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def scheduled(**schedule: object) -> dict[str, object]:
    return {**file_body("local:a.txt"), "schedule": schedule}


@pytest.mark.parametrize(
    ("schedule", "needle"),
    [
        ({"kind": "every", "unit": "fortnight"}, "schedule.unit"),
        ({"kind": "every", "unit": "day", "interval": 0}, "schedule.interval"),
        ({"kind": "every", "unit": "day", "timezone": "Mars/Olympus"}, "unknown time zone"),
        (
            {
                "kind": "every",
                "unit": "day",
                "start": "2027-01-10T00:00Z",
                "until": "2027-01-01T00:00Z",
            },
            "until is before start",
        ),
        ({"kind": "cron", "expr": "61 * * * *"}, "bad cron expression"),
        ({"kind": "cron", "expr": "* * *"}, "5 fields"),
        ({"kind": "at"}, "needs 'at'"),
        ({"kind": "every"}, "needs a unit"),
        ({"kind": "cron", "expr": "0 * * * *", "interval": 5}, "takes no interval"),
        ({"kind": "at", "at": "+1h", "count": 3}, "takes no count"),
        ({"kind": "direct", "unit": "day"}, "takes no unit"),
        ({"kind": "at", "at": "+1w"}, "schedule.at"),
        (
            {
                "kind": "every",
                "unit": "day",
                "start": "2020-01-01T00:00Z",
                "until": "2020-02-01T00:00Z",
            },
            "no occurrence left",
        ),
    ],
)
async def test_bad_schedules_are_422(api, schedule, needle) -> None:
    response = await api.client.post("/api/v1/transfers", json=scheduled(**schedule))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]


async def test_a_naive_start_is_read_in_the_schedule_time_zone(api) -> None:
    body = scheduled(kind="every", unit="day", start="2027-03-28T02:30", timezone="Europe/Rome")
    created = (await api.client.post("/api/v1/transfers", json=body)).json()
    assert created["status"] == "STANDBY"
    # 02:30 does not exist in Rome that day: the first instant after the gap is 03:00 CEST.
    assert created["schedule"]["start"] == "2027-03-28T01:00:00+00:00"
    assert created["next_run_at"].startswith("2027-03-28T01:00:00")
    assert created["schedule"]["start_wall"] == "2027-03-28T02:30:00"  # the days after: 02:30


async def test_a_schedule_resubmitted_later_is_the_same_submission(api) -> None:
    body = {**scheduled(kind="every", unit="hour"), "submission_id": "hourly"}
    first = await api.client.post("/api/v1/transfers", json=body)
    again = await api.client.post("/api/v1/transfers", json=body)
    assert (first.status_code, again.status_code) == (201, 200)


async def test_runs_of_a_transfer(api, eventually) -> None:
    created = (await api.client.post("/api/v1/transfers", json=file_body("local:a.txt"))).json()
    url = f"/api/v1/transfers/{created['id']}/runs"

    async def one_run():
        return (await api.client.get(url)).json()

    (run,) = await eventually(one_run)
    assert run["number"] == 1
    assert run["occurrences"] == 1
    assert run["skipped_occurrences"] == 0
    assert set(run) >= {
        "number",
        "status",
        "due_at",
        "started_at",
        "finished_at",
        "objects",
        "bytes",
    }
    assert (await api.client.get("/api/v1/transfers/nope/runs")).status_code == 404


async def test_a_relative_time_is_resolved_by_the_server_and_retries_match(api) -> None:
    body = {**scheduled(kind="at", at="+10m"), "submission_id": "in-ten"}
    first = await api.client.post("/api/v1/transfers", json=body)
    again = await api.client.post("/api/v1/transfers", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    due = datetime.fromisoformat(first.json()["next_run_at"])
    assert timedelta(minutes=9) < due - datetime.now(UTC) <= timedelta(minutes=10)


async def test_one_transfer_takes_100_000_sources_and_no_more(api) -> None:
    sources = [f"local:in/f{i:06d}" for i in range(100_000)]
    body = {**file_body(*sources), "schedule": {"kind": "at", "at": "+1d"}}
    assert len(json.dumps(body)) < MAX_BODY_BYTES
    response = await api.client.post("/api/v1/transfers", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["sources"] == sources
    got = await api.client.get(f"/api/v1/transfers/{response.json()['id']}")
    assert got.json() == response.json()
    too_many = {**body, "sources": [*sources, "local:in/one-more"]}
    refused = await api.client.post("/api/v1/transfers", json=too_many)
    assert refused.status_code == 422
    assert "100000" in refused.json()["detail"]


async def test_a_scopes_weight_keeps_its_own_bound(api) -> None:
    heavy = await api.client.put("/api/v1/scopes/lab", json={"weight": 1001})
    assert heavy.status_code == 422
    assert "less than or equal to 1000" in heavy.text
    assert (await api.client.put("/api/v1/scopes/lab", json={"weight": 1000})).status_code == 200
