"""The agent protocol in-process: registration, leases, reports, heartbeats, a real runner."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import fsspec
import httpx
import orjson
import pytest
from fsspec.implementations.local import LocalFileSystem

from ferry.agent.runner import AgentRunner
from ferry.agent.session import ServerSession
from ferry.api.protocol import (
    LeasedTaskPublic,
    LeaseReply,
    ReportedState,
    TaskReport,
    decode,
    encode,
)
from ferry.config import ServerSettings
from ferry.domain.transfers import Storage
from ferry.server.app import create_app

PROBLEM = "application/problem+json"


async def register(api, name: str = "a1") -> dict:
    secret = await api.state.store.issue_agent_secret(name, timedelta(minutes=1))
    response = await api.anonymous.post(
        "/api/v1/agents/register", json={"secret": secret, "name": name}
    )
    assert response.status_code == 200
    return {**response.json(), "secret": secret}


def bearer(agent: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent['token']}"}


async def leased(api, agent: dict) -> list[dict]:
    """One short lease call: the tasks it returned (maybe none yet)."""
    reply = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/lease",
        json={"max_tasks": 5, "wait_s": 0.2},
        headers=bearer(agent),
    )
    return list(reply.json()["tasks"])


async def test_a_secret_registers_once_and_only_its_agent(api) -> None:
    agent = await register(api, "a1")
    reused = await api.anonymous.post(
        "/api/v1/agents/register", json={"secret": agent["secret"], "name": "a1"}
    )
    assert reused.status_code == 403
    assert "already used" in reused.json()["detail"]
    other = await api.state.store.issue_agent_secret("a2", timedelta(minutes=1))
    stolen = await api.anonymous.post(
        "/api/v1/agents/register", json={"secret": other, "name": "a3"}
    )
    assert stolen.status_code == 403
    assert "another agent" in stolen.json()["detail"]
    unknown = await api.anonymous.post(
        "/api/v1/agents/register", json={"secret": "f" * 64, "name": "a1"}
    )
    assert unknown.status_code == 403
    assert unknown.headers["content-type"] == PROBLEM


async def test_an_agent_token_is_for_its_own_calls_only(api) -> None:
    one, two = await register(api, "a1"), await register(api, "a2")
    response = await api.anonymous.post(
        f"/api/v1/agents/{two['id']}/lease", json={"max_tasks": 1, "wait_s": 0}, headers=bearer(one)
    )
    assert response.status_code == 403
    transfers = await api.anonymous.get("/api/v1/transfers", headers=bearer(one))
    assert transfers.status_code == 403


async def test_an_empty_long_poll_answers_after_its_wait(api) -> None:
    agent = await register(api)
    response = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/lease",
        json={"max_tasks": 10, "wait_s": 0.3},
        headers=bearer(agent),
    )
    assert response.json() == {"tasks": [], "storages": {}, "scopes": {}}


async def test_a_submission_wakes_a_waiting_long_poll(api) -> None:
    agent = await register(api)
    (api.root / "a.txt").write_text("a")
    poll = asyncio.create_task(
        api.anonymous.post(
            f"/api/v1/agents/{agent['id']}/lease",
            json={"max_tasks": 10, "wait_s": 30},
            headers=bearer(agent),
            timeout=60,
        )
    )
    await asyncio.sleep(0)  # let the poll start waiting before anything is submitted
    await api.client.post(
        "/api/v1/transfers", json={"sources": ["local:a.txt"], "destination": "local:o"}
    )
    reply = (await asyncio.wait_for(poll, 10)).json()
    assert [t["source"] for t in reply["tasks"]] == ["local:a.txt"]
    assert reply["storages"]["local"]["url"] == api.root.as_uri()


async def test_a_lease_carries_each_tasks_scope_priority_and_scope_weight(api, eventually) -> None:
    """What the agent needs to run what it holds in the scheduler's order."""
    agent = await register(api)
    (api.root / "a.txt").write_text("a")
    await api.client.put("/api/v1/scopes/ops", json={"weight": 4})
    body = {
        "sources": ["local:a.txt"],
        "destination": "local:o",
        "scope": "ops",
        "options": {"priority": 5},
    }
    (await api.client.post("/api/v1/transfers", json=body)).raise_for_status()

    async def lease() -> dict | None:
        reply = await api.anonymous.post(
            f"/api/v1/agents/{agent['id']}/lease",
            json={"max_tasks": 10, "wait_s": 0},
            headers=bearer(agent),
        )
        return reply.json() if reply.json()["tasks"] else None

    reply = await eventually(lease)
    (task,) = reply["tasks"]
    assert (task["scope"], task["priority"]) == ("ops", 5)
    assert reply["scopes"] == {"ops": 4}
    # Exactly the documented records, every field present.
    assert orjson.loads(encode(decode(LeaseReply, orjson.dumps(reply)))) == reply
    assert set(task) == {f.name for f in fields(LeasedTaskPublic)}


