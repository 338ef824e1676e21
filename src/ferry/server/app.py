"""The server application: ``create_app(settings)`` builds it; nothing is built at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI

from ferry import __version__
from ferry.config import ServerSettings
from ferry.daemon.children import ChildSpec, Supervisor
from ferry.daemon.timers import Timers
from ferry.domain.transfers import Storage
from ferry.scheduler.checkpoint import CheckpointLoop
from ferry.scheduler.deadlines import DeadlineLoop
from ferry.scheduler.due import DueLoop
from ferry.scheduler.expand import ExpandLoop
from ferry.scheduler.finalize import FinalizeLoop
from ferry.scheduler.leases import LeaseReaper, RetryLoop
from ferry.scheduler.loop import Loop
from ferry.scheduler.notify import NotifyLoop
from ferry.scheduler.optimizer import OptimizerLoop
from ferry.scheduler.registry import RegistryLoop, RegistryTimings
from ferry.scheduler.submission import DEFAULT_SCOPE
from ferry.server import openapi, problems
from ferry.server.audit_trail import AuditTrail
from ferry.server.limits import BodyLimit
from ferry.server.metrics import RequestTimer
from ferry.server.routes import (
    admin,
    agents,
    audit,
    channels,
    events,
    health,
    metrics,
    passive,
    pauses,
    plans,
    storages,
    transfers,
    users,
)
from ferry.server.state import ServerState
from ferry.server.ui import install as install_dashboard
from ferry.store.abc import Store
from ferry.store.crypto import Cipher, load_key
from ferry.store.sql import SqlStore

log = logging.getLogger("ferry.api")

API_PREFIX = "/api/v1"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 (a file name, not a secret)
AGENT_SECRET_TTL = timedelta(minutes=10)
STOP_MARGIN_S = 10.0  # beyond the agents' own grace: stopping stuck copies, last reports
HUNG_CHECK_EVERY_S = 5.0


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)


async def prepare(state: ServerState) -> None:
    """Open the store, migrate it, make sure an administrator token exists on disk, declare the
    storages of the command line."""
    settings, store = state.settings, state.store
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    await store.open()
    token = await store.bootstrap()
    token_file = settings.data_dir / ADMIN_TOKEN_FILE
    if token is None and not token_file.exists():
        # Another server's data directory, or a lost file: one more token, the others kept
        # (replacing them logged out every other server of a shared database).
        token = await store.issue_admin_token()
        log.warning("%s was missing: another administrator token was issued", token_file)
    if token is not None:
        write_private(token_file, token)
        log.info("administrator token written to %s", token_file)
    declared = {"local": settings.local_root.resolve().as_uri(), **settings.storages}
    for name, url in declared.items():
        await declare_storage(store, name, url)


async def declare_storage(store: Store, name: str, url: str) -> None:
    """A storage of the server's configuration, made or replaced. A new one is granted to the
    default scope so that a first tour works; a grant taken away later stays away."""
    site = "local" if name == "local" else "default"
    if await store.put_storage(Storage(name=name, url=url, site=site)):
        await store.grant_storage(name, DEFAULT_SCOPE, read=True, write=True)


def local_agents(state: ServerState, supervisor: Supervisor) -> None:
    settings = state.settings
    for number in range(1, settings.agents + 1):
        name = f"{settings.local_agent_prefix}-{number}"

        async def environment(name: str = name) -> dict[str, str]:
            return {
                "FERRY_AGENT_SECRET": await state.store.issue_agent_secret(name, AGENT_SECRET_TTL)
            }

        supervisor.start(ChildSpec(name, agent_command(state, name), environment))


def agent_command(state: ServerState, name: str) -> list[str]:
    """A local agent's command line: this server (over https with TLS, trusting its CA or,
    without one, its certificate), its name, and the server's grace, data directory (where it
    keeps its token), log folder and level, and configuration file (whose ``[agent]`` table it
    then reads)."""
    settings = state.settings
    command = [sys.executable, "-m", "ferry", "agent", "--server", settings.agent_server_url]
    if trusted := settings.tls_ca or settings.tls_cert:
        command += ["--ca", str(trusted.resolve())]
    command += ["--name", name, "--max-active", str(settings.agent_max_active)]
    command += ["--grace", str(settings.grace_s), "--log-level", settings.log.level]
    command += ["--data-dir", str(settings.data_dir.resolve())]
    if settings.log.dir is not None:
        command += ["--log-dir", str(settings.log.dir)]
    if state.config is not None:
        command += ["--config", str(state.config)]
    return command


def stop_wait(settings: ServerSettings) -> float:
    """How long the server waits for its agents to stop before killing them."""
    return settings.grace_s + STOP_MARGIN_S


def watch_hung_agents(state: ServerState, supervisor: Supervisor, timers: Timers) -> None:
    """DaemonCore's hung-child rule, on the local agents' heartbeats, as a periodic timer."""

    async def silent_for(name: str) -> float | None:
        agent = await state.store.agent_named(name)
        if agent is None or agent.last_heartbeat is None:
            return None
        return (state.clock() - agent.last_heartbeat).total_seconds()

    async def check() -> None:
        await supervisor.kill_hung(silent_for, state.settings.hung_timeout_s)

    every = min(HUNG_CHECK_EVERY_S, state.settings.hung_timeout_s / 4)
    timers.every("hung-agents", every, check)


def supervisor_for(state: ServerState) -> Supervisor:
    async def agent_exited(name: str, returncode: int) -> None:
        agent = await state.store.agent_named(name)
        if agent is not None:
            requeued = await state.store.mark_agent_lost(
                agent.id, f"agent process exited with status {returncode}"
            )
            log.warning("agent %s lost; %d of its tasks requeued", name, requeued)
            state.wakeups.work_queued()
            state.wakeups.objects_ended()

    return Supervisor(agent_exited)


def registry_timings(settings: ServerSettings) -> RegistryTimings:
    return RegistryTimings(
        lost_after=timedelta(seconds=settings.agent_lost_after_s),
        health_fast=timedelta(seconds=settings.health_check_fast_s),
        health_slow=timedelta(seconds=settings.health_check_s),
    )


def build_loops(state: ServerState) -> list[Loop]:
    settings, store, wakeups, clock = state.settings, state.store, state.wakeups, state.clock
    kinds: list[type[Loop]] = [RetryLoop, CheckpointLoop]
    timings = registry_timings(settings)
    grace = timedelta(seconds=settings.lease_ttl_s)
    return [
        DueLoop(store, wakeups, clock, observe_lag=state.metrics.due_lag.observe),
        LeaseReaper(store, wakeups, clock, grace=grace),
        *(kind(store, wakeups, clock) for kind in kinds),
        ExpandLoop(store, wakeups, clock, state.protected, state.endpoints),
        FinalizeLoop(store, wakeups, clock, state.protected, state.endpoints),
        DeadlineLoop(store, wakeups, clock),
        OptimizerLoop(store, wakeups, clock, window_s=settings.optimizer_window_s),
        RegistryLoop(store, wakeups, clock, timings, state.storages),
        NotifyLoop(store, wakeups, clock, retry_base=timedelta(seconds=settings.notify_retry_s)),
    ]


def build_store(settings: ServerSettings) -> SqlStore:
    """The store, with the key that seals storage credentials (created on first start)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return SqlStore(settings.db_url, cipher=Cipher(load_key(settings.data_dir)))


