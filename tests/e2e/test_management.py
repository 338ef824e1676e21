"""Managing transfers against a real server: cancel in every state, webhooks, the registry
(lost agents, storage health), listings and live following, as a user does it from the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import FERRY, ServerProcess, launch, readers_of, shutdown, wait_for

MB = 1024 * 1024


# --- a server with settings from the environment -------------------------------------------------
@pytest.fixture
def start_server_with_env(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(env: dict[str, str], *extra: str) -> ServerProcess:
        server = launch(tmp_path / f"env-work{len(started)}", *extra, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        shutdown(server)


# --- small helpers over the API ------------------------------------------------------------------
def status_of(server: ServerProcess, transfer_id: str) -> dict[str, Any]:
    response = server.api("GET", f"/api/v1/transfers/{transfer_id}")
    response.raise_for_status()
    return dict(response.json())


def finished(server: ServerProcess, transfer_id: str, timeout: float = 30) -> dict[str, Any]:
    final = ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED")
    return dict(
        wait_for(lambda: (t := status_of(server, transfer_id))["status"] in final and t, timeout)
    )


def outcome_states(server: ServerProcess, transfer_id: str) -> dict[str, str]:
    outcomes = server.api("GET", f"/api/v1/transfers/{transfer_id}/outcomes").json()
    return {o["source"]: o["status"] for o in outcomes["objects"]}


def parts_in(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.part")) if folder.exists() else []


# --- cancel, by status (DESIGN §2) ---------------------------------------------------------------
def test_cancel_of_a_waiting_transfer_ends_it_at_once(start_server) -> None:
    server = start_server("--agents", "1")
    (server.cwd / "a.txt").write_text("a")
    transfer = server.cli_json("submit", "--at", "+1h", "local:a.txt", "local:out")
    outcomes = server.api("GET", f"/api/v1/transfers/{transfer['id']}/outcomes")
    assert outcomes.status_code == 200
    assert outcomes.json()["started"] is False
    assert outcomes.json()["message"] == "The transfer has not started yet"
    assert "The transfer has not started yet" in server.cli("outcomes", transfer["id"]).stdout
    watcher = subprocess.Popen(
        [*FERRY, "watch", transfer["id"]],
        cwd=server.cwd,
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        result = server.cli_json("cancel", transfer["id"])

        assert result["status"] == "CANCELED"
        assert (result["canceled_objects"], result["stopping_objects"]) == (0, 0)
        after = status_of(server, transfer["id"])
        assert (after["status"], after["runs"], after["next_run_at"]) == ("CANCELED", 0, None)
        (agent,) = wait_for(server.agents)  # registered (it may start after the cancel)
        assert agent["stats"]["total"] == 0  # no agent was given anything
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
        watcher.wait()
    assert watcher.returncode == 1, err  # watch exits 1 unless COMPLETED
    assert f"transfer {transfer['id']}: CANCELED" in out


def test_cancel_of_a_running_transfer_stops_its_copies_and_removes_partial_files(
    start_server,
) -> None:
    heartbeat = 1.0
    server = start_server("--agents", "1", "--heartbeat", str(heartbeat))
    server.cli("channel", "set", "*", "*", "--max-active", "1", check=True)  # one at a time
    (server.cwd / "in").mkdir()
    (server.cwd / "in" / "big.bin").write_bytes(os.urandom(16 * MB))
    (server.cwd / "in" / "small.bin").write_bytes(b"small")
    transfer = server.cli_json(
        "submit", "--bandwidth", "1M", "local:in/big.bin", "local:in/small.bin", "local:out"
    )
    out = server.cwd / "out"
    # Copying: its agent has the source open (a local copy has no name until it is in place).
    wait_for(lambda: readers_of(server, server.cwd / "in" / "big.bin"), timeout=30)
    assert outcome_states(server, transfer["id"]) == {
        "local:in/big.bin": "ACTIVE",
        "local:in/small.bin": "QUEUED",
    }

    started = time.monotonic()
    printed = server.cli("cancel", transfer["id"], check=True).stdout
    assert printed.strip() == f"{transfer['id']}: canceled; 1 active object is being stopped"
    assert outcome_states(server, transfer["id"])["local:in/small.bin"] == "CANCELED"
    final = finished(server, transfer["id"])
    took = time.monotonic() - started

    assert final["status"] == "CANCELED"
    assert took < heartbeat + 3.0, f"canceled after {took:.1f} s"
    assert final["objects"]["canceled"] == 2
    assert outcome_states(server, transfer["id"]) == {
        "local:in/big.bin": "CANCELED",
        "local:in/small.bin": "CANCELED",
    }
    assert parts_in(out) == []
    assert sorted(p.name for p in out.iterdir()) == []
    (agent,) = server.agents()
    assert agent["stats"]["canceled"] == 1
    assert agent["stats"]["succeeded"] == 0
    log = server.log.read_text()
    assert "Traceback" not in log


def test_cancel_of_a_periodic_transfer_between_runs_stops_its_series(start_server) -> None:
    server = start_server("--agents", "1")
    (server.cwd / "a.txt").write_text("a")
    # The series started 50 s ago: one run now, the next 10 s from now.
    start = (datetime.now(UTC) - timedelta(seconds=50)).isoformat(timespec="seconds")
    transfer = server.cli_json(
        "submit", "--every", "minute", "--start", start, "local:a.txt", "local:out"
    )
    between = wait_for(
        lambda: (
            (t := status_of(server, transfer["id"]))["runs"] == 1 and t["status"] == "STANDBY" and t
        ),
        timeout=10,
    )
    next_run_at = datetime.fromisoformat(between["next_run_at"])
    assert next_run_at > datetime.now(UTC)

    printed = server.cli("cancel", transfer["id"], check=True).stdout

    assert printed.strip() == f"{transfer['id']}: canceled"
    after = status_of(server, transfer["id"])
    assert (after["status"], after["next_run_at"]) == ("CANCELED", None)
    # Past the occurrence that would have come next: still one run, still CANCELED.
    wait_for(lambda: datetime.now(UTC) > next_run_at + timedelta(seconds=2), timeout=15)
    after = status_of(server, transfer["id"])
    assert (after["status"], after["runs"]) == ("CANCELED", 1)
    assert len(server.cli_json("runs", transfer["id"])) == 1


def test_cancel_of_a_finished_transfer_is_409(start_server) -> None:
    server = start_server("--agents", "1")
    (server.cwd / "a.txt").write_text("a")
    transfer = server.cli_json("submit", "--wait", "local:a.txt", "local:out")
    assert transfer["status"] == "COMPLETED"

    response = server.api("POST", f"/api/v1/transfers/{transfer['id']}/cancel")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "already finished" in response.json()["detail"]
    refused = server.cli("cancel", transfer["id"])
    assert refused.returncode == 1
    assert "already finished" in refused.stderr
    assert status_of(server, transfer["id"])["status"] == "COMPLETED"


# --- webhooks ------------------------------------------------------------------------------------
class HookServer:
    """A webhook receiver on loopback that answers 500 to the first POST of each run."""

    def __init__(self) -> None:
        self.received: list[tuple[float, int, dict[str, Any]]] = []  # (when, status answered, body)
        self.lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hooks.lock:
                    seen = any(
                        (b["transfer"], b["run"]) == (body["transfer"], body["run"])
                        for _, _, b in hooks.received
                    )
                    code = 200 if seen else 500
                    hooks.received.append((time.monotonic(), code, body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, code, body in self.received if code == 200]

    def refused(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, code, body in self.received if code != 200]


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    receiver = HookServer()
    receiver.thread.start()
    yield receiver
    receiver.httpd.shutdown()
    receiver.httpd.server_close()


def test_each_run_is_posted_to_its_hook_once_after_retries(start_server_with_env, hooks) -> None:
    server = start_server_with_env({"FERRY_NOTIFY_RETRY_S": "0.2"}, "--agents", "1")
    (server.cwd / "a.txt").write_text("alpha")
    (server.cwd / "b.txt").write_text("beta!")
    ids = [
        server.cli_json("submit", "--wait", "--notify", hooks.url, source, "local:out")["id"]
        for source in ("local:a.txt", "local:b.txt")
    ]
    failing = server.cli("submit", "--wait", "--json", "--retries", "0", "--notify", hooks.url,
                         "local:nothing.txt", "local:out")  # fmt: skip
    assert failing.returncode == 1  # --wait: exit 1 unless COMPLETED
    missing = json.loads(failing.stdout)
    wait_for(lambda: len(hooks.delivered()) == 3, timeout=15)

    delivered = {body["transfer"]: body for body in hooks.delivered()}
    assert sorted(delivered) == sorted([*ids, missing["id"]])
    for transfer_id in ids:
        body = delivered[transfer_id]
        assert body["event"] == "run.finished"
        assert (body["run"], body["status"], body["bytes"]) == (1, "COMPLETED", 5)
        assert body["objects"] == {
            "total": 1,
            "done": 1,
            "failed": 0,
            "skipped": 0,
            "canceled": 0,
            "filtered": 0,
            "deleted": 0,
        }
    assert delivered[missing["id"]]["status"] == "FAILED"
    assert delivered[missing["id"]]["objects"]["failed"] == 1
    assert sorted(b["transfer"] for b in hooks.refused()) == sorted(delivered)  # each retried
    for transfer_id in delivered:
        first, retry = [when for when, _, b in hooks.received if b["transfer"] == transfer_id]
        assert retry - first < 1.5  # FERRY_NOTIFY_RETRY_S=0.2: the first backoff is 0.1-0.2 s
    # A delivered run is never posted again. (An absence: there is no state to poll for.)
    time.sleep(1.0)
    assert len(hooks.delivered()) == 3
    assert len(hooks.received) == 6


# --- the registry --------------------------------------------------------------------------------
def agent_named(server: ServerProcess, name: str) -> dict[str, Any] | None:
    found = [a for a in server.cli_json("agents") if a["name"] == name]
    return found[0] if found else None


def test_an_agent_that_stops_answering_is_lost(start_server) -> None:
    server = start_server("--agents", "0", "--heartbeat", "1", "--agent-lost-after", "3")
    agent = subprocess.Popen(
        [*FERRY, "agent", "--server", server.url, "--token", server.token, "--name", "remote-1"],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        alive = wait_for(
            lambda: (a := agent_named(server, "remote-1")) and a["state"] == "ALIVE" and a,
            timeout=20,
        )
        assert alive["version"]
        os.kill(agent.pid, signal.SIGSTOP)  # hung: no heartbeat, no exit
        stopped = time.monotonic()
        lost = wait_for(
            lambda: (a := agent_named(server, "remote-1"))["state"] == "LOST" and a, timeout=15
        )
        assert time.monotonic() - stopped < 3 + 2 + 3  # lost-after, the registry's pass, slack
        assert lost["id"] == alive["id"]
    finally:
        agent.kill()
        agent.wait(10)


def test_a_deleted_storage_folder_becomes_unhealthy(start_server_with_env, tmp_path) -> None:
    server = start_server_with_env({"FERRY_HEALTH_CHECK_FAST_S": "1"}, "--agents", "0")
    folder = tmp_path / "d-root"
    folder.mkdir()
    added = server.cli_json("storage", "add", "d", folder.as_uri())
    assert added["health"]["reachable"] is True
    assert added["health"]["error"] is None

    shutil.rmtree(folder)

    def health() -> dict[str, Any] | None:
        (d,) = [s for s in server.cli_json("storage", "ls") if s["name"] == "d"]
        h = d["health"]
        return h if h is not None and (not h["reachable"] or h["error"]) else None

    assert str(folder) in (wait_for(health, timeout=15)["error"] or str(folder))


def test_storage_ls_shows_a_missing_root(module_server, tmp_path) -> None:
    module_server.cli("storage", "add", "gone", (tmp_path / "gone").as_uri(), check=True)
    (gone,) = [s for s in module_server.cli_json("storage", "ls") if s["name"] == "gone"]
    assert "does not exist" in gone["health"]["error"]

    human = module_server.cli("storage", "ls", check=True).stdout

    (row,) = [line for line in human.splitlines() if " gone " in line]
    assert " ok " not in row


# --- listings ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def population(module_server) -> dict[str, dict[str, Any]]:
    """Transfers of every kind on the module's server, each finished unless it waits."""
    cwd = module_server.cwd
    (cwd / "in" / "tree").mkdir(parents=True)
    for name, text in {"a.txt": "alpha", "b.txt": "beta"}.items():
        (cwd / "in" / name).write_text(text)
    for n in range(3):
        (cwd / "in" / "tree" / f"f{n}.txt").write_text("x" * (n + 1))
    submit = module_server.cli_json
    made = {
        "pair": submit("submit", "--wait", "--scope", "team-a", "--label", "nightly",
                       "local:in/a.txt", "local:in/b.txt", "local:out/pair"),
        "tree": submit("submit", "--wait", "--tree", "local:in/tree", "local:out/tree"),
        "later": submit("submit", "--at", "+1h", "--label", "nightly",
                        "local:in/a.txt", "local:out/later"),
    }  # fmt: skip
    broken = module_server.cli("submit", "--wait", "--json", "--retries", "0",
                               "local:in/missing.txt", "local:out/broken")  # fmt: skip
    made["broken"] = json.loads(broken.stdout)
    return made


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {t["id"] for t in items}


