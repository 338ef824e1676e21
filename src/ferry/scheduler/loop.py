"""The shape every scheduler loop shares: run_once() on an interval, woken early on demand."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from ferry.domain.events import Event
from ferry.errors import StoreUnavailable
from ferry.scheduler.events import EventBus
from ferry.store.abc import Store

log = logging.getLogger("ferry.scheduler")

# How often a loop logs one cause of database trouble: once a minute, with how many passes it
# failed meanwhile (a database away for 30 s had every loop log a line at each pass).
TROUBLE_LOG_EVERY_S = 60.0


# Told the name of a wake-up fired here, to tell the other servers of the database too.
Relay = Callable[[str], None]


class Pulse:
    """Wakes every waiter at once; a waiter that arrives later waits for the next pulse."""

    def __init__(self, name: str = "pulse") -> None:
        self._event = asyncio.Event()
        self.name = name
        self.relay: Relay | None = None

    def fire(self) -> None:
        self.fire_here()
        if self.relay is not None:
            self.relay(self.name)

    def fire_here(self) -> None:
        """Fire for this server's waiters only (what another server told it)."""
        self._event.set()
        self._event = asyncio.Event()

    def watch(self) -> asyncio.Event:
        """The event the next fire sets. Taken before looking for work and waited on after,
        it also catches a fire that came during the look, which waiting on the pulse then
        would miss."""
        return self._event

    @staticmethod
    async def wait(since: asyncio.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` for the first fire since ``watch()`` gave ``since``; whether
        one came. (Watching only once the look found nothing would miss a fire during it.)"""
        try:
            await asyncio.wait_for(since.wait(), timeout)
        except TimeoutError:
            return False
        return True


class Signal(asyncio.Event):
    """An ``asyncio.Event`` whose ``set()`` also goes to the other servers of the database
    once a relay is given (``Wakeups.relay_to``)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.relay: Relay | None = None

    def set(self) -> None:
        super().set()
        if self.relay is not None:
            self.relay(self.name)

    def set_here(self) -> None:
        """Set for this server only (what another server told it)."""
        super().set()


class Wakeups:
    """What one part of the server tells the others: new work, new results. With several
    servers on one database, what it tells is also told to them (``relay_to``)."""

    def __init__(self) -> None:
        self.tasks_available = Pulse("tasks_available")
        self.due = Signal("due")
        self.expand = Signal("expand")
        self.finalize = Signal("finalize")
        self.notify = Signal("notify")
        self.events = EventBus()

    # What happened, told by whoever made it happen; each wakes the loops or the waiters that
    # act on it (docs/architecture.md, "Who wakes whom").

    def work_queued(self) -> None:
        """Tasks were queued or given back: agents waiting for a lease look again."""
        self.tasks_available.fire()

    def transfers_may_be_due(self) -> None:
        """A transfer was submitted, resumed or ended a run: the due loop looks before its
        sleep ends (a periodic transfer may be due sooner)."""
        self.due.set()

    def runs_started(self) -> None:
        """Runs began: the expand loop lists their trees into tasks."""
        self.expand.set()

    def objects_ended(self) -> None:
        """Objects ended (results recorded, canceled, skipped): the finalize loop closes the
        runs that have nothing left."""
        self.finalize.set()

    def notices_pending(self) -> None:
        """A run ended or a deadline passed: the notify loop sends what is owed."""
        self.notify.set()

    @property
    def signals(self) -> dict[str, Pulse | Signal]:
        """Each wake-up by its name."""
        return {
            s.name: s
            for s in (self.tasks_available, self.due, self.expand, self.finalize, self.notify)
        }

    def relay_to(self, wake: Relay | None, event: Callable[[Event], None] | None) -> None:
        """From now on, tell ``wake`` the name of each wake-up fired here and ``event`` each
        event published here (None: stop telling)."""
        for signal in self.signals.values():
            signal.relay = wake
        self.events.relay = event

    def woken_elsewhere(self, name: str) -> None:
        """Another server fired wake-up ``name``: fire it here, without telling again. An
        unknown name (a newer server's) is ignored."""
        signal = self.signals.get(name)
        if isinstance(signal, Pulse):
            signal.fire_here()
        elif signal is not None:
            signal.set_here()


def system_clock() -> datetime:
    return datetime.now(UTC)


class Loop(ABC):
    """A loop service: ``run_once()`` every ``interval`` seconds, or sooner when ``wake`` is set."""

    name = "loop"
    interval = 1.0
    # After delay() failed (a database error): look again this soon, not after a whole
    # interval, which for the due loop is a minute that a due run would wait.
    retry_s = 1.0
    # Loops whose work is not claimed row by row run on one server at a time.
    singleton = False

    def __init__(
        self, store: Store, wakeups: Wakeups, clock: Callable[[], datetime] = system_clock
    ) -> None:
        self.store = store
        self.wakeups = wakeups
        self.clock = clock
        # Per cause of database trouble: when it was last logged, and passes failed since.
        self._trouble: dict[str, tuple[float, int]] = {}

    @property
    def wake(self) -> asyncio.Event | None:
        return None

    @abstractmethod
    async def run_once(self) -> None:
        """One step of the loop; tests drive it directly."""

    async def delay(self) -> float:
        return self.interval

    def found_database_away(self) -> None:  # noqa: B027 (a hook, empty unless overridden)
        """Told when a pass failed for the database's state, in ``run_once`` or before it
        (a singleton loop's lock): for loops whose judgement the database's silence would
        mislead. Nothing by default."""

    async def _turn(self) -> None:
        log.debug("%s loop: a pass", self.name)
        if not self.singleton:
            await self.run_once()
            return
        async with self.store.singleton(self.name) as mine:
            if mine:
                await self.run_once()

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("%s loop started", self.name)
        while not stop.is_set():
            if self.wake is not None:
                self.wake.clear()  # a wake-up during run_once() below makes the next one immediate
            try:
                await self._turn()
            except StoreUnavailable as exc:  # the write that found it so has said why
                log.debug("%s loop: %s", self.name, exc)
                self.found_database_away()
            except OperationalError as exc:  # the database's state, not the code's: no traceback
                self._database_failed(exc)
                self.found_database_away()
            except Exception:
                log.exception("%s loop crashed in run_once; it goes on", self.name)
            await self._sleep(stop, await self._safe_delay())
        log.info("%s loop stopped", self.name)

    def _database_failed(self, exc: OperationalError) -> None:
        """One line for why the database failed a pass, at most once a minute per cause."""
        cause = str(exc.orig or exc).splitlines()[0][:200]
        now = time.monotonic()
        last, missed = self._trouble.get(cause, (now - TROUBLE_LOG_EVERY_S, 0))
        if now - last < TROUBLE_LOG_EVERY_S:
            self._trouble[cause] = (last, missed + 1)
            return
        more = f" ({missed} more passes failed so since the last line)" if missed else ""
        log.warning("%s loop: the database failed it: %s%s", self.name, cause, more)
        self._trouble[cause] = (now, 0)

    async def _safe_delay(self) -> float:
        try:
            return max(0.0, await self.delay())
        except Exception:
            log.exception("%s loop could not compute its delay; it looks again shortly", self.name)
            return min(self.interval, self.retry_s)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait())]
        if self.wake is not None:
            waiters.append(asyncio.ensure_future(self.wake.wait()))
        _done, pending = await asyncio.wait(
            waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()
