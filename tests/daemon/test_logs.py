"""Daemon logging: stderr and a rotating file of the daemon's own, levels per subsystem, and
secrets redacted from every line whoever wrote it (``ferry.daemon.logs``)."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.config import SUBSYSTEMS, LogSettings
from ferry.daemon.logs import REDACTOR, OneLine, Redactor, apply_levels, configure_logging

SECRET = "f3e1c0ffee5ecret0123456789abcdef"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes the whole process's logging: put it back as it was."""
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


def flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_logs_go_to_stderr_and_to_the_daemons_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "not" / "yet"
    configure_logging(LogSettings(dir=folder), daemon="agent-edge")
    logging.getLogger("ferry.api").info("listening on %s", "port 1")
    logging.getLogger("ferry.engine").debug("not at INFO")
    flush()
    lines = (folder / "agent-edge.log").read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" agent-edge INFO ferry.api: listening on port 1")
    assert capsys.readouterr().err.splitlines() == lines


def test_without_a_folder_only_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(), daemon="server")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1
    assert not isinstance(handlers[0], logging.FileHandler)
    logging.getLogger("ferry.scheduler").warning("a warning")
    assert capsys.readouterr().err.endswith(" server WARNING ferry.scheduler: a warning\n")


def test_configuring_again_replaces_and_closes_the_handlers(tmp_path: Path) -> None:
    configure_logging(LogSettings(dir=tmp_path / "one"), daemon="server")
    first = list(logging.getLogger().handlers)
    configure_logging(LogSettings(dir=tmp_path / "two", level="WARNING"), daemon="server")
    second = logging.getLogger().handlers
    assert len(second) == 2
    assert not set(first) & set(second)
    old_file = next(h for h in first if isinstance(h, logging.FileHandler))
    assert old_file.stream is None  # closed
    logging.getLogger("ferry.api").warning("after")
    logging.getLogger("ferry.api").info("filtered")
    flush()
    assert (tmp_path / "one" / "server.log").read_text() == ""
    assert (tmp_path / "two" / "server.log").read_text().endswith("ferry.api: after\n")


def test_the_file_rotates_at_max_bytes_keeping_backups(tmp_path: Path) -> None:
    settings = LogSettings(dir=tmp_path, max_bytes=1024, backups=2)
    configure_logging(settings, daemon="server")
    log = logging.getLogger("ferry.scheduler")
    for number in range(100):
        log.info("line %03d %s", number, "x" * 60)
    flush()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["server.log", "server.log.1", "server.log.2"]
    for path in tmp_path.iterdir():
        text = path.read_text()
        longest = max(len(line) + 1 for line in text.splitlines())
        assert path.stat().st_size <= settings.max_bytes + longest
    # The newest lines are in server.log, the ones before them in server.log.1.
    assert "line 099" in (tmp_path / "server.log").read_text()
    last_of_backup = (tmp_path / "server.log.1").read_text().splitlines()[-1]
    first_of_current = (tmp_path / "server.log").read_text().splitlines()[0]
    assert int(last_of_backup.split("line ")[1][:3]) + 1 == int(
        first_of_current.split("line ")[1][:3]
    )


def test_levels_per_subsystem() -> None:
    configure_logging(
        LogSettings(level="WARNING", levels={"ferry.engine": "DEBUG", "ferry.api": "error"}),
        daemon="server",
    )
    assert logging.getLogger("ferry").level == logging.WARNING
    assert logging.getLogger("uvicorn.error").level == logging.WARNING
    assert logging.getLogger("ferry.engine").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("ferry.engine.copy").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("ferry.api").isEnabledFor(logging.WARNING)
    assert logging.getLogger("ferry.api").isEnabledFor(logging.ERROR)
    assert not logging.getLogger("ferry.scheduler").isEnabledFor(logging.INFO)
    assert logging.getLogger("ferry.scheduler").isEnabledFor(logging.WARNING)
    assert logging.getLogger().level == logging.WARNING  # other libraries: warnings only


def test_a_level_no_longer_given_falls_back_to_the_daemons_level() -> None:
    apply_levels(LogSettings(levels={"ferry.api": "DEBUG", "ferry.security": "ERROR"}))
    apply_levels(LogSettings(level="INFO"))
    for name in ("ferry.api", "ferry.security"):
        assert logging.getLogger(name).level == logging.NOTSET
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO


