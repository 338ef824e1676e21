"""Two ``ferry server`` processes on one PostgreSQL database (DESIGN §1's scale-out): a tree
submitted through one is run by both servers' loops and the agents, each object exactly once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from e2e_support import ServerProcess, wait_for
from test_tree_transfer import digest_tree


def _make_files(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"part {i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file {i}.bin").write_bytes(os.urandom(1000 + i))


def test_two_servers_on_one_postgresql_move_each_object_once(
    start_server, postgres_url: str, tmp_path: Path
) -> None:
    area, shared = tmp_path / "area", tmp_path / "shared-data-dir"
    _make_files(area / "src", 300)
    common = ["--db", postgres_url, "--data-dir", str(shared), "--storage", f"area={area.as_uri()}"]
    first: ServerProcess = start_server(*common, "--agents", "2")
    second: ServerProcess = start_server(*common, "--agents", "0")

    token = ("--data-dir", str(shared))  # where both servers keep the administrator token
    submitted = second.cli_json("submit", "--tree", "area:src", "area:dst", *token)
    done = wait_for(
        lambda: (
            (t := first.cli_json("status", submitted["id"], *token))["status"]
            not in ("STANDBY", "ONGOING")
            and t
        ),
        timeout=120,
    )

    assert done["status"] == "COMPLETED", done
    assert done["objects"]["done"] == done["objects"]["total"] == 300
    assert digest_tree(area / "dst") == digest_tree(area / "src")
    outcomes = second.cli_json("outcomes", submitted["id"], *token)
    assert len(outcomes["objects"]) == 300
    for obj in outcomes["objects"]:
        assert [a["state"] for a in obj["history"]].count("DONE") == 1, obj
    assert not list((area / "dst").rglob("*.part"))


def test_servers_of_their_own_on_one_postgresql_keep_their_tokens_and_agents(
    start_server, postgres_url: str, tmp_path: Path
) -> None:
    # Each server with its own data directory and two agents: the second one's start replaced
    # the first's administrator token, and both servers' local-1 and local-2 revoked each
    # other's tokens at every registration (207 of 3,000 objects needed a second attempt).
    area = tmp_path / "area"
    _make_files(area / "src", 300)
    common = ["--db", postgres_url, "--storage", f"area={area.as_uri()}", "--agents", "2"]
    first: ServerProcess = start_server(*common)
    second: ServerProcess = start_server(*common)

    agents = wait_for(
        lambda: (
            len(alive := [a for a in first.agents() if a["state"] in ("REGISTERED", "ALIVE")]) == 4
            and alive
        ),
        timeout=60,
    )
    host = socket.gethostname().split(".")[0]
    assert {a["name"] for a in agents} == {
        f"{host}-{server.port}-{n}" for server in (first, second) for n in (1, 2)
    }

    submitted = first.cli_json("submit", "--tree", "area:src", "area:dst")
    done = wait_for(
        lambda: (
            (t := second.cli_json("status", submitted["id"]))["status"]
            not in ("STANDBY", "ONGOING")
            and t
        ),
        timeout=120,
    )
    assert done["status"] == "COMPLETED", done
    assert digest_tree(area / "dst") == digest_tree(area / "src")
    outcomes = first.cli_json("outcomes", submitted["id"])
    assert [len(obj["history"]) for obj in outcomes["objects"]] == [1] * 300
    # None lost its token meanwhile: still four live agents, and no others.
    assert sorted(a["state"] in ("REGISTERED", "ALIVE") for a in first.agents()) == [True] * 4