async def test_a_late_report_is_ignored(api, eventually) -> None:
    agent = await register(api)
    (api.root / "a.txt").write_text("a")
    await api.client.post(
        "/api/v1/transfers", json={"sources": ["local:a.txt"], "destination": "local:o"}
    )
    (task,) = await eventually(lambda: leased(api, agent))
    report = [{"task": task["id"], "lease": task["lease"], "state": "DONE", "bytes": 1}]
    url = f"/api/v1/agents/{agent['id']}/report"
    first = await api.anonymous.post(url, json=report, headers=bearer(agent))
    second = await api.anonymous.post(url, json=report, headers=bearer(agent))
    assert first.json() == {"accepted": 1, "ignored": 0}
    assert second.json() == {"accepted": 0, "ignored": 1}


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ('[{"task": 1, "lease": "x", "state": "FINISHED"}]', "body.0.state"),
        ('[{"task": 1, "lease": "x", "state": "DONE", "bytes": -1}]', "body.0.bytes"),
        ('[{"task": 1, "state": "DONE"}]', "body.0.lease"),
        ('{"task": 1}', "body"),
        ('[{"task": 1, "lease": "x", "state": "DONE"', "body"),  # cut short: not JSON
    ],
)
async def test_a_malformed_report_is_a_problem_naming_the_field(api, body, location) -> None:
    agent = await register(api)
    reply = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/report",
        content=body,
        headers={**bearer(agent), "Content-Type": "application/json"},
    )
    assert reply.status_code == 422
    assert reply.headers["content-type"] == PROBLEM
    assert reply.json()["errors"][0]["location"].startswith(location)


async def test_a_state_no_agent_reports_is_refused_naming_those_it_may(api) -> None:
    agent = await register(api)
    reply = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/report",
        json=[
            {"task": 1, "lease": "x", "state": "DONE"},
            {"task": 2, "lease": "y", "state": "LOST"},
        ],
        headers=bearer(agent),
    )
    assert reply.status_code == 422
    assert reply.headers["content-type"] == PROBLEM
    problem = reply.json()
    ((error),) = problem["errors"]
    assert error["location"] == "body.1.state"
    for state in ReportedState:
        assert f"'{state.value}'" in error["message"]
    assert "body.1.state" in problem["detail"]


async def test_the_report_body_is_documented(api) -> None:
    document = (await api.anonymous.get("/api/v1/openapi.json")).json()
    body = document["paths"]["/api/v1/agents/{agent_id}/report"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    assert schema["items"] == {"$ref": "#/components/schemas/TaskReport"}
    report = document["components"]["schemas"]["TaskReport"]
    assert set(report["properties"]) == {f.name for f in fields(TaskReport)}
    assert body["required"] is True


async def test_heartbeat_tells_the_agent_what_to_stop(api, eventually) -> None:
    agent = await register(api)
    (api.root / "a.txt").write_text("a")
    created = await api.client.post(
        "/api/v1/transfers", json={"sources": ["local:a.txt"], "destination": "local:o"}
    )
    (task,) = await eventually(lambda: leased(api, agent))
    await api.client.post(f"/api/v1/transfers/{created.json()['id']}/cancel")
    beat = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/heartbeat",
        json={"active": [[task["id"], 0]], "state": {"pid": 1}},
        headers=bearer(agent),
    )
    assert beat.json() == {
        "cancel": [task["id"]],
        "bandwidth": {},
        "commands": [],
        "unlimited": [],
        "next_change_s": None,
    }
    dump = (await api.client.get(f"/api/v1/agents/{agent['id']}")).json()
    assert dump["state"] == "ALIVE"
    assert dump["status"]["pid"] == 1


