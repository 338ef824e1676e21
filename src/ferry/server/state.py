"""What the running server holds: settings, the store, the loops' wake-ups, its clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ferry.config import ServerSettings
from ferry.daemon.children import Supervisor
from ferry.daemon.sources import SettingsOrigin
from ferry.scheduler.guard import EndpointPolicy, ProtectedPaths
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.scheduler.registry import StorageCache
from ferry.server.agent_commands import CommandBox
from ferry.server.metrics import Metrics
from ferry.store.abc import Store


@dataclass
class ServerState:
    settings: ServerSettings
    store: Store
    wakeups: Wakeups = field(default_factory=Wakeups)
    clock: Callable[[], datetime] = system_clock
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: Supervisor | None = None
    config: Path | None = None  # the --config file, read again on SIGHUP
    # What the settings were read from (``ferry server``'s): for reconfig and config answers.
    origin: SettingsOrigin | None = None
    # Stops the process as SIGTERM (False) or SIGQUIT (True) would; set by ``ferry server``.
    stop_process: Callable[[bool], None] | None = None
    commands: CommandBox = field(default_factory=CommandBox)
    loops: list[Loop] = field(default_factory=list)
    storages: StorageCache = field(init=False)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.storages = StorageCache(self.store)
        self.metrics = Metrics(self.store)

    @property
    def endpoints(self) -> EndpointPolicy:
        """Which endpoints outside the registry transfers may name."""
        return EndpointPolicy(self.settings.allow_unregistered)

    @property
    def protected(self) -> ProtectedPaths:
        """What no transfer may touch: the data directory (database, tokens)."""
        return ProtectedPaths([self.settings.data_dir])
