"""An agent's own bandwidth (``--bandwidth-timetable``): the rate its timetable gives at each
moment, in its time zone, shared evenly by the copies moving bytes then, never above a copy's
channel share; a reconfiguration replaces the timetable in place, and one added to an agent
that had none waits for its restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferry.agent.bandwidth import AgentBandwidth
from ferry.agent.control import AgentControl
from ferry.config import AgentSettings
from ferry.daemon.config import load_settings
from ferry.domain.timetable import Timetable
from ferry.errors import ConfigError

MB = 1024 * 1024
MONDAY_0759 = datetime(2026, 12, 7, 7, 59, 30, tzinfo=UTC)  # a Monday


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_rate_follows_the_clock_and_is_split_by_the_copies_moving() -> None:
    clock = Clock(MONDAY_0759)
    bandwidth = AgentBandwidth(Timetable.parse("Mon-Fri 08:00,8M; 19:00,off"), clock=clock)
    assert bandwidth.rate_now() is None  # Monday before 08:00: Sunday's 19:00 "off" holds
    assert bandwidth.share() is None

    clock.now += timedelta(seconds=30)
    assert bandwidth.share() == 8 * MB  # one copy or none: the whole rate
    with bandwidth.copy(), bandwidth.copy():
        assert bandwidth.copying == 2
        assert bandwidth.share() == 4 * MB
        with bandwidth.copy():
            assert bandwidth.share() == 8 * MB // 3
    assert bandwidth.copying == 0


def test_the_timetable_is_read_in_the_agents_time_zone() -> None:
    clock = Clock(MONDAY_0759)  # 08:59:30 in Rome
    rome = AgentBandwidth(Timetable.parse("08:00,1M; 09:00,2M"), "Europe/Rome", clock=clock)
    assert rome.rate_now() == 1 * MB
    clock.now += timedelta(seconds=30)
    assert rome.rate_now() == 2 * MB


def test_a_copy_takes_the_lesser_of_its_channel_share_and_the_agents() -> None:
    bandwidth = AgentBandwidth(Timetable.parse("4M"))
    assert bandwidth.limit(None) == 4 * MB
    assert bandwidth.limit(1 * MB) == 1 * MB
    assert bandwidth.limit(16 * MB) == 4 * MB
    unlimited = AgentBandwidth(Timetable.parse("off"))
    assert unlimited.limit(None) is None
    assert unlimited.limit(2 * MB) == 2 * MB


def _control(config: Path, bandwidth: AgentBandwidth | None) -> AgentControl:
    def read() -> AgentSettings:
        return load_settings(AgentSettings, path=config, section="agent", given={})

    return AgentControl(read(), stop=lambda _fast: None, reread=read, bandwidth=bandwidth)


def test_a_reconfiguration_replaces_the_timetable_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nbandwidth_timetable = "1M"\n')
    bandwidth = AgentBandwidth(Timetable.parse("1M"))
    agent = _control(config, bandwidth)
    config.write_text(
        '[agent]\nbandwidth_timetable = "08:00,3M; 20:00,off"\ntimezone = "Asia/Tokyo"\n'
    )

    changed = agent.reconfigure()  # its log goes to standard error, as configured

    assert changed == ["bandwidth_timetable", "timezone"]
    assert (bandwidth.timetable.text, bandwidth.timezone) == ("08:00,3M; 20:00,off", "Asia/Tokyo")
    assert agent.settings.bandwidth_timetable == "08:00,3M; 20:00,off"
    # The warning the next test sees, for a key not applied, is not given here.
    assert "next start" not in capsys.readouterr().err


def test_a_timetable_added_to_an_agent_without_one_waits_for_its_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\n")
    agent = _control(config, None)
    config.write_text('[agent]\nbandwidth_timetable = "1M"\n')

    assert agent.reconfigure() == ["bandwidth_timetable"]

    assert agent.settings.bandwidth_timetable is None
    assert "changed, applied at the next start: bandwidth_timetable" in capsys.readouterr().err


def test_a_timetable_that_does_not_read_is_refused_with_its_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nbandwidth_timetable = "Mon 25:00,1M"\n')
    with pytest.raises(ConfigError, match=r"bandwidth_timetable.*no such time of day"):
        load_settings(AgentSettings, path=config, section="agent", given={})
