"""``ferry agent``: register with the server, then work until told to stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ferry.agent.runner import AgentRunner
from ferry.agent.session import ServerSession
from ferry.errors import FerryError

log = logging.getLogger("ferry.agent")

SHUTDOWN_GRACE_S = 10.0


async def run_agent(
    server: str, *, name: str, secret: str | None, token: str | None, max_active: int
) -> int:
    """Run until SIGTERM or SIGINT (graceful) and return the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    session = ServerSession(server, name=name, secret=secret, token=token)
    try:
        await session.register({"protocols": ["file", "memory"], "max_active": max_active})
        runner = AgentRunner(session, max_active=max_active)
        await runner.run(stop, SHUTDOWN_GRACE_S)
        if runner.stuck:
            logging.shutdown()
            os._exit(1)  # copy threads blocked in a backend would keep a normal exit waiting
        log.info("agent %s stopped", name)
        return 1 if runner.fatal else 0
    except FerryError as exc:
        log.error("agent %s: %s", name, exc)
        return 1
    finally:
        await session.close()


def main(server: str, *, name: str, secret: str | None, token: str | None, max_active: int) -> int:
    return asyncio.run(
        run_agent(server, name=name, secret=secret, token=token, max_active=max_active)
    )
