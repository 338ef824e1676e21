"""The commands waiting for an agent's heartbeat: delivered once, answered by that agent
only, and a request that waits too long told so (the command withdrawn)."""

from __future__ import annotations

import asyncio

import pytest

from ferry.api.protocol import AgentCommand, CommandAnswer, CommandKind
from ferry.errors import AgentDidNotAnswer
from ferry.server.agent_commands import CommandBox


async def test_a_command_is_delivered_once_and_its_answer_returned() -> None:
    box = CommandBox()
    asked = asyncio.create_task(box.ask("ag1", "a1", AgentCommand(id="", kind=CommandKind.OFF), 5))
    await asyncio.sleep(0)
    delivered = box.take("ag1")

    assert [c.kind for c in delivered] == [CommandKind.OFF]
    assert box.take("ag1") == []
    assert not box.answer("ag2", CommandAnswer(id=delivered[0].id, ok=True))  # not its own
    assert box.answer("ag1", CommandAnswer(id=delivered[0].id, ok=True, detail="stopping"))
    assert (await asked).detail == "stopping"
    assert not box.answer("ag1", CommandAnswer(id=delivered[0].id, ok=True))  # answered


async def test_an_unanswered_command_times_out_and_is_withdrawn() -> None:
    box = CommandBox()
    command = AgentCommand(id="", kind=CommandKind.RECONFIG)

    with pytest.raises(AgentDidNotAnswer, match="agent a1 did not answer reconfig within 0 s"):
        await box.ask("ag1", "a1", command, 0.05)
    assert box.take("ag1") == []
    assert not box.answer("ag1", CommandAnswer(id=command.id, ok=True))
