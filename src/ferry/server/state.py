"""What the running server holds: settings, the store, the loops' wake-ups, its clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ferry.config import ServerSettings
from ferry.daemon.children import Supervisor
from ferry.scheduler.loop import Wakeups, system_clock
from ferry.store.sql import SqlStore


@dataclass
class ServerState:
    settings: ServerSettings
    store: SqlStore
    wakeups: Wakeups = field(default_factory=Wakeups)
    clock: Callable[[], datetime] = system_clock
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: Supervisor | None = None
