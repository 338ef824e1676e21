"""Run the server process under uvicorn, with its signals wired to a clean shutdown."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn

from ferry.config import ServerSettings
from ferry.server.app import create_app
from ferry.server.state import ServerState
from ferry.store.sql import SqlStore

log = logging.getLogger("ferry.api")


class _Server(uvicorn.Server):
    """Uvicorn, plus: the moment SIGINT or SIGTERM arrives, long polls are told to answer."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._ferry_state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._ferry_state.stopping.set()
        super().handle_exit(sig, frame)
        # Uvicorn re-raises the signal once shut down; a shutdown that was asked for and
        # completed is a success, so the process exits 0 instead.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def serve(settings: ServerSettings) -> None:
    state = ServerState(settings=settings, store=SqlStore(settings.db_url))
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
