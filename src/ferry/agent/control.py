"""An agent's control: its reconfiguration (on SIGHUP, or ``ferry admin reconfig``) and the
administrator's commands its heartbeat replies bring (``ferry admin``), each answered to the
server before it takes effect (an ``off`` answers, then stops)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from ferry.agent.bandwidth import AgentBandwidth
from ferry.api.protocol import AgentCommand, CommandAnswer, CommandKind
from ferry.config import AgentSettings
from ferry.daemon.logs import configure_logging
from ferry.daemon.sources import SettingsOrigin, setting
from ferry.domain.timetable import Timetable
from ferry.errors import ApiError, FerryError, NotFound

log = logging.getLogger("ferry.agent")

# What reconfiguration reads: the settings as the command line, environment and file now give.
Reread = Callable[[], AgentSettings]


class AgentControl:
    """The agent's settings in force (its log settings and bandwidth timetable as last
    reconfigured), and what it does when told to reconfigure, stop, or tell a setting.
    ``stop(fast)`` stops the agent as SIGTERM (graceful) or SIGQUIT (``fast``) does;
    ``bandwidth`` is the agent's own, whose timetable a reconfiguration changes in place."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        stop: Callable[[bool], None],
        reread: Reread | None = None,
        origin: SettingsOrigin | None = None,
        bandwidth: AgentBandwidth | None = None,
    ) -> None:
        self.settings = settings
        self._bandwidth = bandwidth
        self._stop = stop
        self._reread = reread
        self._origin = origin

    def reconfigure(self, cause: str = "SIGHUP") -> list[str]:
        """Apply the log settings read again, and return the keys that differ from those in
        force; the others are named in the log as needing a restart. Raises ``FerryError``
        (logged; nothing changes) when the configuration does not read."""
        log.info("%s: reading the configuration again", cause)
        if self._reread is None:
            raise FerryError("this agent was started without settings to read again")
        try:
            new = self._reread()
        except FerryError as exc:
            log.error("the configuration was not read again, nothing changed: %s", exc)
            raise
        old = self.settings
        configure_logging(new.log, daemon=f"agent-{old.name or 'agent'}")
        applied: dict[str, Any] = {"log": new.log}
        if self._bandwidth is not None and new.bandwidth_timetable is not None:
            # A timetable changed in place; one added or removed needs a restart (the
            # copies of an agent without one are not throttled at all).
            self._bandwidth.set(Timetable.parse(new.bandwidth_timetable), new.timezone)
            applied |= {"bandwidth_timetable": new.bandwidth_timetable, "timezone": new.timezone}
        self.settings = old.model_copy(update=applied)
        before, after = old.model_dump(), new.model_dump()
        changed = sorted(key for key in after if after[key] != before.get(key))
        if later := [key for key in changed if key not in applied]:
            log.warning("changed, applied at the next start: %s", ", ".join(later))
        return changed

    async def obey(self, commands: list[AgentCommand], session: Any) -> None:
        """Carry out each command, post its answer, and then, for ``off``, stop."""
        for command in commands:
            answer = self.answer(command)
            try:
                await session.answer(answer)
                log.debug("answered %s: %s", command.kind.value, answer.detail or answer.ok)
            except (ApiError, httpx.HTTPError) as exc:
                log.warning("could not answer the server's %s: %s", command.kind.value, exc)
            if command.kind is CommandKind.OFF:
                self._stop(command.fast)

    def answer(self, command: AgentCommand) -> CommandAnswer:
        """What the agent answers to ``command``; an ``off`` is answered, not done yet."""
        log.info("the server relays an administrator's %s", command.kind.value)
        if command.kind is CommandKind.OFF:
            how = "giving back every lease now" if command.fast else "finishing or giving back"
            return CommandAnswer(id=command.id, ok=True, detail=f"stopping: {how}")
        if command.kind is CommandKind.RECONFIG:
            try:
                changed = self.reconfigure("ferry admin reconfig")
            except FerryError as exc:
                return CommandAnswer(id=command.id, ok=False, status=422, detail=str(exc))
            return CommandAnswer(id=command.id, ok=True, detail="reconfigured", changed=changed)
        return self._config(command)

    def _config(self, command: AgentCommand) -> CommandAnswer:
        if self._origin is None or command.key is None:
            return CommandAnswer(id=command.id, ok=False, status=409, detail="no settings to tell")
        try:
            found = setting(self.settings, self._origin, command.key)
        except NotFound as exc:
            return CommandAnswer(id=command.id, ok=False, status=404, detail=str(exc))
        return CommandAnswer(
            id=command.id, ok=True, value=found.value, source=found.source, hidden=found.hidden
        )
