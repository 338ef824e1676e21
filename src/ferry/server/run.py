"""Run the server process under uvicorn, with its signals wired to a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from ferry.config import ServerSettings
from ferry.daemon import collector
from ferry.daemon.sources import SettingsOrigin
from ferry.server.app import build_store, create_app, stop_wait
from ferry.server.reload import reload_settings
from ferry.server.state import ServerState
from ferry.server.tls import check_listening
from ferry.store.sql_base import refuse_newer_schema

log = logging.getLogger("ferry.api")


class _Server(uvicorn.Server):
    """Uvicorn, with Ferry's order of shutdown on the first SIGINT or SIGTERM: long polls answer
    at once, the local agents finish or give back their work and report it while the API still
    listens, and only then does uvicorn close. A second signal takes uvicorn's own fast way.
    SIGQUIT: the agents give back every lease at once, then the server exits. SIGHUP: the
    configuration is read again."""

    def __init__(self, config: uvicorn.Config, state: ServerState, given: dict[str, Any]) -> None:
        super().__init__(config)
        self._ferry_state = state
        self._given = given
        self._draining = False
        self._background: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        collector.settle()  # the application, its store and its loops are up
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._spawn, self._reload)
        loop.add_signal_handler(signal.SIGQUIT, self._quit_now)
        self._ferry_state.stop_process = self._stop_asked

    def _stop_asked(self, fast: bool) -> None:
        """``ferry admin off``: what SIGQUIT does (``fast``) or SIGTERM does."""
        log.info("stopping as an administrator asked (%s)", "fast" if fast else "graceful")
        if fast:
            self._quit_now()
        else:
            self.handle_exit(signal.SIGTERM, None)

    def _spawn(self, make: Any) -> None:
        task = asyncio.ensure_future(make())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload(self) -> None:
        log.info("SIGHUP: reading the configuration again")
        await reload_settings(self._ferry_state, self._ferry_state.config, self._given)

    def _quit_now(self) -> None:
        if self._draining:
            return
        self._draining = True
        state = self._ferry_state
        state.stopping.set()
        state.wakeups.events.close()
        log.info("SIGQUIT: the agents give back their leases now; then the server exits")

        async def quit_now() -> None:
            try:
                if state.supervisor is not None:
                    await state.supervisor.stop(stop_wait(state.settings), signal.SIGQUIT)
            finally:
                self.should_exit = True

        self._spawn(quit_now)

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
                    await self._ferry_state.supervisor.stop(stop_wait(self._ferry_state.settings))
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


def serve(
    settings: ServerSettings,
    *,
    config: Path | None = None,
    given: dict[str, Any] | None = None,
    from_environment: frozenset[str] = frozenset(),
) -> None:
    """Run the server until a signal stops it; ``config`` and ``given`` (the command line's
    values, of which ``from_environment`` were options read from their variable) are what
    SIGHUP reads the settings from again. A configuration it may not listen
    with (see ``check_listening``), or a database a newer Ferry has migrated, raises
    ``ConfigError`` before anything starts."""
    check_listening(settings)
    origin = SettingsOrigin(config, "server", given or {}, "FERRY_", from_environment)
    state = ServerState(
        settings=settings, store=build_store(settings), config=config, origin=origin
    )
    refuse_newer_schema(settings.db_url)
    app = create_app(settings, state=state)
    uvicorn_config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    log.info(
        "ferry server listening on %s://%s:%d (data in %s)",
        "https" if settings.tls else "http",
        settings.host,
        settings.port,
        settings.data_dir,
    )
    _Server(uvicorn_config, state, given or {}).run()
