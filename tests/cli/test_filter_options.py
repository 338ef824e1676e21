"""``ferry submit``'s filter options, parsed without a server: rclone's order, sizes in binary
units, refusals before anything is sent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ferry.cli.filters import TreeFilterOptions
from ferry.cli.main import app
from ferry.errors import InvalidRequest

runner = CliRunner()


def test_includes_excludes_and_filter_rules_go_in_rclones_order() -> None:
    body = TreeFilterOptions(
        include=["*.csv", "*.json"], exclude=["tmp/"], rules=["- b.csv", "+ x/**"]
    ).body()
    assert body == {"rules": ["+ *.csv", "+ *.json", "- tmp/", "- b.csv", "+ x/**", "- **"]}


def test_sizes_take_binary_suffixes_and_ages_are_sent_as_written() -> None:
    body = TreeFilterOptions(min_size="1k", max_size="2M", min_age="15m", max_age="2d").body()
    assert body == {
        "rules": [],
        "min_size": 1024,
        "max_size": 2 * 1024**2,
        "min_age": "15m",
        "max_age": "2d",
    }


def test_no_filter_option_sends_no_filters() -> None:
    assert TreeFilterOptions().body() is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--include", "a[b"], "bad glob"),
        (["--filter", "x *.csv"], "'+ GLOB' or '- GLOB'"),
        (["--min-size", "2M", "--max-size", "1M"], "is above max_size"),
        (["--max-age", "last week"], "bad age"),
        (["--min-size", "ten"], "is not a size"),
    ],
)
def test_bad_filter_options_are_refused_before_anything_is_sent(args, needle) -> None:
    result = runner.invoke(
        app, ["submit", "--tree", *args, "--url", "http://127.0.0.1:9", "local:a", "local:b"]
    )
    assert isinstance(result.exception, InvalidRequest)
    assert needle in str(result.exception)


def test_submit_help_names_the_filter_options() -> None:
    result = runner.invoke(app, ["submit", "--help"], terminal_width=200)
    for option in ("--include", "--exclude", "--filter", "--min-size", "--max-size"):
        assert option in result.output
    assert "--skip-source-errors" in result.output