def create_app(settings: ServerSettings, *, state: ServerState | None = None) -> FastAPI:
    state = state or ServerState(settings=settings, store=build_store(settings))
    if isinstance(state.store, SqlStore):
        state.store.observe_lease_lock = state.metrics.lease_lock.observe

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await prepare(state)
        stop = asyncio.Event()
        state.loops = build_loops(state)
        loops = [
            asyncio.create_task(loop.run_forever(stop), name=loop.name) for loop in state.loops
        ]
        if not settings.db_url.startswith("sqlite"):  # servers of one database tell each other
            from ferry.scheduler.cluster import ClusterNotices

            notices = ClusterNotices(settings.db_url, state.wakeups)
            notices.start()
            loops.append(asyncio.create_task(notices.run(stop), name="cluster-notices"))
        supervisor = state.supervisor = supervisor_for(state)
        local_agents(state, supervisor)
        timers = Timers()
        watch_hung_agents(state, supervisor, timers)
        try:
            yield
        finally:
            state.stopping.set()
            state.wakeups.events.close()
            await timers.close()
            await supervisor.stop(stop_wait(state.settings))
            stop.set()
            await asyncio.gather(*loops, return_exceptions=True)
            await state.store.close()

    app = FastAPI(
        title="Ferry",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.ferry = state
    problems.install(app)
    openapi.install(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(AuditTrail)  # it sees the answer to an oversized body too
    app.add_middleware(RequestTimer, metrics=state.metrics)  # outermost: times all of it
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(passive.router)  # before transfers: /transfers/push is not an id
    api.include_router(pauses.router)  # before transfers' and agents' routes with an id
    api.include_router(plans.router)  # before transfers: /transfers/plan is not an id
    api.include_router(transfers.router)
    api.include_router(agents.router)
    api.include_router(admin.answers)
    api.include_router(admin.router)
    api.include_router(storages.router)
    api.include_router(channels.router)
    api.include_router(events.router)
    api.include_router(users.router)
    api.include_router(audit.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(metrics.router)
    install_dashboard(app)
    return app
