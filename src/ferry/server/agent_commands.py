"""Commands for agents: an administrator's request queues one for its agent, the agent's next
heartbeat reply carries it, the agent posts its answer, and the request, which waited for that
answer (bounded), returns it. An agent only opens connections to the server; this is how the
server reaches it. Kept in this server's memory: with several servers, the agent must
heartbeat to the one that was asked."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict

from ferry.api.protocol import AgentCommand, CommandAnswer
from ferry.errors import AgentDidNotAnswer


class CommandBox:
    """The commands waiting for each agent's heartbeat, and the requests waiting for their
    answers."""

    def __init__(self) -> None:
        self._queued: defaultdict[str, list[AgentCommand]] = defaultdict(list)
        # command id → the agent it was sent to, and the request's future
        self._waiting: dict[str, tuple[str, asyncio.Future[CommandAnswer]]] = {}

    async def ask(
        self, agent_id: str, name: str, command: AgentCommand, timeout: float
    ) -> CommandAnswer:
        """Queue ``command`` for the agent and return its answer; ``AgentDidNotAnswer`` when
        none came within ``timeout`` seconds (the command is withdrawn if not delivered)."""
        command.id = secrets.token_hex(8)
        answered: asyncio.Future[CommandAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[command.id] = (agent_id, answered)
        self._queued[agent_id].append(command)
        try:
            return await asyncio.wait_for(answered, timeout)
        except TimeoutError:
            raise AgentDidNotAnswer(name, command.kind.value, timeout) from None
        finally:
            self._waiting.pop(command.id, None)
            if command in self._queued.get(agent_id, []):
                self._queued[agent_id].remove(command)

    def take(self, agent_id: str) -> list[AgentCommand]:
        """The commands queued for the agent, now delivered (each once)."""
        return self._queued.pop(agent_id, [])

    def answer(self, agent_id: str, answer: CommandAnswer) -> bool:
        """Give the agent's ``answer`` to the request waiting for it; False when none waits
        any more, or the command was another agent's."""
        agent, waiting = self._waiting.get(answer.id, ("", None))
        if waiting is None or agent != agent_id or waiting.done():
            return False
        waiting.set_result(answer)
        return True
