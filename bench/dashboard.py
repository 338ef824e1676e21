"""The dashboard under a big store: 100,000 transfers and 1,000,000 objects, 4 clients.

The store is filled as ``big_queue.py`` fills it (a stopped server's SQLite file, SQLAlchemy
Core), in the dashboard's shape: the transfers created over the last day, one every
``day ÷ --transfers`` (the newest now), each ending a minute after it began; 20 % ONGOING (a
third of their objects DONE, the rest QUEUED), 70 % COMPLETED, 10 % COMPLETED_WITH_ERRORS
(one object in twenty FAILED); four links between three sites; the objects that ended were
moved by one agent. The last hour thus holds about 1/24 of the ended objects, which the
overview counts per link. Restarted without agents, the server answers 4 clients signed in
to the dashboard as the administrator, for ``--seconds`` each phase: ``GET /`` (the
overview), then ``GET /transfers/{id}`` of random transfers. Measured: each request's round
trip on loopback, and the server's own time from its ``/metrics`` histogram. Goals: p95 ≤
100 ms for each page.

    python bench/dashboard.py [--transfers 100000] [--tasks-each 10] [--seconds 10]
        [--clients 4]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from big_queue import Layout, fill, hammer, one_path
from ferry_process import FerryServer
from prometheus_client.parser import text_string_to_metric_families
from scores import Goal, Result, percentile
from sqlalchemy import create_engine, insert

from ferry.server.ui.sessions import SESSION_COOKIE
from ferry.store import tables as t

CLIENTS = 4
AGENT = str(uuid.UUID(int=1, version=4))
LINKS = [("site-a", "site-b"), ("site-a", "site-c"), ("site-b", "site-c"), ("site-c", "site-a")]
STATUSES = ["ONGOING"] * 2 + ["COMPLETED"] * 7 + ["COMPLETED_WITH_ERRORS"]
PAGES = {"GET /": "/", "GET /transfers/{id}": "/transfers/{transfer_id}"}
GOAL_MS = 100


def layout(transfers: int) -> Layout:
    return Layout(STATUSES, timedelta(days=1) / transfers, LINKS, AGENT)


def add_agent(database: Path) -> None:
    """The agent that moved the objects, gone since (the overview reads the DONE objects of
    each agent that ever leased)."""
    engine = create_engine(f"sqlite:///{database}")
    now = datetime.now(UTC)
    agent = {
        "id": AGENT,
        "name": "bench-agent",
        "host": "localhost",
        "state": "RETIRED",
        "capabilities": {},
        "status": {},
        "registered_at": now - timedelta(days=2),
        "last_heartbeat": now - timedelta(minutes=1),
    }
    with engine.begin() as conn:
        conn.execute(insert(t.agents), [agent])
    engine.dispose()


def sign_in(url: str, token: str) -> dict[str, str]:
    """The dashboard's sign-in, as a browser does it: the form (its CSRF cookie and field),
    then the token posted; the session's cookie, as a header for the clients."""
    with httpx.Client(base_url=url, timeout=30) as http:
        form = http.get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert found is not None, "no CSRF field in the sign-in form"
        signed = http.post("/login", data={"token": token, "csrf": found.group(1)})
        assert signed.status_code == 303, f"sign-in refused: {signed.status_code}"
        return {"Cookie": f"{SESSION_COOKIE}={signed.cookies[SESSION_COOKIE]}"}


def server_times(exposition: str, route: str) -> tuple[float, float]:
    """The server's own mean and p95 (interpolated in its histogram's buckets, as
    Prometheus's ``histogram_quantile`` does) of GET ``route``, in ms."""
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != "ferry_http_request_duration_seconds":
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("route") != route or labels.get("method") != "GET":
                continue
            if sample.name.endswith("_bucket"):
                buckets.append((float(labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    return 1000 * total / max(count, 1), 1000 * bucket_quantile(sorted(buckets), 0.95)


def bucket_quantile(buckets: list[tuple[float, float]], fraction: float) -> float:
    """``buckets``: (upper bound, cumulative count), in order, +Inf last."""
    rank, lower, below = fraction * buckets[-1][1], 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cumulative - below, 1)
        lower, below = bound, cumulative
    return lower


def overview_path(rng: random.Random) -> str:
    return "/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--tasks-each", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        work = Path(tmp)
        FerryServer(work, agents=0).stop()  # creates the schema
        database = work / ".ferry" / "ferry.db"
        started = time.perf_counter()
        add_agent(database)
        ids = fill(database, args.transfers, args.tasks_each, layout(args.transfers))
        filled = time.perf_counter() - started
        server = FerryServer(work, agents=0)
        try:
            token = (work / ".ferry" / "admin.token").read_text().strip()
            session = sign_in(server.url, token)
            overview = hammer(server.url, session, overview_path, args.seconds, args.clients)
            one_of = partial(one_path, "/transfers/", ids)
            one = hammer(server.url, session, one_of, args.seconds, args.clients)
            exposition = server.http.get("/metrics").text
        finally:
            server.stop()
    latencies = {"GET /": overview, "GET /transfers/{id}": one}
    result(latencies, exposition, filled, args).show()


def result(latencies: dict[str, list[float]], exposition: str, filled: float, args: Any) -> Result:
    columns = ["page", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests/s"]
    columns += ["server mean ms", "server p95 ms"]
    tasks = args.transfers * args.tasks_each
    clients = f"{args.clients} client{'s' if args.clients > 1 else ''}"
    setup = f"{tasks:,} objects in {args.transfers:,} transfers, {clients}, SQLite"
    outcome = Result("dashboard", "Dashboard under a big store", setup, columns, [])
    for name, values in latencies.items():
        ms = [1000 * v for v in values]
        mean, p95 = server_times(exposition, PAGES[name])
        row = [name, statistics.median(ms), percentile(ms, 0.95), percentile(ms, 0.99)]
        row += [max(ms), round(len(ms) / args.seconds), mean, p95]
        outcome.rows.append(row)
        outcome.bars[f"{name} p95"] = row[2]
        goal = f"dashboard: {name} p95 ≤ {GOAL_MS} ms"
        outcome.goals.append(Goal(goal, f"{row[2]:.1f} ms", row[2] <= GOAL_MS))
    outcome.plot_label = f"p95 round trip, ms (goal {GOAL_MS})"
    outcome.reference = GOAL_MS
    outcome.notes.append(f"database filled in {filled:.1f} s")
    outcome.notes.append("server p95: interpolated in the buckets of its /metrics histogram")
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
