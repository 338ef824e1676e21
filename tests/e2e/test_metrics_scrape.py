"""/metrics of a real server after a known transfer: the counters moved by exactly its objects
and bytes, and Prometheus's own checker (promtool, Debian's prometheus) takes the text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from e2e_support import ServerProcess, launch, shutdown, wait_for
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-e2e-token"
SIZES = {"a.bin": 1_000, "b.bin": 23_456, "nested/c.bin": 700_001}
LINK = {"scope": "default", "source_site": "local", "destination_site": "local"}
LIVE = ("REGISTERED", "ALIVE")  # ALIVE from an agent's first heartbeat


def scrape(server: ServerProcess, token: str | None = TOKEN) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
    if token != TOKEN:
        assert response.status_code == 401
        return ""
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return response.text


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for each in family.samples:
            if each.name == name and each.labels == labels:
                return float(each.value)
    return 0.0


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_known_transfer_moves_the_counters_by_its_objects_and_bytes(tmp_path: Path) -> None:
    server = launch(tmp_path / "work", env={"FERRY_METRICS_TOKEN": TOKEN})
    try:
        scrape(server, token=None)  # refused without the token
        scrape(server, token=server.token)  # and with an API token
        for name, size in SIZES.items():
            path = server.cwd / "src" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        # Both agents registered first: the server answers before they do, and three objects
        # may be done by one of them before the other is up.
        wait_for(lambda: len([a for a in server.agents() if a["state"] in LIVE]) == 2)
        before = scrape(server)
        transfer = server.cli_json("submit", "--tree", "--wait", "local:src", "local:dst")
        assert transfer["status"] == "COMPLETED"
        after = scrape(server)
    finally:
        shutdown(server)

    def moved(name: str) -> float:
        return sample(after, name, **LINK) - sample(before, name, **LINK)

    assert moved("ferry_objects_moved_total") == 3
    assert moved("ferry_bytes_moved_total") == sum(SIZES.values()) == 724_457
    assert moved("ferry_objects_failed_total") == moved("ferry_attempts_failed_total") == 0
    assert sample(after, "ferry_transfers", status="COMPLETED") == 1
    assert sum(sample(after, "ferry_agents", state=state) for state in LIVE) == 2
    assert sample(after, "ferry_due_lag_seconds_count") == 1
    assert sample(after, "ferry_lease_latency_seconds_count") >= 1
    assert sample(after, "ferry_store_counts_up") == 1
    assert TOKEN not in after

    checked = promtool(after)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