@pytest.fixture
async def runner(api):
    secret = await api.state.store.issue_agent_secret("inproc", timedelta(minutes=1))
    session = ServerSession(
        "http://ferry", name="inproc", secret=secret, token=None, transport=api.transport
    )
    await session.register({"protocols": ["file"]})
    runner = AgentRunner(session, max_active=4, grace=5)
    stop = asyncio.Event()
    work = asyncio.create_task(runner.run(stop))
    yield runner
    stop.set()
    await asyncio.wait_for(work, 30)
    await session.close()


async def test_a_real_runner_moves_a_tree(api, runner, eventually) -> None:
    files = {f"d{i % 3}/f {i}.bin": bytes([i]) * (i * 1000) for i in range(30)}
    for name, data in files.items():
        (api.root / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (api.root / "src" / name).write_bytes(data)
    created = await api.client.post(
        "/api/v1/transfers",
        json={"sources": ["local:src"], "destination": "local:dst", "kind": "tree"},
    )
    url = f"/api/v1/transfers/{created.json()['id']}"

    async def finished():
        body = (await api.client.get(url)).json()
        return body if body["status"] not in ("STANDBY", "ONGOING") else None

    final = await eventually(finished)
    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 30
    assert final["bytes"] == sum(len(d) for d in files.values())
    for name, data in files.items():
        copied = (api.root / "dst" / name).read_bytes()
        assert hashlib.sha256(copied).digest() == hashlib.sha256(data).digest()
    outcomes = (await api.client.get(f"{url}/outcomes")).json()
    assert {o["status"] for o in outcomes["objects"]} == {"DONE"}
    assert all(o["checksum"].startswith("adler32:") for o in outcomes["objects"])


class _Trickle:
    """A file that yields one small block per read, slowly: a copy that outlives a grace period."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def read(self, _size: int = -1) -> bytes:
        time.sleep(0.01)
        return self._handle.read(1024)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class SlowLocal(LocalFileSystem):
    protocol = "slowfile"

    def open(self, path, mode="rb", **kwargs):
        handle = super().open(path, mode, **kwargs)
        return _Trickle(handle) if mode == "rb" else handle


async def test_a_copy_cut_short_by_shutdown_is_given_back_not_canceled(api, eventually) -> None:
    fsspec.register_implementation("slowfile", SlowLocal, clobber=True)
    (api.root / "big.bin").write_bytes(os.urandom(512 * 1024))  # ~5 s at the trickle's pace
    await api.state.store.put_storage(Storage("slow", f"slowfile://{api.root}"))
    created = await api.client.post(
        "/api/v1/transfers", json={"sources": ["slow:big.bin"], "destination": "local:out"}
    )
    secret = await api.state.store.issue_agent_secret("quitter", timedelta(minutes=1))
    session = ServerSession(
        "http://ferry", name="quitter", secret=secret, token=None, transport=api.transport
    )
    await session.register({})
    runner = AgentRunner(session, max_active=1, grace=0.2)
    stop = asyncio.Event()
    work = asyncio.create_task(runner.run(stop))
    url = f"/api/v1/transfers/{created.json()['id']}/outcomes"

    async def copying():
        """The runner, in this process, has the source open."""
        source, links = str(api.root / "big.bin"), []
        for fd in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                links.append(os.readlink(fd))
        return source in links

    await eventually(copying)
    stop.set()
    await asyncio.wait_for(work, 30)
    await session.close()
    (obj,) = (await api.client.get(url)).json()["objects"]
    assert obj["status"] == "QUEUED"  # given back at once, for the next agent
    assert obj["history"][0]["state"] == "RELEASED"
    assert obj["history"][0]["error"] == "the agent stopped before it finished"
    assert obj["history"][0]["bytes"] > 0  # defect 18.16: what it moved was recorded as 0
    assert list((api.root / "out").iterdir()) == []


async def test_a_run_under_way_shows_its_rate_and_time_left(api, eventually) -> None:
    fsspec.register_implementation("slowfile", SlowLocal, clobber=True)
    (api.root / "tree").mkdir()
    (api.root / "tree" / "big.bin").write_bytes(os.urandom(512 * 1024))  # ~5 s at the trickle
    await api.state.store.put_storage(Storage("slow", f"slowfile://{api.root}"))
    created = await api.client.post(
        "/api/v1/transfers",
        json={"sources": ["slow:tree"], "destination": "local:out", "kind": "tree"},
    )
    secret = await api.state.store.issue_agent_secret("watcher", timedelta(minutes=1))
    session = ServerSession(
        "http://ferry", name="watcher", secret=secret, token=None, transport=api.transport
    )
    await session.register({})
    runner = AgentRunner(session, max_active=1, grace=0.2)
    stop = asyncio.Event()
    work = asyncio.create_task(runner.run(stop))
    url = f"/api/v1/transfers/{created.json()['id']}"

    async def moving():
        progress = (await api.client.get(url)).json()["progress"]
        return progress if progress and progress["bytes_moved"] > 0 and progress["eta_s"] else None

    progress = await eventually(moving)
    stop.set()
    await asyncio.wait_for(work, 30)
    await session.close()
    assert progress["bytes_total"] == 512 * 1024
    assert 0 < progress["bytes_moved"] < 512 * 1024
    assert progress["rate_bps"] > 0


class _Damaging:
    def __init__(self, handle) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        return int(self._handle.write(bytes([data[0] ^ 0xFF]) + data[1:] if data else data))

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class DamagingLocal(LocalFileSystem):
    """Every write is damaged on its way: a permanent fault between read and write."""

    protocol = "damagingfile"

    def open(self, path, mode="rb", **kwargs):
        handle = super().open(path, mode, **kwargs)
        return _Damaging(handle) if "w" in mode else handle


async def test_a_permanent_fault_fails_the_object_with_a_checksum_error(
    api, runner, eventually
) -> None:
    fsspec.register_implementation("damagingfile", DamagingLocal, clobber=True)
    (api.root / "a.bin").write_bytes(os.urandom(100_000))
    (api.root / "sink").mkdir()
    await api.state.store.put_storage(Storage("sink", f"damagingfile://{api.root / 'sink'}"))
    body = {"sources": ["local:a.bin"], "destination": "sink:out", "options": {"retries": 0}}
    created = await api.client.post("/api/v1/transfers", json=body)
    url = f"/api/v1/transfers/{created.json()['id']}"

    async def finished():
        body = (await api.client.get(url)).json()
        return body if body["status"] not in ("STANDBY", "ONGOING") else None

    assert (await eventually(finished))["status"] == "FAILED"
    (obj,) = (await api.client.get(f"{url}/outcomes")).json()["objects"]
    assert obj["status"] == "FAILED"
    assert obj["error_class"] == "checksum"
    assert obj["error"].startswith("checksum mismatch on sink:out/a.bin")
    assert list((api.root / "sink").rglob("*")) == [api.root / "sink" / "out"]  # no file at all


async def test_a_report_with_a_very_long_error_is_taken_and_its_error_cut(api, eventually) -> None:
    # A path of thousands of characters gives an error as long: refusing the whole report for
    # it made the agent send the same batch again forever, and every result behind it was lost.
    agent = await register(api)
    (api.root / "a.txt").write_text("a")
    created = await api.client.post(
        "/api/v1/transfers",
        json={"sources": ["local:a.txt"], "destination": "local:o", "options": {"retries": 0}},
    )
    (task,) = await eventually(lambda: leased(api, agent))
    error = "not found: local:" + "d/" * 5000
    report = [{"task": task["id"], "lease": task["lease"], "state": "FAILED", "error": error}]
    url = f"/api/v1/agents/{agent['id']}/report"
    reply = await api.anonymous.post(url, json=report, headers=bearer(agent))
    assert reply.json() == {"accepted": 1, "ignored": 0}
    outcomes = f"/api/v1/transfers/{created.json()['id']}/outcomes"
    (outcome,) = await eventually(lambda: _ended_objects(api, outcomes))
    assert outcome["status"] == "FAILED"
    assert outcome["error"].startswith("not found: local:d/d/")
    assert 3900 < len(outcome["error"]) <= 4000
    assert outcome["error"].endswith("characters cut]")


async def _ended_objects(api, path: str) -> list[dict]:
    objects = (await api.client.get(path)).json()["objects"]
    return [o for o in objects if o["status"] in ("FAILED", "DONE")]


async def test_a_location_longer_than_a_path_may_be_is_refused_at_submission(api) -> None:
    long = "local:" + "d/" * 2100  # 4,206 characters
    for body in (
        {"sources": [long], "destination": "local:o"},
        {"sources": ["local:a.txt"], "destination": long},
    ):
        reply = await api.client.post("/api/v1/transfers", json=body)
        assert reply.status_code == 422
        assert reply.headers["content-type"] == PROBLEM
        assert "4096" in reply.text
        assert len(reply.text) < 2000  # the problem names the limit, it does not echo the path
    listed = (await api.client.get("/api/v1/transfers")).json()["items"]
    assert listed == []


async def test_a_report_cut_short_by_its_agent_logs_no_error(api, caplog) -> None:
    """Defect 18.19: an agent stopped in the middle of a report made the server log two
    tracebacks as ERROR (the request's, then the ASGI server's)."""
    agent = await register(api)
    path = f"/api/v1/agents/{agent['id']}/report"
    messages = [{"type": "http.request", "body": b'[{"task": 1,', "more_body": True}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [
        (b"authorization", f"Bearer {agent['token']}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", b"1000"),
        (b"host", b"ferry"),
    ]
    scope = {
        **{"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST"},
        **{"scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b""},
        **{"headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)},
        "root_path": "",
    }
    with caplog.at_level(logging.INFO):
        await api.transport.app(scope, receive, send)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert f"POST {path}: the client went away before its request was read" in caplog.text


async def test_a_cancel_records_what_each_held_object_did(api, eventually) -> None:
    """Defect 18.16: an object the agent held but had not begun showed attempt 1 with a start
    time; one canceled while copying recorded no bytes."""
    fsspec.register_implementation("slowfile", SlowLocal, clobber=True)
    for name in ("a.bin", "b.bin"):
        (api.root / name).write_bytes(os.urandom(512 * 1024))  # ~5 s each at the trickle
    await api.state.store.put_storage(Storage("slow", f"slowfile://{api.root}"))
    created = await api.client.post(
        "/api/v1/transfers",
        json={"sources": ["slow:a.bin", "slow:b.bin"], "destination": "local:out"},
    )
    transfer = created.json()["id"]
    secret = await api.state.store.issue_agent_secret("holder", timedelta(minutes=1))
    session = ServerSession(
        "http://ferry", name="holder", secret=secret, token=None, transport=api.transport
    )
    await session.register({})
    runner = AgentRunner(session, max_active=1, grace=0.2)  # one copies, the other waits
    stop = asyncio.Event()
    work = asyncio.create_task(runner.run(stop))

    async def one_moving_one_held():
        progress = (await api.client.get(f"/api/v1/transfers/{transfer}")).json()["progress"]
        return len(runner._held) == 2 and progress and progress["bytes_moved"] > 0

    await eventually(one_moving_one_held)
    await api.client.post(f"/api/v1/transfers/{transfer}/cancel")

    async def ended():
        status = (await api.client.get(f"/api/v1/transfers/{transfer}")).json()["status"]
        return status == "CANCELED"

    await eventually(ended, timeout=30)
    stop.set()
    await asyncio.wait_for(work, 30)
    await session.close()
    objects = (await api.client.get(f"/api/v1/transfers/{transfer}/outcomes")).json()["objects"]
    by_error = {o["error"].split(" slow:")[0]: o for o in objects}
    assert set(by_error) == {"canceled while copying", "canceled before it started"}
    copying, waiting = by_error["canceled while copying"], by_error["canceled before it started"]
    assert copying["attempts"] == 1
    assert copying["history"][0]["bytes"] > 0
    assert (waiting["status"], waiting["attempts"], waiting["history"]) == ("CANCELED", 0, [])


async def test_heartbeat_gives_each_held_task_its_share_of_the_channel_now(api, eventually) -> None:
    """Defect 18.15: the channel's bandwidth is shared out again as its tasks end."""
    agent = await register(api)
    await api.client.put("/api/v1/channels/*/*", json={"bandwidth": 1000, "max_active": 10})
    (api.root / "a.txt").write_text("a")
    await api.client.post(
        "/api/v1/transfers", json={"sources": ["local:a.txt"], "destination": "local:o"}
    )
    (task,) = await eventually(lambda: leased(api, agent))
    assert task["bandwidth"] == 1000  # alone in its channel
    beat = await api.anonymous.post(
        f"/api/v1/agents/{agent['id']}/heartbeat",
        json={"active": [[task["id"], 0]], "state": {}},
        headers=bearer(agent),
    )
    assert beat.json() == {
        "cancel": [],
        "bandwidth": {str(task["id"]): 1000},
        "commands": [],
        "unlimited": [],
        "next_change_s": None,
    }


async def test_a_waiting_lease_of_a_silent_agent_gets_nothing(tmp_path: Path, eventually) -> None:
    """An agent frozen (or cut off) while its lease request waits sends no more heartbeats;
    once it has been silent for a lease TTL, work that comes is not leased to it, where it
    would be lost a second time, but left for the agents that are heard."""
    (tmp_path / "root").mkdir()
    settings = ServerSettings(
        data_dir=tmp_path / ".ferry",
        agents=0,
        local_root=tmp_path / "root",
        heartbeat_s=0.1,
        lease_ttl_s=0.5,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        token = (settings.data_dir / "admin.token").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ferry") as client:
            api = SimpleNamespace(anonymous=client, state=app.state.ferry, root=tmp_path / "root")
            frozen = await register(api, "frozen")
            poll = asyncio.create_task(
                client.post(
                    f"/api/v1/agents/{frozen['id']}/lease",
                    json={"max_tasks": 10, "wait_s": 30},
                    headers=bearer(frozen),
                    timeout=60,
                )
            )
            store = api.state.store
            await eventually(
                lambda: _silent_for(store, frozen["id"], settings.lease_ttl_s), timeout=10
            )
            (api.root / "a.txt").write_text("a")
            admin = {"Authorization": f"Bearer {token}"}
            body = {"sources": ["local:a.txt"], "destination": "local:o"}
            submitted = await client.post("/api/v1/transfers", json=body, headers=admin)

            reply = (await asyncio.wait_for(poll, 10)).json()

            assert reply["tasks"] == []
            heard = await register(api, "heard")
            assert [t["source"] for t in await leased(api, heard)] == ["local:a.txt"]
            assert submitted.status_code == 201


async def _silent_for(store, agent_id: str, seconds: float) -> bool:
    agent = await store.get_agent(agent_id)
    return (datetime.now(UTC) - agent.last_heartbeat).total_seconds() > seconds
