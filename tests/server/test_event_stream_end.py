"""The event stream of one transfer ends once the transfer has: a client (or a proxy) that
reads a response whole still gets it."""

from __future__ import annotations

import asyncio

SOMEDAY = {"kind": "at", "at": "2099-01-01T00:00:00Z"}


async def test_the_stream_of_an_ended_transfer_ends_with_its_status(api) -> None:
    (api.root / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:out", "schedule": SOMEDAY}
    transfer_id = (await api.client.post("/api/v1/transfers", json=body)).json()["id"]
    await api.client.post(f"/api/v1/transfers/{transfer_id}/cancel")

    # over the in-process transport a response comes back only once its body is complete
    streamed = await asyncio.wait_for(
        api.client.get("/api/v1/events", params={"transfer": transfer_id}), timeout=10
    )

    assert streamed.status_code == 200
    assert streamed.text.count("event: transfer") == 1
    assert '"status":"CANCELED"' in streamed.text
