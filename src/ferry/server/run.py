"""Run the server process under uvicorn, with its signals wired to a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn

from ferry.config import ServerSettings
from ferry.server.app import AGENT_STOP_GRACE_S, build_store, create_app
from ferry.server.state import ServerState

log = logging.getLogger("ferry.api")


class _Server(uvicorn.Server):
    """Uvicorn, with Ferry's order of shutdown on the first SIGINT or SIGTERM: long polls answer
    at once, the local agents finish or give back their work and report it while the API still
    listens, and only then does uvicorn close. A second signal takes uvicorn's own fast way."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._ferry_state = state
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._ferry_state.supervisor is None:
            self._exit_now(sig, frame)
            return
        self._draining = True
        self._ferry_state.stopping.set()
        log.info("signal %d: stopping the local agents, then the server", sig)
        loop = asyncio.get_running_loop()
        loop.call_soon_threadsafe(self._ferry_state.wakeups.events.close)  # end event streams
        loop.call_soon_threadsafe(self._drain_then_exit, sig)

    def _drain_then_exit(self, sig: int) -> None:
        async def drain() -> None:
            try:
                if self._ferry_state.supervisor is not None:
                    await self._ferry_state.supervisor.stop(AGENT_STOP_GRACE_S)
            finally:
                self.should_exit = True  # not handle_exit: that would read as a second Ctrl-C

        self._drain_task = asyncio.ensure_future(drain())

    def _exit_now(self, sig: int, frame: FrameType | None) -> None:
        self._ferry_state.stopping.set()
        asyncio.get_running_loop().call_soon_threadsafe(self._ferry_state.wakeups.events.close)
        super().handle_exit(sig, frame)
        # Uvicorn re-raises the signal once shut down; a shutdown that was asked for and
        # completed is a success, so the process exits 0 instead.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def serve(settings: ServerSettings) -> None:
    state = ServerState(settings=settings, store=build_store(settings))
    app = create_app(settings, state=state)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    log.info(
        "ferry server listening on http://%s:%d (data in %s)",
        settings.host,
        settings.port,
        settings.data_dir,
    )
    _Server(config, state).run()
