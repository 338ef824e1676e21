"""Where each setting came from (``ferry admin config``): the command line over the
environment over the file over the default, a table and its keys, and secrets never told."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.config import AgentSettings, ServerSettings
from ferry.daemon.config import load_settings
from ferry.daemon.sources import SettingsOrigin, setting
from ferry.errors import NotFound


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ferry.toml"
    path.write_text(
        "[server]\nnotify_retry_s = 2.5\ngrace_s = 4\n"
        'db = "postgresql+psycopg://ferry:pw@db.example/ferry"\n'
        '[server.log]\nlevel = "WARNING"\n'
        "[agent]\nmax_active = 3\n"
    )
    return path


def server_origin(config: Path, **given: object) -> SettingsOrigin:
    return SettingsOrigin(config, "server", dict(given), "FERRY_")


def told(settings: object, origin: SettingsOrigin, key: str) -> tuple[object, str, bool]:
    found = setting(settings, origin, key)
    return found.value, found.source, found.hidden


def test_each_source_in_its_priority(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_HEARTBEAT_S", "2")
    monkeypatch.setenv("FERRY_GRACE_S", "6")
    given = {"grace_s": 8.0, "port": 9000}
    settings = load_settings(ServerSettings, path=config, section="server", given=given)
    origin = server_origin(config, **given)

    assert told(settings, origin, "grace_s") == (8.0, "command line", False)
    assert told(settings, origin, "heartbeat_s") == (2.0, "environment", False)
    assert told(settings, origin, "notify_retry_s") == (2.5, "file", False)
    assert told(settings, origin, "log.level") == ("WARNING", "file", False)
    assert told(settings, origin, "hung_timeout_s") == (60.0, "default", False)
    assert told(settings, origin, "log.backups") == (5, "default", False)


def test_a_nested_key_from_its_tables_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_LOG__LEVEL", "ERROR")
    settings = load_settings(ServerSettings, path=config, section="server", given={})

    assert told(settings, server_origin(config), "log.level") == ("ERROR", "environment", False)


def test_an_option_read_from_its_own_variable_is_from_the_environment(config: Path) -> None:
    given = {"server": "http://127.0.0.1:9", "name": "a1"}
    settings = load_settings(AgentSettings, path=config, section="agent", given=given)
    origin = SettingsOrigin(config, "agent", given, "FERRY_AGENT_", frozenset({"server"}))

    assert told(settings, origin, "server") == ("http://127.0.0.1:9", "environment", False)
    assert told(settings, origin, "name") == ("a1", "command line", False)
    assert told(settings, origin, "max_active") == (3, "file", False)


def test_secrets_are_set_but_hidden(config: Path) -> None:
    given = {"metrics_token": "a-long-metrics-token"}
    settings = load_settings(ServerSettings, path=config, section="server", given=given)
    origin = server_origin(config, **given)

    assert told(settings, origin, "metrics_token") == (None, "command line", True)
    assert told(settings, origin, "db") == (None, "file", True)  # a URL with its password
    assert told(settings, origin, "tls_key") == (None, "default", False)  # not set


def test_an_unknown_key_is_not_found_with_a_guess(config: Path) -> None:
    settings = load_settings(ServerSettings, path=config, section="server", given={})

    with pytest.raises(NotFound, match=r"no setting 'log.levle'.*did you mean 'log.level'"):
        setting(settings, server_origin(config), "log.levle")
