"""kill -9 of one of three servers on one PostgreSQL database mid-transfer (issue 22,
acceptance 2): the transfer completes on the other two, and the objects in flight on the
killed server's agents are back in the queue within the lease TTL + 5 s."""

from __future__ import annotations

import signal
import time

from cluster_support import Sampler, cluster, mock_storages, one_value
from daemon_support import wait_final
from e2e_support import wait_for

TTL_S = 10.0
FOLDERS, FILES = 100, 200  # 20,000 objects
TAKES_S = 0.005
DONE_ONCE = "SELECT count(*), count(DISTINCT object) FROM outcomes WHERE state = 'DONE'"


def test_the_transfer_completes_when_one_of_three_servers_is_killed(
    start_server, postgres_url: str
) -> None:
    timing = ("--lease-ttl", str(TTL_S), "--heartbeat", "2")
    first, second, third = cluster(start_server, postgres_url, 3, *timing)
    mock_storages(second, folders=FOLDERS, files=FILES, time=TAKES_S)
    killed = [a["id"] for a in first.agents() if a["name"].endswith(f"-{first.port}-1")]
    killed += [a["id"] for a in first.agents() if a["name"].endswith(f"-{first.port}-2")]
    assert len(killed) == 2
    theirs = (
        "SELECT count(*) FROM tasks WHERE state = 'ACTIVE'"
        f" AND lease_agent IN ('{killed[0]}', '{killed[1]}')"
    )

    submitted = second.cli_json("submit", "--tree", "mk:batch", "sink:out")
    wait_for(lambda: one_value(postgres_url, theirs)[0] >= 2, timeout=60, interval=0.02)
    first.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.process.wait(30)
    held = Sampler(postgres_url, theirs)
    held.start()
    try:
        wait_for(lambda: held.samples and held.samples[-1][1] == 0, timeout=TTL_S + 30)
        back_after = held.samples[-1][0] - killed_at
        done = wait_final(third, submitted["id"], timeout=300)
    finally:
        held.stop()

    assert back_after <= TTL_S + 5, back_after
    assert done["status"] == "COMPLETED", done
    assert done["objects"]["done"] == done["objects"]["total"] == FOLDERS * FILES
    assert one_value(postgres_url, DONE_ONCE) == (FOLDERS * FILES, FOLDERS * FILES)
