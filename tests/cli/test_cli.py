"""The command line's own parsing, through Typer's runner (no server needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ferry.cli.daemons import parse_storages
from ferry.cli.main import app
from ferry.errors import InvalidRequest

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("server", "agent", "submit", "status", "ls", "outcomes", "cancel"):
        assert command in result.output


def test_an_unknown_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["submit", "--colour", "local:a", "local:b"])
    assert result.exit_code == 2


def test_submit_needs_a_source_and_a_destination() -> None:
    result = runner.invoke(app, ["submit", "local:a"])
    assert isinstance(result.exception, InvalidRequest)
    assert "SOURCE" in str(result.exception)


def test_an_agent_needs_exactly_one_credential() -> None:
    neither = runner.invoke(app, ["agent", "--server", "http://127.0.0.1:9"], env={})
    both = runner.invoke(
        app, ["agent", "--server", "http://127.0.0.1:9", "--secret", "s", "--token", "t"]
    )
    for result in (neither, both):
        assert isinstance(result.exception, InvalidRequest)
        assert "exactly one" in str(result.exception)


def test_storages_parse_as_name_equals_url() -> None:
    parsed = parse_storages(["archive=file:///srv/archive", "s3data=s3://bucket/x=y"])
    assert parsed == {"archive": "file:///srv/archive", "s3data": "s3://bucket/x=y"}


@pytest.mark.parametrize("value", ["archive", "=file:///x", "bad name=file:///x", "archive="])
def test_bad_storage_declarations_are_refused(value: str) -> None:
    with pytest.raises(InvalidRequest, match="NAME=URL"):
        parse_storages([value])
