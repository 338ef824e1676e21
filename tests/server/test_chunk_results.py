"""The /results route of the agent protocol through the real app: a carrier leased with its
stored list, its objects and a single task reported in one body, a body sent twice."""

from __future__ import annotations

from datetime import timedelta

from ferry.api.protocol import PROTOCOL
from ferry.domain.chunks import PlannedChunk
from ferry.domain.locations import parse_location


async def test_a_results_body_reports_tasks_and_chunks_once(api, eventually) -> None:
    store = api.state.store
    secret = await store.issue_agent_secret("a1", timedelta(minutes=1))
    registered = await api.anonymous.post(
        "/api/v1/agents/register",
        json={"secret": secret, "name": "a1", "capabilities": {"protocol": PROTOCOL}},
    )
    agent = registered.json()
    assert agent["protocol"] == PROTOCOL
    headers = {"Authorization": f"Bearer {agent['token']}"}
    (api.root / "a.txt").write_text("a")
    submitted = await api.client.post(
        "/api/v1/transfers", json={"sources": ["local:a.txt"], "destination": "local:o"}
    )
    transfer_id = submitted.json()["id"]

    async def opened():
        transfer = await store.get_transfer(transfer_id)
        return transfer if transfer.runs == 1 else None

    transfer = await eventually(opened)
    objects = (("c0", 1), ("c1", 2))
    carrier = PlannedChunk(parse_location("local:"), parse_location("local:o"), 0, objects)
    await store.add_tasks(transfer, 1, [carrier])
    held: list[dict] = []

    async def both_leased() -> bool:
        reply = await api.anonymous.post(
            f"/api/v1/agents/{agent['id']}/lease",
            json={"max_tasks": 10, "wait_s": 0},
            headers=headers,
        )
        held.extend(reply.json()["tasks"])
        return len(held) == 2

    await eventually(both_leased)
    [chunked] = [task for task in held if task["chunk"] is not None]
    [single] = [task for task in held if task["chunk"] is None]
    assert chunked["chunk"]["objects"] == [["c0", 1], ["c1", 2]]
    assert chunked["chunk"]["only"] is None
    assert (chunked["source"], chunked["destination"], chunked["size"]) == ("local:", "local:o", 3)

    body = {
        "tasks": [{"task": single["id"], "lease": single["lease"], "state": "DONE", "bytes": 1}],
        "chunks": [
            {
                "task": chunked["id"],
                "lease": chunked["lease"],
                "results": [
                    [0, "DONE", 1, None, None, None, False],
                    [1, "DONE", 2, None, None, None, False],
                ],
                "ended": True,
            }
        ],
    }
    url = f"/api/v1/agents/{agent['id']}/results"
    first = await api.anonymous.post(url, json=body, headers=headers)
    second = await api.anonymous.post(url, json=body, headers=headers)

    assert first.json() == {"accepted": 3, "ignored": 0}
    assert second.json() == {"accepted": 0, "ignored": 3}

    async def completed():
        reply = await api.client.get(f"/api/v1/transfers/{transfer_id}")
        return reply.json() if reply.json()["status"] == "COMPLETED" else None

    finished = await eventually(completed)
    assert finished["status"] == "COMPLETED"
    refused = await api.anonymous.post(url, json={"chunks": [{"task": 1}]}, headers=headers)
    assert refused.status_code == 422
