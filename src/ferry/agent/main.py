"""``ferry agent``: register with the server, then work until told to stop.

SIGTERM and SIGINT stop gracefully: no new leases, active copies finish within ``grace_s``, the
rest is given back. SIGQUIT stops at once: active copies are stopped and every lease is given
back, so another agent takes the work now rather than after a lease TTL. SIGHUP reads the
configuration again (DaemonCore's reconfig): the log settings apply at once, and a change to
any other setting is logged as needing a restart. With ``timeout_s``, an agent that has had
nothing to do for that long exits with status 0."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable

from ferry.agent.bandwidth import agent_bandwidth
from ferry.agent.control import AgentControl, Reread
from ferry.agent.credentials import token_file
from ferry.agent.runner import AgentRunner
from ferry.agent.session import ServerSession
from ferry.config import AgentSettings
from ferry.daemon import collector
from ferry.daemon.sources import SettingsOrigin
from ferry.errors import FerryError

log = logging.getLogger("ferry.agent")


async def run_agent(
    settings: AgentSettings,
    *,
    secret: str | None,
    token: str | None,
    reread: Reread | None = None,
    origin: SettingsOrigin | None = None,
) -> int:
    """Run until stopped and return the exit status; ``reread`` and ``origin`` are what
    reconfiguration reads and where the settings came from (``ferry admin``)."""
    name = settings.name or "agent"
    stop = asyncio.Event()
    kept = token_file(settings.data_dir, name)
    session = ServerSession(
        settings.servers, name=name, secret=secret, token=token, ca=settings.ca, keep_token=kept
    )

    bandwidth = agent_bandwidth(settings.bandwidth_timetable, settings.timezone)
    runner = AgentRunner(
        session,
        max_active=settings.max_active,
        grace=settings.grace_s,
        idle_timeout=settings.timeout_s,
        resume_min_bytes=settings.resume_min_bytes,
        bandwidth=bandwidth,
    )

    def stop_soon(fast: bool) -> None:
        """Stop as SIGTERM does, or with ``fast`` as SIGQUIT does."""
        if fast:
            log.info("stopping at once and giving back every lease")
            runner.grace = 0.0
        stop.set()

    control = AgentControl(
        settings, stop=stop_soon, reread=reread, origin=origin, bandwidth=bandwidth
    )
    runner.obey = functools.partial(control.obey, session=session)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGQUIT, stop_soon, True)
    if reread is not None:
        loop.add_signal_handler(signal.SIGHUP, reconfigure, control)
    try:
        capabilities = {"protocols": ["file", "memory"], "max_active": settings.max_active}
        await session.register(capabilities)
        collector.settle()  # registered: what the agent keeps to the end is built
        await runner.run(stop)
        if runner.stuck:
            logging.shutdown()
            os._exit(1)  # copy threads blocked in a backend would keep a normal exit waiting
        log.info("agent %s stopped%s", name, " (idle)" if runner.idle_exit else "")
        return 1 if runner.fatal else 0
    except FerryError as exc:
        log.error("agent %s: %s", name, exc)
        return 1
    finally:
        await session.close()


def reconfigure(control: AgentControl) -> None:
    """SIGHUP: apply the log settings read again; name the other changes, which need a restart.
    A file that no longer reads is logged and changes nothing."""
    with contextlib.suppress(FerryError):  # logged, and nothing changed
        control.reconfigure()


def main(
    settings: AgentSettings,
    *,
    secret: str | None,
    token: str | None,
    reread: Reread | None = None,
    origin: SettingsOrigin | None = None,
) -> int:
    agent = run_agent(settings, secret=secret, token=token, reread=reread, origin=origin)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(agent)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed, as the server's (uvicorn picks it): an
    agent hands every batch of copies to a thread and back, and on uvloop it spent about 5 %
    less CPU moving zero-byte objects (an A/B, two rounds). ``None``: asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
