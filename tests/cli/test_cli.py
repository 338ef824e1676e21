"""The command line's own parsing, through Typer's runner (no server needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from ferry import __version__
from ferry.cli.daemons import parse_storages
from ferry.cli.main import app
from ferry.cli.schedules import ScheduleOptions, parse_when
from ferry.domain.schedules import Unit, relative_time
from ferry.errors import InvalidRequest

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("server", "agent", "submit", "status", "ls", "outcomes", "cancel", "rerun"):
        assert command in result.output


def test_an_unknown_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["submit", "--colour", "local:a", "local:b"])
    assert result.exit_code == 2


def test_submit_needs_a_source_and_a_destination() -> None:
    result = runner.invoke(app, ["submit", "local:a"])
    assert isinstance(result.exception, InvalidRequest)
    assert "SOURCE" in str(result.exception)


def test_an_agent_needs_exactly_one_credential(tmp_path) -> None:
    server = ["agent", "--server", "http://127.0.0.1:9", "--data-dir", str(tmp_path)]
    neither = runner.invoke(app, server, env={})
    both = runner.invoke(app, [*server, "--secret", "s", "--token", "t"])
    twice = runner.invoke(app, [*server, "--secret", "s", "--secret-file", "f"])
    for result, expected in (
        (neither, "no secret, no token, and none kept in"),
        (both, "a one-time secret or a token, not both"),
        (twice, "give the secret once"),
    ):
        assert isinstance(result.exception, InvalidRequest)
        assert expected in str(result.exception)


def test_storages_parse_as_name_equals_url() -> None:
    parsed = parse_storages(["archive=file:///srv/archive", "s3data=s3://bucket/x=y"])
    assert parsed == {"archive": "file:///srv/archive", "s3data": "s3://bucket/x=y"}


@pytest.mark.parametrize("value", ["archive", "=file:///x", "bad name=file:///x", "archive="])
def test_bad_storage_declarations_are_refused(value: str) -> None:
    with pytest.raises(InvalidRequest, match="NAME=URL"):
        parse_storages([value])


def test_preview_of_the_monthly_example() -> None:
    args = ["schedule", "preview", "--every", "month", "--start", "2027-01-31T10:00"]
    result = runner.invoke(app, [*args, "--tz", "Europe/Rome", "--limit", "4", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == [
        "2027-01-31T10:00:00+01:00",
        "2027-02-28T10:00:00+01:00",
        "2027-03-31T10:00:00+02:00",
        "2027-04-30T10:00:00+02:00",
    ]


def test_preview_of_a_cron_across_spring_forward() -> None:
    args = ["schedule", "preview", "--cron", "30 2 * * *", "--start", "2027-03-27T00:00"]
    result = runner.invoke(app, [*args, "--tz", "Europe/Rome", "--limit", "3"])
    assert result.output.split() == [
        "2027-03-27T02:30:00+01:00",
        "2027-03-28T03:00:00+02:00",
        "2027-03-29T02:30:00+02:00",
    ]


def test_relative_times_are_resolved_from_now() -> None:
    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    assert relative_time("+30s", now) == datetime(2027, 1, 1, 12, 0, 30, tzinfo=UTC)
    assert relative_time("+10m", now) == datetime(2027, 1, 1, 12, 10, tzinfo=UTC)
    assert relative_time("+2h", now) == datetime(2027, 1, 1, 14, 0, tzinfo=UTC)
    assert relative_time("+1d", now) == datetime(2027, 1, 2, 12, 0, tzinfo=UTC)
    assert relative_time("+1w", now) is None


def test_the_cli_sends_relative_times_as_written() -> None:
    assert parse_when("+10m") == "+10m"  # resolved by the server: a retry is the same request
    assert parse_when("2027-05-01T08:00") == "2027-05-01T08:00:00"  # read later in --tz


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (ScheduleOptions(at="+1h", every=Unit.DAY), "choose one of"),
        (ScheduleOptions(count=3), "go with --every or --cron"),
        (ScheduleOptions(at="yesterday"), "is not a time"),
        (ScheduleOptions(cron="0 * * * *", interval=5), "--interval goes with --every"),
    ],
)
def test_contradictory_schedule_options_are_refused(options, needle) -> None:
    with pytest.raises(InvalidRequest, match=needle):
        options.body()


def test_waiting_on_an_endless_series_is_refused() -> None:
    result = runner.invoke(app, ["submit", "--wait", "--every", "hour", "local:a", "local:b"])
    assert isinstance(result.exception, InvalidRequest)
    assert "never ends" in str(result.exception)


def test_preview_of_a_past_start_begins_now_like_the_scheduler() -> None:
    args = ["schedule", "preview", "--every", "day", "--start", "2020-01-01T02:00", "--json"]
    times = json.loads(runner.invoke(app, [*args, "--limit", "2"]).output)
    first, second = (datetime.fromisoformat(t) for t in times)
    assert abs((first - datetime.now(UTC)).total_seconds()) < 60  # now, not in 2020
    assert second > first
    assert (second.hour, second.minute) == (2, 0)


def test_preview_of_a_series_already_over_is_an_error() -> None:
    args = [
        "schedule",
        "preview",
        "--every",
        "day",
        "--start",
        "2020-01-01",
        "--until",
        "2020-02-01",
    ]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, InvalidRequest)


def test_storage_options_are_typed_and_credentials_stay_strings() -> None:
    from ferry.cli.storages import parse_pairs

    options = parse_pairs(["port=2222", "known_hosts=null", "name=ferry"], "option", typed=True)
    assert options == {"port": 2222, "known_hosts": None, "name": "ferry"}
    secrets = parse_pairs(["password=0123", 'auth=["me", "pw"]'], "credential", typed=False)
    assert secrets == {"password": "0123", "auth": ["me", "pw"]}
    with pytest.raises(InvalidRequest, match="KEY=VALUE"):
        parse_pairs(["oops"], "option", typed=True)


def test_help_keeps_its_bracketed_words() -> None:
    # Help drawn through rich markup lost "[server]", "[agent]" and "[env FERRY_URL]".
    server = runner.invoke(app, ["server", "--help"])
    assert "TOML file: its [server] or [agent] table." in " ".join(server.output.split())
    status = runner.invoke(app, ["status", "--help"])
    assert "Server URL [env FERRY_URL]." in status.output
    assert "Bearer token [env FERRY_TOKEN]." in status.output


def test_version_is_printed() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ferry {__version__}"
