"""The daemons' settings: TOML file under FERRY_* under the command line, every key checked with a
message naming it; and SIGHUP's reload (``ferry.server.reload``) on a running server's state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ferry.config import SUBSYSTEMS, AgentSettings, LogSettings, ServerSettings
from ferry.daemon.config import load_settings, read_section
from ferry.daemon.logs import REDACTOR
from ferry.errors import ConfigError, StorageNotFound
from ferry.scheduler.notify import NotifyLoop
from ferry.scheduler.optimizer import OptimizerLoop
from ferry.scheduler.registry import RegistryLoop
from ferry.server.app import build_store, create_app
from ferry.server.reload import changes, reload_settings
from ferry.server.state import ServerState


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FERRY_* variable of the calling shell leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("FERRY_"):
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str, name: str = "ferry.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def server(path: Path | None, **given: Any) -> ServerSettings:
    return load_settings(ServerSettings, path=path, section="server", given=given)


def agent(path: Path | None, **given: Any) -> AgentSettings:
    return load_settings(AgentSettings, path=path, section="agent", given=given)


def config_error(path: Path | None, kind: str = "server", **given: Any) -> str:
    load = server if kind == "server" else agent
    with pytest.raises(ConfigError) as raised:
        load(path, **given)
    return str(raised.value)


# --- read_section -------------------------------------------------------------------------


def test_read_section_without_a_file_is_empty() -> None:
    assert read_section(None, "server") == {}


def test_read_section_returns_the_daemons_table_only(tmp_path: Path) -> None:
    path = toml(
        tmp_path, '[server]\nport = 9000\n[server.log]\nlevel = "DEBUG"\n[agent]\nname = "a"\n'
    )
    assert read_section(path, "server") == {"port": 9000, "log": {"level": "DEBUG"}}
    assert read_section(path, "agent") == {"name": "a"}
    assert read_section(toml(tmp_path, "[agent]\n", "only-agent.toml"), "server") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server\n", "not valid TOML"),
        ("[agnt]\nname = 'a'\n", "unknown section [agnt]: use server, agent"),
        ("server = 1\n", "server must be a table ([server])"),
    ],
)
def test_read_section_refuses_a_bad_file_naming_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        read_section(path, "server")
    assert str(raised.value).startswith(f"{path}: ")
    assert expected in str(raised.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert config_error(path) == f"{path}: No such file or directory"


# --- priority: command line > environment > file > defaults ------------------------------


def test_defaults_without_file_environment_or_command_line() -> None:
    settings = server(None)
    assert (settings.host, settings.port, settings.agents) == ("127.0.0.1", 8470, 2)
    assert settings.log == LogSettings()
    assert type(settings) is ServerSettings


def test_each_source_overrides_the_ones_below_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, "[server]\nport = 1001\ngrace_s = 1.5\n")
    assert server(path).port == 1001
    monkeypatch.setenv("FERRY_PORT", "1002")
    assert server(path).port == 1002
    assert server(path, port=1003).port == 1003
    assert server(path, port=None).port == 1002  # None: not given on the command line
    assert server(None).port == 1002
    monkeypatch.delenv("FERRY_PORT")
    assert server(path, port=None).port == 1001
    assert server(path).grace_s == 1.5  # other keys of the file are kept throughout


def test_nested_log_settings_merge_across_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(
        tmp_path,
        f"""[server.log]