def test_ls_by_status_lists_transfers_as_status_shows_them(module_server, population) -> None:
    assert population["pair"]["status"] == "COMPLETED"
    assert population["tree"]["status"] == "COMPLETED"
    assert population["broken"]["status"] == "FAILED"

    completed = module_server.cli_json("ls", "--status", "COMPLETED")

    assert {t["status"] for t in completed} == {"COMPLETED"}
    assert ids(completed) >= {population["pair"]["id"], population["tree"]["id"]}
    for listed in completed:
        assert listed == module_server.cli_json("status", listed["id"])
    failed = module_server.cli_json("ls", "--status", "FAILED")
    assert population["broken"]["id"] in ids(failed)
    assert {t["status"] for t in failed} == {"FAILED"}


def test_ls_filters(module_server, population) -> None:
    ls = module_server.cli_json
    p = {name: t["id"] for name, t in population.items()}
    assert ids(ls("ls", "--scope", "team-a")) == {p["pair"]}
    assert ids(ls("ls", "--label", "nightly")) == {p["pair"], p["later"]}
    assert p["tree"] in ids(ls("ls", "--kind", "tree"))
    assert {t["kind"] for t in ls("ls", "--kind", "tree")} == {"tree"}
    assert p["tree"] not in ids(ls("ls", "--kind", "file"))
    assert ids(ls("ls", "--schedule", "at")) == {p["later"]}
    assert p["later"] not in ids(ls("ls", "--schedule", "direct"))
    submitter = population["pair"]["submitter"]
    assert set(p.values()) <= ids(ls("ls", "--submitter", submitter))
    assert ls("ls", "--submitter", "nobody-at-all") == []
    assert ids(ls("ls", "--scope", "team-a", "--status", "FAILED")) == set()


