"""Pause and resume through the HTTP API in-process: each refusal is problem+json with the
status a client can act on, and nothing changes when it is refused."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"
# Due tomorrow: STANDBY meanwhile, whatever the test does.
LATER = {
    "sources": ["local:a.txt"],
    "destination": "local:out",
    "schedule": {"kind": "at", "at": "+1d"},
}


async def submitted(api) -> str:
    response = await api.client.post("/api/v1/transfers", json=LATER)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_pause_and_resume_show_in_the_transfer(api) -> None:
    transfer_id = await submitted(api)
    paused = await api.client.post(f"/api/v1/transfers/{transfer_id}/pause", json={"now": True})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused_at"] is not None
    shown = (await api.client.get(f"/api/v1/transfers/{transfer_id}")).json()
    assert (shown["status"], shown["pause_stops"]) == ("STANDBY", True)
    assert shown["paused_at"] == paused.json()["paused_at"]
    resumed = await api.client.post(f"/api/v1/transfers/{transfer_id[:8]}/resume")  # a short id
    assert (resumed.status_code, resumed.json()["paused_at"]) == (200, None)


@pytest.mark.parametrize(
    ("setup", "call", "status", "needle"),
    [
        (None, "pause", 404, "not found"),
        ("pause", "pause", 409, "paused already"),
        (None, "resume", 409, "not paused"),
        ("cancel", "pause", 409, "already finished (CANCELED)"),
        ("cancel", "resume", 409, "already finished (CANCELED)"),
    ],
)
async def test_refusals_are_problems(api, setup, call, status, needle) -> None:
    transfer_id = await submitted(api)
    if setup is not None:
        assert (await api.client.post(f"/api/v1/transfers/{transfer_id}/{setup}")).is_success
    target = transfer_id if status != 404 else "0" * 36
    response = await api.client.post(f"/api/v1/transfers/{target}/{call}")
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]


async def test_a_bad_pause_body_is_a_problem(api) -> None:
    transfer_id = await submitted(api)
    response = await api.client.post(f"/api/v1/transfers/{transfer_id}/pause", json={"now": 3})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    unknown = await api.client.post(f"/api/v1/transfers/{transfer_id}/pause", json={"soon": 1})
    assert unknown.status_code == 422
    shown = (await api.client.get(f"/api/v1/transfers/{transfer_id}")).json()
    assert shown["paused_at"] is None  # refused: nothing changed


async def test_an_unknown_agent_is_a_problem(api) -> None:
    response = await api.client.post("/api/v1/agents/nobody/pause")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "agent 'nobody' not found" in response.json()["detail"]
