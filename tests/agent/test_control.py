"""An agent's answers to an administrator's commands: a setting with its source, a refusal
with the status the administrator gets, and an off answered before the agent stops."""

from __future__ import annotations

from pathlib import Path

from ferry.agent.control import AgentControl
from ferry.api.protocol import AgentCommand, CommandAnswer, CommandKind
from ferry.config import AgentSettings
from ferry.daemon.config import load_settings
from ferry.daemon.sources import SettingsOrigin


class Session:
    def __init__(self) -> None:
        self.answers: list[CommandAnswer] = []

    async def answer(self, answer: CommandAnswer) -> bool:
        self.answers.append(answer)
        return True


def control(config: Path, stopped: list[bool]) -> AgentControl:
    def read() -> AgentSettings:
        return load_settings(AgentSettings, path=config, section="agent", given={})

    origin = SettingsOrigin(config, "agent", {}, "FERRY_AGENT_")
    return AgentControl(read(), stop=stopped.append, reread=read, origin=origin)


async def test_off_is_answered_then_done(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\nmax_active = 2\n")
    stopped: list[bool] = []
    session = Session()

    await control(config, stopped).obey(
        [AgentCommand(id="c1", kind=CommandKind.OFF, fast=True)], session
    )

    assert [(a.id, a.ok) for a in session.answers] == [("c1", True)]
    assert stopped == [True]


def test_a_setting_is_told_and_an_unknown_one_is_404(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\nmax_active = 2\n")
    agent = control(config, [])

    told = agent.answer(AgentCommand(id="c1", kind=CommandKind.CONFIG, key="max_active"))
    unknown = agent.answer(AgentCommand(id="c2", kind=CommandKind.CONFIG, key="maxactive"))

    assert (told.value, told.source, told.hidden) == (2, "file", False)
    assert (unknown.ok, unknown.status) == (False, 404)
    assert "did you mean 'max_active'" in unknown.detail


def test_a_file_that_no_longer_reads_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[agent.log]\nlevel = "INFO"\n')
    agent = control(config, [])
    config.write_text("[agent]\nmax_activ = 2\n")

    refused = agent.answer(AgentCommand(id="c1", kind=CommandKind.RECONFIG))

    assert (refused.ok, refused.status) == (False, 422)
    assert "max_activ: unknown key" in refused.detail
    assert agent.settings.log.level == "INFO"