def test_agents_json_counts_what_moved(module_server, population) -> None:
    everything = module_server.cli_json("ls", "--all")
    moved = sum(t["objects"]["done"] for t in everything)
    moved_bytes = sum(t["bytes"] for t in everything)
    assert moved >= 5  # the pair and the tree

    # An agent is REGISTERED until its first heartbeat, 5 s after it registered: the
    # population, quicker now that --wait follows the events, can end before that.
    agents = wait_for(
        lambda: (
            (found := module_server.cli_json("agents"))
            and all(a["state"] == "ALIVE" for a in found)
            and found
        ),
        timeout=20,
    )

    assert len(agents) == 2
    for agent in agents:
        assert set(agent) >= {"id", "name", "state", "host", "version", "active", "stats"}
        assert agent["host"]
        assert agent["version"]
        assert agent["active"] == 0
        stats = agent["stats"]
        assert set(stats) == {
            "ongoing", "succeeded", "failed", "canceled", "total", "bytes", "throughput"
        }  # fmt: skip
        assert stats["total"] >= stats["succeeded"] + stats["failed"] + stats["canceled"]
        assert stats["throughput"] >= 0
    assert sum(a["stats"]["succeeded"] for a in agents) == moved
    assert sum(a["stats"]["bytes"] for a in agents) == moved_bytes
    assert sum(a["stats"]["failed"] for a in agents) == 1  # the missing source, not retried


