"""Servers of one PostgreSQL database tell each other what they did: an event stream of a
server with no agents shows the objects that another server's agents moved."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
from e2e_support import ServerProcess

DEADLINE_S = 60.0


def test_a_servers_event_stream_shows_what_another_servers_agents_did(
    start_server, postgres_url: str, tmp_path: Path
) -> None:
    area = tmp_path / "area"
    (area / "src").mkdir(parents=True)
    for n in range(20):
        (area / "src" / f"f{n}").write_bytes(os.urandom(1000))
    common = ["--db", postgres_url, "--storage", f"area={area.as_uri()}"]
    working: ServerProcess = start_server(*common, "--agents", "2")
    watching: ServerProcess = start_server(*common, "--agents", "0")

    seen: list[tuple[str, dict]] = []
    headers = {"Authorization": f"Bearer {watching.token}"}
    url = f"{watching.url}/api/v1/events?kind=transfer&kind=tasks"
    with httpx.stream("GET", url, headers=headers, timeout=60) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith(": listening"))
        submitted = working.cli_json("submit", "--tree", "area:src", "area:dst")
        kind, deadline = "", time.monotonic() + DEADLINE_S
        for line in lines:  # keep-alive comments come at least every 15 s
            if time.monotonic() > deadline:
                break
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if data.get("transfer") == submitted["id"]:
                    seen.append((kind, data))
                if kind == "transfer" and data.get("status") == "COMPLETED":
                    break

    kinds = [kind for kind, _ in seen]
    assert "tasks" in kinds, seen  # published only where the agents report: the other server
    assert seen[-1][1].get("status") == "COMPLETED", seen
    ended = [c for kind, data in seen if kind == "tasks" for c in data["changes"]]
    assert ended
    assert {c["state"] for c in ended} <= {"DONE", "ACTIVE"}, ended
