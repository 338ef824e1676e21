"""An agent given several servers of one PostgreSQL database (``--server URL1,URL2``) works for
the first, and when it is killed goes on with the next: the transfer completes, each object
moved once, nothing reported lost on the way."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from daemon_support import Daemons, transfer, wait_agent, wait_final
from e2e_support import wait_for
from test_tree_transfer import digest_tree

FILES = 40
SIZE = 50_000
BANDWIDTH = "100K"  # each object takes about half a second: the kill finds most not done


def test_an_agent_goes_on_with_the_next_server_when_its_server_is_killed(
    daemons: Daemons, postgres_url: str, tmp_path: Path
) -> None:
    area = tmp_path / "area"
    for n in range(FILES):
        (area / "src" / f"d{n % 3}").mkdir(parents=True, exist_ok=True)
        (area / "src" / f"d{n % 3}" / f"f{n}").write_bytes(os.urandom(SIZE))
    common = ["--db", postgres_url, "--storage", f"area={area.as_uri()}", "--agents", "0"]
    first, second = daemons.server(*common), daemons.server(*common)
    secret = first.cli_json("agent-invite", "edge")["secret"]
    both = f"{first.url},{second.url}"
    agent = daemons.agent(first, "edge", "--secret", secret, "--max-active", "2", url=both)
    wait_agent(second, "edge", agent.pid)

    submitted = second.cli_json(
        "submit", "--tree", "--bandwidth", BANDWIDTH, "area:src", "area:dst"
    )
    wait_for(lambda: transfer(second, submitted["id"])["objects"]["done"] >= 1, timeout=60)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    done = wait_final(second, submitted["id"], timeout=120)

    assert done["status"] == "COMPLETED", done
    assert done["objects"]["done"] == done["objects"]["total"] == FILES
    assert digest_tree(area / "dst") == digest_tree(area / "src")
    outcomes = second.cli_json("outcomes", submitted["id"])
    for obj in outcomes["objects"]:
        assert [a["state"] for a in obj["history"]] == ["DONE"], obj
    assert not list((area / "dst").rglob("*.part"))
    assert agent.process.poll() is None  # it never stopped working
    assert f"going on with {second.url}" in agent.log.read_text()