def test_runs_json(module_server, population) -> None:
    (run,) = module_server.cli_json("runs", population["tree"]["id"])
    assert run["number"] == 1
    assert run["status"] == "COMPLETED"
    assert run["objects"]["done"] == 3
    assert run["bytes"] == 1 + 2 + 3
    assert run["started_at"] <= run["finished_at"]
    assert module_server.cli_json("runs", population["later"]["id"]) == []


# --- following a transfer live -------------------------------------------------------------------
def test_watch_and_the_event_stream_follow_a_transfer_to_its_end(module_server) -> None:
    server = module_server
    server.cli("storage", "add", "slow", "mock://slow", "--option", "size=1000", check=True)
    transfer = server.cli_json(
        "submit", "--at", "+2s", "slow:x?time=0.5", "slow:y?time=0.5", "local:out/watched"
    )
    watcher = subprocess.Popen(
        [*FERRY, "watch", transfer["id"]],
        cwd=server.cwd,
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        frames = list(events_until_final(server, transfer["id"]))
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
        watcher.wait()

    statuses = [data["status"] for kind, data in frames if kind == "transfer"]
    assert statuses[0] == "STANDBY"  # the stream starts with the current status
    assert statuses[-1] == "COMPLETED"
    assert "ONGOING" in statuses
    runs = [data for kind, data in frames if kind == "run"]
    assert runs[-1]["status"] == "COMPLETED"
    assert runs[-1]["objects"]["done"] == 2
    assert watcher.returncode == 0, err
    lines = out.splitlines()
    assert f"transfer {transfer['id']}: ONGOING" in lines
    assert lines[-1] == f"transfer {transfer['id']}: COMPLETED"


def events_until_final(server: ServerProcess, transfer_id: str) -> Iterator[tuple[str, Any]]:
    headers = {"Authorization": f"Bearer {server.token}"}
    url = f"{server.url}/api/v1/events"
    with httpx.stream(
        "GET", url, params={"transfer": transfer_id}, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                data = json.loads(line.removeprefix("data: "))
                yield kind, data
                if kind == "transfer" and data["status"] in ("COMPLETED", "FAILED", "CANCELED"):
                    return
