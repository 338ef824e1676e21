"""Two ``ferry server`` processes on one PostgreSQL database (DESIGN §1's scale-out): a tree
submitted through one is run by both servers' loops and the agents, each object exactly once."""

from __future__ import annotations

import os
from pathlib import Path

from e2e_support import ServerProcess, wait_for
from test_tree_transfer import digest_tree


def _make_files(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"part {i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file {i}.bin").write_bytes(os.urandom(1000 + i))


def test_two_servers_on_one_postgresql_move_each_object_once(  # type: ignore[no-untyped-def]
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
