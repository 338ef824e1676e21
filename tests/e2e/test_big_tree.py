"""A tree of 100,000 entries through a real server: the agents' memory stays flat."""

from __future__ import annotations

from pathlib import Path

from e2e_support import processes_mentioning

ENTRIES = 100_000
PEAK_LIMIT_MB = 200


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_a_100k_tree_keeps_the_agents_under_200_mb(start_server) -> None:
    server = start_server()
    source = server.cwd / "many"
    for folder in range(100):
        (source / f"d{folder:02d}").mkdir(parents=True)
    for index in range(ENTRIES):
        (source / f"d{index % 100:02d}" / f"f{index:06d}").write_bytes(b"x")

    transfer = server.cli_json(
        "submit", "--tree", "--wait", "local:many", "local:copy", timeout=900
    )

    assert transfer["status"] == "COMPLETED"
    assert transfer["objects"]["done"] == ENTRIES
    agents = processes_mentioning(f"--server {server.url} --name local-")
    assert len(agents) == 2
    peaks = {pid: peak_rss_mb(pid) for pid in agents}
    assert max(peaks.values()) < PEAK_LIMIT_MB, f"agents' peak memory (MB): {peaks}"
    assert sum(1 for _ in (server.cwd / "copy").rglob("f*")) == ENTRIES