dir = "{tmp_path / "logs"}"
level = "ERROR"
levels = {{ "ferry.api" = "debug" }}
backups = 3
""",
    )
    monkeypatch.setenv("FERRY_LOG__LEVEL", "warning")
    monkeypatch.setenv("FERRY_LOG__BACKUPS", "7")
    settings = server(path, log={"max_bytes": 4096, "backups": 9})
    assert settings.log == LogSettings(
        dir=tmp_path / "logs",
        level="WARNING",  # the environment over the file, upper-cased
        levels={"ferry.api": "DEBUG"},  # the file
        max_bytes=4096,  # the command line
        backups=9,  # the command line over the environment over the file
    )


def test_agent_reads_the_agent_table_and_ferry_agent_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(
        tmp_path,
        '[server]\nport = 9000\ngrace_s = 1.0\n[agent]\nname = "edge-1"\nmax_active = 2\n',
    )
    monkeypatch.setenv("FERRY_AGENT_GRACE_S", "4")
    monkeypatch.setenv("FERRY_AGENT_LOG__LEVEL", "debug")
    monkeypatch.setenv("FERRY_GRACE_S", "99")  # the server's variable, not the agent's
    monkeypatch.setenv("FERRY_AGENT_SECRET", "s" * 32)  # a command-line option, not a setting
    settings = agent(path)
    assert (settings.name, settings.max_active, settings.grace_s) == ("edge-1", 2, 4.0)
    assert settings.log.level == "DEBUG"
    assert agent(path, max_active=5, name="edge-2").max_active == 5
    assert type(settings) is AgentSettings
    assert server(path).grace_s == 99.0  # and the server does not read FERRY_AGENT_GRACE_S


# --- unknown keys and bad values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("server", "[server]\nprot = 8000\n", "server.prot: unknown key (did you mean 'port'?)"),
        (
            "server",
            "[server]\nhung_timout_s = 5\n",
            "server.hung_timout_s: unknown key (did you mean 'hung_timeout_s'?)",
        ),
        (
            "agent",
            "[agent]\nmax_actve = 2\n",
            "agent.max_actve: unknown key (did you mean 'max_active'?)",
        ),
        ("server", "[server]\nzzzzzz = 1\n", "server.zzzzzz: unknown key"),
    ],
)
def test_an_unknown_key_is_named_with_a_guess(
    tmp_path: Path, kind: str, text: str, message: str
) -> None:
    path = toml(tmp_path, text)
    assert config_error(path, kind) == f"{path}: {message}"


def test_the_agents_secret_and_token_are_never_read_from_the_file(tmp_path: Path) -> None:
    for key in ("secret", "token"):
        path = toml(tmp_path, f"[agent]\n{key} = 'x'\n")
        assert config_error(path, "agent").startswith(f"{path}: agent.{key}: unknown key")


def test_an_unknown_nested_key_is_named_with_a_guess(tmp_path: Path) -> None:
    path = toml(tmp_path, '[server.log]\nlevle = "DEBUG"\n')
    assert config_error(path) == f"{path}: server.log.levle: unknown key (did you mean 'level'?)"


def test_an_unknown_nested_key_is_named(tmp_path: Path) -> None:
    path = toml(tmp_path, "[server.log]\nmax_byts = 2048\n")
    assert config_error(path).startswith(f"{path}: server.log.max_byts: unknown key")


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ("[server]\nport = 70000\n", "server.port", "less than or equal to 65535"),
        ("[server]\nport = 'http'\n", "server.port", "valid integer"),
        ("[server]\nagents = -1\n", "server.agents", "greater than or equal to 0"),
        ("[server.log]\nlevel = 'LOUD'\n", "server.log.level", "'LOUD' is not a level"),
        (
            "[server.log]\nlevels = { 'ferry.db' = 'DEBUG' }\n",
            "server.log.levels",
            "unknown subsystem 'ferry.db'",
        ),
        (
            "[server.log]\nlevels = { 'ferry.api' = 'chatty' }\n",
            "server.log.levels",
            "'chatty' is not a level",
        ),
        ("[server.log]\nmax_bytes = 10\n", "server.log.max_bytes", "greater than or equal to 1024"),
        ("[server.log]\nbackups = -1\n", "server.log.backups", "greater than or equal to 0"),
        (
            "[server.storages]\n'bad name' = 'file:///x'\n",
            "server.storages",
            "'bad name' is not a valid storage name",
        ),
        (
            "[server]\ndb = 'sqlite+aiosqlite://'\n",
            "server.db",
            "an in-memory SQLite database cannot be shared",
        ),
        (
            "[server]\ndb = 'sqlite+aiosqlite:///:memory:'\n",
            "server.db",
            "give it a file",
        ),
    ],
)
def test_a_bad_value_is_named(tmp_path: Path, text: str, key: str, why: str) -> None:
    path = toml(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: {key}: ")
    assert why in message
    assert "\n" not in message


def test_a_database_in_a_file_or_on_a_server_is_taken(tmp_path: Path) -> None:
    for url in ("sqlite+aiosqlite:///ferry.db", "postgresql+psycopg://ferry@db.example.org/ferry"):
        assert ServerSettings(db=url).db_url == url


def test_a_bad_agent_value_is_named(tmp_path: Path) -> None:
    path = toml(tmp_path, "[agent]\nmax_active = 0\n")
    assert config_error(path, "agent").startswith(f"{path}: agent.max_active: ")


def test_every_bad_key_is_named_on_one_line(tmp_path: Path) -> None:
    path = toml(tmp_path, "[server]\nprot = 1\nagents = 100\n")
    message = config_error(path)
    assert "\n" not in message
    assert f"{path}: server.prot: unknown key (did you mean 'port'?)" in message.split("; ")
    assert any(part.startswith(f"{path}: server.agents: ") for part in message.split("; "))


def test_bad_values_from_the_environment_and_the_command_line_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FERRY_PORT", "abc")
    assert config_error(None).startswith("server.port: ")
    monkeypatch.delenv("FERRY_PORT")
    monkeypatch.setenv("FERRY_LOG__LEVEL", "LOUD")
    assert config_error(None).startswith("server.log.level: ")
    monkeypatch.delenv("FERRY_LOG__LEVEL")
    assert config_error(None, agents=99).startswith("server.agents: ")
    assert config_error(None, log={"level": "nope"}).startswith("server.log.level: ")


def test_a_malformed_complex_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_STORAGES", "not json")
    assert "storages" in config_error(None)


def test_log_settings_normalise_and_check_levels() -> None:
    settings = LogSettings(level="debug", levels={"ferry.engine": "warning"})
    assert (settings.level, settings.levels) == ("DEBUG", {"ferry.engine": "WARNING"})
    assert set(SUBSYSTEMS) >= {"ferry.api", "ferry.scheduler", "ferry.security", "ferry.daemon"}
    with pytest.raises(ValidationError, match="not a level"):
        LogSettings(level="verbose")
    with pytest.raises(ValidationError, match="unknown subsystem"):
        LogSettings(levels={"uvicorn": "INFO"})
    with pytest.raises(ValidationError, match="extra"):
        LogSettings.model_validate({"file": "x.log"})


# --- SIGHUP: changes() and reload_settings() -----------------------------------------------


def test_changes_lists_dotted_keys_with_old_and_new_values() -> None:
    old = ServerSettings(local_root=Path("/r"))
    assert changes(old, old.model_copy()) == {}
    new = ServerSettings(
        local_root=Path("/r"),
        port=9000,
        log=LogSettings(level="DEBUG", levels={"ferry.api": "ERROR"}),
        storages={"data": "file:///srv/data"},
    )
    assert changes(old, new) == {
        "log.level": ("INFO", "DEBUG"),
        "log.levels.ferry.api": (None, "ERROR"),
        "port": (8470, 9000),
        "storages": ({}, {"data": "file:///srv/data"}),  # whole: storage names hold no dots
    }


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Reloading reconfigures the process's logging: put it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ["uvicorn.error", *SUBSYSTEMS]
    levels = {name: logging.getLogger(name).level for name in names}
    known = set(REDACTOR.known)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    REDACTOR.known = known


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def records(restore_logging: None) -> Iterator[Records]:
    """What ferry.* logs, caught on the ``ferry`` logger (reloading replaces the root's
    handlers, so pytest's own capture would miss the later lines)."""
    handler = Records()
    ferry = logging.getLogger("ferry")
    ferry.addHandler(handler)
    ferry.setLevel(logging.INFO)
    yield handler
    ferry.removeHandler(handler)


BASE = """[server]
data_dir = "{tmp}/.ferry"
local_root = "{tmp}/root"
agents = 0
heartbeat_s = 0.2
"""


@pytest.fixture
async def running(tmp_path: Path, records: Records) -> AsyncIterator[ServerState]:
    """A server's state as ``ferry server --config FILE`` builds it, its lifespan running."""
    (tmp_path / "root").mkdir()
    config = toml(tmp_path, BASE.format(tmp=tmp_path))
    settings = server(config)
    state = ServerState(settings=settings, store=build_store(settings), config=config)
    app = create_app(settings, state=state)
    async with app.router.lifespan_context(app):
        yield state


def rewrite(state: ServerState, extra: str) -> None:
    assert state.config is not None
    tmp = state.config.parent
    state.config.write_text(BASE.format(tmp=tmp) + extra)


async def test_reload_without_changes_changes_nothing(
    running: ServerState, records: Records
) -> None:
    before = running.settings
    assert await reload_settings(running, running.config, {}) is True
    assert running.settings is before
    assert "SIGHUP: configuration reloaded; nothing changed" in records.messages()


async def test_reload_applies_levels_intervals_and_storages_and_keeps_restart_keys(
    running: ServerState, records: Records, tmp_path: Path
) -> None:
    extra_root = tmp_path / "extra"
    extra_root.mkdir()
    rewrite(
        running,
        f"""port = 9999
agent_lost_after_s = 7.0
notify_retry_s = 3.0
health_check_s = 120.0
optimizer_window_s = 8.0
[server.storages]
extra = "{extra_root.as_uri()}"
[server.log]
level = "DEBUG"
levels = {{ "ferry.api" = "ERROR" }}
""",
    )
    port = running.settings.port
    assert await reload_settings(running, running.config, {}) is True

    settings = running.settings
    assert settings.port == port  # restart-only: kept until the next start
    assert settings.log.level == "DEBUG"
    assert settings.agent_lost_after_s == 7.0
    assert logging.getLogger("ferry").level == logging.DEBUG
    assert logging.getLogger("ferry.api").level == logging.ERROR
    registry = next(loop for loop in running.loops if isinstance(loop, RegistryLoop))
    assert registry.timings.lost_after == timedelta(seconds=7)
    assert registry.timings.health_slow == timedelta(seconds=120)
    notify = next(loop for loop in running.loops if isinstance(loop, NotifyLoop))
    assert notify.retry_base == timedelta(seconds=3)
    optimizer = next(loop for loop in running.loops if isinstance(loop, OptimizerLoop))
    assert optimizer.window_s == 8.0
    assert (await running.store.get_storage("extra")).url == extra_root.as_uri()

    messages = records.messages()
    assert f"SIGHUP: port: {port!r} → 9999 (takes effect at the next start)" in messages
    assert "SIGHUP: log.level: 'INFO' → 'DEBUG'" in messages
    assert "SIGHUP: agent_lost_after_s: 30.0 → 7.0" in messages
    assert f"SIGHUP: storage extra declared ({extra_root.as_uri()})" in messages


async def test_reload_of_an_invalid_file_keeps_everything(
    running: ServerState, records: Records
) -> None:
    before = running.settings
    rewrite(running, 'prot = 1\n[server.log]\nlevel = "DEBUG"\n')
    assert await reload_settings(running, running.config, {}) is False
    assert running.settings is before
    assert logging.getLogger("ferry").getEffectiveLevel() == logging.INFO
    errors = records.messages(logging.ERROR)
    assert len(errors) == 1
    assert errors[0].startswith("SIGHUP: configuration not reloaded: ")
    assert "server.prot: unknown key (did you mean 'port'?)" in errors[0]


async def test_each_reload_is_audited_by_the_keys_it_changed_not_their_values(
    running: ServerState, tmp_path: Path
) -> None:
    url = (tmp_path / "root").as_uri()
    rewrite(running, f'notify_retry_s = 3.0\n[server.storages]\nsecret = "{url}"\n')
    assert await reload_settings(running, running.config, {})
    rewrite(running, "prot = 1\n")
    assert not await reload_settings(running, running.config, {})

    records = await running.store.list_audit()
    assert [(r.entry.actor, r.entry.action, r.entry.status) for r in records] == [
        ("signal", "SIGHUP reload", 200),
        ("signal", "SIGHUP reload", 422),
    ]
    assert records[0].entry.params == {"changed": ["notify_retry_s", "storages"]}
    assert url not in str(records)


async def test_a_storage_no_longer_declared_stays_registered(
    running: ServerState, records: Records, tmp_path: Path
) -> None:
    url = (tmp_path / "root").as_uri()
    rewrite(running, f'[server.storages]\nkept = "{url}"\n')
    assert await reload_settings(running, running.config, {})
    rewrite(running, "")
    assert await reload_settings(running, running.config, {})
    assert running.settings.storages == {}
    assert (await running.store.get_storage("kept")).url == url
    assert any(
        "SIGHUP: storage kept is no longer declared; it stays registered" in m
        for m in records.messages(logging.WARNING)
    )
    with pytest.raises(StorageNotFound):
        await running.store.get_storage("never-declared")


async def test_the_command_line_still_wins_on_reload(
    running: ServerState, records: Records
) -> None:
    rewrite(running, '[server.log]\nlevel = "DEBUG"\n')
    assert await reload_settings(running, running.config, {"log": {"level": "WARNING"}})
    assert running.settings.log.level == "WARNING"
    assert logging.getLogger("ferry").level == logging.WARNING


def test_local_agents_have_names_of_their_own_on_a_shared_database() -> None:
    # Two servers' local-1s on one PostgreSQL revoked each other's tokens in a loop.
    assert ServerSettings().local_agent_prefix == "local"  # SQLite: one server to a database
    shared = ServerSettings(db="postgresql+psycopg://ferry@db/ferry", port=8471)
    prefix = shared.local_agent_prefix
    assert prefix.endswith("-8471")
    assert prefix != ServerSettings(db=shared.db, port=8472).local_agent_prefix
    assert ServerSettings(db=shared.db, agent_prefix="node-a").local_agent_prefix == "node-a"
    with pytest.raises(ValidationError):
        ServerSettings(agent_prefix="two words")


def test_an_agent_takes_several_servers_in_order_and_refuses_what_is_no_server() -> None:
    settings = agent(None, server=" https://a.example.org:8470/, http://10.0.0.2:8470")
    assert settings.servers == ["https://a.example.org:8470", "http://10.0.0.2:8470"]
    assert agent(None).servers == ["http://127.0.0.1:8470"]
    for bad in ("a.example.org:8470", "http://a:1,", "ftp://a", "http://a:1,http://a:1"):
        with pytest.raises(ConfigError):
            agent(None, server=bad)
