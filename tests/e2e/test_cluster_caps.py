"""Three servers and six agents on one PostgreSQL database under a channel of max-active 12
(issue 22, acceptance 1): the active units, sampled every 100 ms in the database, never exceed
12, and every one of 20,000 objects is DONE exactly once."""

from __future__ import annotations

from cluster_support import Sampler, cluster, mock_storages, one_value
from daemon_support import wait_final

MAX_ACTIVE = 12
FOLDERS, FILES = 100, 200  # 20,000 objects
TAKES_S = 0.005  # each object's open: enough that the agents' 48 slots would overrun the cap
ACTIVE = "SELECT count(*) FROM tasks WHERE state = 'ACTIVE'"
DONE_ONCE = "SELECT count(*), count(DISTINCT object) FROM outcomes WHERE state = 'DONE'"


def test_three_servers_keep_a_channels_max_active_and_move_each_object_once(
    start_server, postgres_url: str
) -> None:
    first, second, third = cluster(start_server, postgres_url, 3)
    first.cli("channel", "set", "*", "*", "--max-active", str(MAX_ACTIVE), check=True)
    mock_storages(second, folders=FOLDERS, files=FILES, time=TAKES_S)

    sampler = Sampler(postgres_url, ACTIVE)  # a carrier counts one, as the cap counts it
    sampler.start()
    try:
        submitted = second.cli_json("submit", "--tree", "mk:batch", "sink:out")
        done = wait_final(third, submitted["id"], timeout=300)
    finally:
        sampler.stop()

    assert done["status"] == "COMPLETED", done
    assert done["objects"]["done"] == done["objects"]["total"] == FOLDERS * FILES
    assert max(sampler.values()) <= MAX_ACTIVE, sorted(sampler.values())[-20:]
    assert max(sampler.values()) >= MAX_ACTIVE - 2  # the cap was what held them back
    # one DONE outcome each: none moved twice
    assert one_value(postgres_url, DONE_ONCE) == (FOLDERS * FILES, FOLDERS * FILES)
