"""The link optimizer: 4 MiB ``mock://`` objects through a simulated link whose total
throughput peaks at 12 copies at once and falls beyond (``engine/mock_link.py``), copied by
two agents (separate processes, sharing the link through its state file) with more slots
than the channel's ceiling. The channel is optimized from a start of 2; after the first
phase the link's peak moves to 6. Every second: the channel's limit, and the objects done
(from the transfer, not from the optimizer). Goals (issue 24): the limit within 12 ± 3 in
≤ 2 minutes, and within 6 ± 3 in ≤ 2 minutes of the change.

    python bench/link_optimizer.py [--phase 150] [--window 5]

Writes docs/link-optimizer.png (limit and throughput over time) and its results for
bench/report.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry_process import FerryServer
from scores import Goal, Result

from ferry.engine.mock_link import LinkModel, SharedLink

OBJECT = 4 * 1024 * 1024
RATE = 24 * 1024 * 1024  # bytes/s in all at the peak
FIRST_PEAK, SECOND_PEAK = 12, 6
BAND = 3  # the limit counts as settled within peak ± BAND
DEADLINE_S = 120.0
MIB = 1024 * 1024
JITTER = 0.5  # each copy's share of the link within ± half the even share
DOCS = Path(__file__).parent.parent / "docs"


@dataclass
class Sample:
    at: float  # seconds since the transfer was submitted
    limit: int
    done: int  # objects done so far
    peak: int  # the link's peak at that moment


def scenario(work: Path, phase_s: float, window_s: float) -> list[Sample]:
    """Run both phases and return a sample per second."""
    work.mkdir(parents=True, exist_ok=True)
    link = SharedLink(work / "link.json", LinkModel(peak=FIRST_PEAK, rate=RATE, jitter=JITTER))
    extra = ("--agent-max-active", "24")
    server = FerryServer(
        work, agents=2, extra=extra, env={"FERRY_OPTIMIZER_WINDOW_S": str(window_s)}
    )
    try:
        _setup(server, link.path)
        transfer = server.submit(
            {"sources": ["mk:batch"], "destination": "sink:out", "kind": "tree"}
        )
        samples = _watch(server, transfer["id"], 0.0, phase_s, FIRST_PEAK)
        link.change_model(peak=SECOND_PEAK)
        samples += _watch(server, transfer["id"], phase_s, 2 * phase_s, SECOND_PEAK)
        server.http.post(f"/api/v1/transfers/{transfer['id']}/cancel")
        return samples
    finally:
        server.stop()


def _setup(server: FerryServer, link: Path) -> None:
    source_options = {
        "files": 100_000, "size": OBJECT, "link": str(link), "peak": FIRST_PEAK, "rate": RATE,
        "jitter": JITTER,
    }  # fmt: skip
    storages = [
        {"name": "mk", "url": "mock://any", "site": "siteA", "options": source_options},
        {"name": "sink", "url": "mock://sink", "site": "siteB", "options": {}},
    ]
    for storage in storages:
        server.http.post("/api/v1/storages", json=storage).raise_for_status()
    channel = {"optimize": True, "min_active": 2, "max_active": 32}
    answer = server.http.put("/api/v1/channels/siteA/siteB", json=channel)
    if answer.status_code != 200:
        raise SystemExit(f"the channel was refused: {answer.text}")


def _watch(
    server: FerryServer, transfer_id: str, since: float, until: float, peak: int
) -> list[Sample]:
    samples = []
    started = time.monotonic() - since
    while (now := time.monotonic() - started) < until:
        [channel] = server.http.get("/api/v1/channels").json()
        done = server.http.get(f"/api/v1/transfers/{transfer_id}").json()["objects"]["done"]
        samples.append(Sample(now, channel["limit"], done, peak))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started - now)))
    return samples


def settled_at(samples: list[Sample], peak: int, since: float) -> float | None:
    """Seconds after ``since`` from which every sample of that peak kept the limit within
    peak ± BAND (None: it never did)."""
    mine = [s for s in samples if s.peak == peak and s.at >= since]
    for k, sample in enumerate(mine):
        if all(abs(s.limit - peak) <= BAND for s in mine[k:]):
            return sample.at - since
    return None


def throughput(samples: list[Sample], span_s: float = 5.0) -> list[tuple[float, float]]:
    """MiB/s over the last ``span_s`` seconds at each sample."""
    rates = []
    for k, sample in enumerate(samples):
        earlier = next((s for s in samples[: k + 1] if sample.at - s.at <= span_s), sample)
        seconds = sample.at - earlier.at
        if seconds > 0:
            rates.append((sample.at, (sample.done - earlier.done) * OBJECT / seconds / MIB))
    return rates


def plot(samples: list[Sample], phase_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, limit_axis = plt.subplots(figsize=(10, 4))
    limit_axis.step([s.at for s in samples], [s.limit for s in samples], where="post",
                    color="tab:blue", label="channel limit")  # fmt: skip
    limit_axis.plot([0, phase_s, phase_s, 2 * phase_s],
                    [FIRST_PEAK, FIRST_PEAK, SECOND_PEAK, SECOND_PEAK],
                    color="tab:blue", linestyle=":", label="link's peak")  # fmt: skip
    limit_axis.set_xlabel("seconds since submission")
    limit_axis.set_ylabel("objects at once")
    rate_axis = limit_axis.twinx()
    times, rates = zip(*throughput(samples), strict=True)
    rate_axis.plot(times, rates, color="tab:orange", linewidth=1, label="throughput (5 s)")
    rate_axis.set_ylabel("MiB/s")
    limit_axis.axvline(phase_s, color="grey", linewidth=1)
    handles = limit_axis.get_legend_handles_labels()
    more = rate_axis.get_legend_handles_labels()
    limit_axis.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right", fontsize=8)
    limit_axis.set_title("Link optimizer: a link peaking at 12 copies, then at 6", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def result(samples: list[Sample], phase_s: float, args: argparse.Namespace) -> Result:
    first = settled_at(samples, FIRST_PEAK, 0.0)
    second = settled_at(samples, SECOND_PEAK, phase_s)
    rates = throughput(samples)
    best = {
        peak: max(r for t, r in rates if (t < phase_s) == (peak == FIRST_PEAK))
        for peak in (FIRST_PEAK, SECOND_PEAK)
    }
    rows: list[list[Any]] = [
        [f"peak {peak}", "never" if at is None else at, _final_limit(samples, peak), best[peak]]
        for peak, at in ((FIRST_PEAK, first), (SECOND_PEAK, second))
    ]
    columns = ["link", "settled after s", "limit at the end", "best MiB/s (5 s)"]
    setup = (
        f"{OBJECT // MIB} MiB mock objects, a link of {RATE // MIB} MiB/s at its peak,"
        " 2 agents × 24 slots,"
        f" windows of {args.window:g} s, {phase_s:g} s per phase"
    )
    outcome = Result("link_optimizer", "Link optimizer", setup, columns, rows)
    outcome.notes.append("![limit and throughput over time](link-optimizer.png)")
    for peak, at in ((FIRST_PEAK, first), (SECOND_PEAK, second)):
        met = at is not None and at <= DEADLINE_S and at <= phase_s - 20
        shown = "never" if at is None else f"{at:.0f} s"
        outcome.goals.append(
            Goal(f"optimizer: limit within {peak} ± {BAND} in ≤ 2 min", shown, met)
        )
    outcome.save()
    return outcome


def _final_limit(samples: list[Sample], peak: int) -> int:
    return [s.limit for s in samples if s.peak == peak][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", type=float, default=150.0, help="seconds per link model")
    parser.add_argument("--window", type=float, default=5.0, help="the optimizer's window, s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-optimizer-") as tmp:
        samples = scenario(Path(tmp), args.phase, args.window)
    plot(samples, args.phase, DOCS / "link-optimizer.png")
    result(samples, args.phase, args).show()


if __name__ == "__main__":
    main()
