"""``ferry submit --replica``, parsed without a server: the one source and its replicas sent
as one list, refusals before anything is sent, and how status and outcomes print them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ferry.cli.main import app
from ferry.cli.replicas import (
    checksum_options,
    replica_in_words,
    source_in_words,
    sources_with_replicas,
)
from ferry.errors import InvalidRequest

runner = CliRunner()


def test_replicas_join_the_one_source_in_order() -> None:
    assert sources_with_replicas(["a:x"], ["b:x", "c:y"], tree=False) == [["a:x", "b:x", "c:y"]]
    assert sources_with_replicas(["a:x", "a:y"], None, tree=False) == ["a:x", "a:y"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tree", "local:a", "local:b"], "not with --tree"),
        (["local:a", "local:b", "local:c"], "exactly one SOURCE"),
    ],
)
def test_bad_replica_options_are_refused_before_anything_is_sent(args, needle) -> None:
    result = runner.invoke(
        app, ["submit", "--replica", "s:x", "--url", "http://127.0.0.1:9", *args]
    )
    assert isinstance(result.exception, InvalidRequest)
    assert needle in str(result.exception)


def test_status_and_outcomes_say_where_an_object_was_read_from() -> None:
    assert source_in_words("a:x") == "a:x"
    assert source_in_words(["a:x", "b:x", "c:x"]) == "a:x (replicas: b:x, c:x)"
    assert replica_in_words({"source": "a:x", "replica": None}) == "a:x"
    assert replica_in_words({"source": "a:x", "replica": "a:x"}) == "a:x"
    assert replica_in_words({"source": "a:x", "replica": "b:x"}) == "a:x\nread from b:x"


def test_submit_help_names_the_replica_option() -> None:
    result = runner.invoke(app, ["submit", "--help"], terminal_width=200)
    assert "--replica" in result.output


def test_an_expected_checksum_sets_its_algorithm() -> None:
    assert checksum_options(None, "adler32") == {}
    assert checksum_options("SHA256:AB12", "adler32") == {
        "checksum": "sha256",
        "expected_checksum": "sha256:ab12",
    }
    assert checksum_options("md5:ab", "md5")["checksum"] == "md5"
    with pytest.raises(InvalidRequest, match="is a md5 checksum but --checksum is sha256"):
        checksum_options("md5:ab", "sha256")