def test_the_daemon_subsystem_level_falls_back_too() -> None:
    apply_levels(LogSettings(levels={"ferry.daemon": "DEBUG"}))
    apply_levels(LogSettings(level="WARNING"))
    assert logging.getLogger("ferry.daemon").getEffectiveLevel() == logging.WARNING


# --- redaction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token=abc123 next", "token=[redacted] next"),
        ("password: hunter2", "password: [redacted]"),
        ("PASSPHRASE=open-sesame;x", "PASSPHRASE=[redacted];x"),
        ('{"secret": "abc", "n": 1}', '{"secret": "[redacted]", "n": 1}'),
        ("s3://b?secret_key=abc&region=eu", "s3://b?secret_key=[redacted]&region=eu"),
        (
            "api-key=k1 api_key=k2 apikey=k3",
            "api-key=[redacted] api_key=[redacted] apikey=[redacted]",
        ),
        ("access_key='AKIA' auth=xyz", "access_key='[redacted]' auth=[redacted]"),
        ("Authorization: Bearer eyJ.abc-def_~+/=", "Authorization: Bearer [redacted]"),
        ("bearer   tok", "bearer   [redacted]"),
        ("tokens were 3, secrets 2", "tokens were 3, secrets 2"),  # no key=value: untouched
        (f"registered with {SECRET}!", "registered with [redacted]!"),
        ("short one: abc1234", "short one: abc1234"),  # too short to register
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert Redactor([SECRET, "abc1234"]).redact(text) == expected


@pytest.mark.parametrize(
    "text", ["client_secret=xyz12345", "aws_secret_access_key=AKIAXYZ", "db_password=pw"]
)
def test_redact_prefixed_secret_keys(text: str) -> None:
    assert Redactor().redact(text).endswith("=[redacted]")


def test_add_registers_only_long_enough_secrets() -> None:
    redactor = Redactor()
    redactor.add("1234567")
    redactor.add(SECRET)
    assert redactor.known == {SECRET}
    assert redactor.redact(f"1234567 {SECRET}") == "1234567 [redacted]"


def test_the_filter_redacts_message_arguments_and_exception_text() -> None:
    redactor = Redactor([SECRET])
    try:
        raise RuntimeError(f"cannot connect with token={SECRET[:10]} and {SECRET}")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "httpx", logging.ERROR, __file__, 1, "failed: %s (%s)", (exc, SECRET), exc.__traceback__
        )
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert redactor.filter(record) is True
    assert record.getMessage() == (
        "failed: cannot connect with token=[redacted] and [redacted] ([redacted])"
    )
    assert record.args is None
    assert record.exc_text is not None
    assert record.exc_text.endswith(
        "RuntimeError: cannot connect with token=[redacted] and [redacted]"
    )
    assert SECRET not in logging.Formatter().format(record)
    assert SECRET[:10] not in logging.Formatter().format(record)


def test_every_line_is_redacted_whoever_wrote_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(dir=tmp_path), daemon="agent-x")
    REDACTOR.add(SECRET)
    logging.getLogger("ferry.agent").info("registering with secret %s", SECRET)
    logging.getLogger("uvicorn.error").warning("header Authorization: Bearer %s", "tok123")
    password = "hun" + "ter2"
    try:
        raise ValueError(f"password={password} for {SECRET}")
    except ValueError:
        logging.getLogger("some.library").exception("it failed")
    flush()
    for text in ((tmp_path / "agent-x.log").read_text(), capsys.readouterr().err):
        assert SECRET not in text
        assert "tok123" not in text
        assert "hunter2" not in text
        assert "registering with secret [redacted]" in text
        assert "Authorization: Bearer [redacted]" in text
        assert "ValueError: password=[redacted] for [redacted]" in text


def test_control_characters_are_written_as_escapes() -> None:
    # An unauthenticated registration's host reached the log as it came: escapes could clear,
    # retitle or recolour the terminal of an operator reading it.
    record = logging.LogRecord(
        "ferry.security",
        logging.INFO,
        __file__,
        1,
        "agent registered from %s",
        ("evil\x1b[2J\x1b]0;owned\x07\r\nforged line\x9b31m\x7f\tend",),
        None,
    )
    line = OneLine("%(message)s").format(record)
    assert line == (
        "agent registered from evil\\x1b[2J\\x1b]0;owned\\x07\\x0d\\nforged line\\x9b31m\\x7f\tend"
    )
    assert not any((ord(ch) < 0x20 and ch != "\t") or 0x7F <= ord(ch) < 0xA0 for ch in line)
