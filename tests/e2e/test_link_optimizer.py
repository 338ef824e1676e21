"""The link optimizer through a real server: a channel set to optimize is shown with its
bounds, limit and last decision; bounds that do not hold and callers who may not set
channels are refused; and (a long scenario, in the chaos suite) against a mock link whose
total throughput peaks at 12 copies, the limit settles within 12 ± 3 in two minutes from a
start of 2 and follows the peak to 6 within two minutes when the link changes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from e2e_support import ServerProcess

from ferry.domain.events import EventKind

BENCH = Path(__file__).parents[2] / "bench"


def one_line_error(result, *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr


def test_a_channel_set_to_optimize_shows_its_bounds_and_limit(start_server) -> None:
    server: ServerProcess = start_server("--agents", "0")
    set_ = server.cli_json(
        "channel", "set", "siteA", "siteB", "--optimize", "--min-active", "2", "--max-active", "32"
    )
    assert (set_["optimize"], set_["min_active"], set_["max_active"], set_["limit"]) == (
        True, 2, 32, 2,
    )  # fmt: skip
    [listed] = server.cli_json("channel", "ls")
    assert (listed["optimize"], listed["limit"], listed["decision"]) == (True, 2, None)
    table = server.cli("channel", "ls", check=True).stdout
    assert "2…32" in table

    server.cli_json("channel", "set", "siteA", "siteB", "--no-optimize", "--max-active", "5")
    [listed] = server.cli_json("channel", "ls")
    assert (listed["optimize"], listed["min_active"], listed["limit"]) == (False, None, 5)


def test_bounds_that_do_not_hold_are_refused(start_server) -> None:
    server: ServerProcess = start_server("--agents", "0")
    for body, message in (
        ({"optimize": True, "min_active": 9, "max_active": 8}, "must not exceed max_active"),
        ({"min_active": 2, "max_active": 8}, "only to an optimized channel"),
        ({"optimize": True, "min_active": 0}, "greater than or equal to 1"),
    ):
        answer = server.api("PUT", "/api/v1/channels/a/b", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert message in answer.text
    bounds = ("--optimize", "--min-active", "9", "--max-active", "8")
    one_line_error(
        server.cli("channel", "set", "a", "b", *bounds),
        "min_active (9) must not exceed max_active (8)",
    )
    one_line_error(
        server.cli("channel", "set", "a", "b", "--min-active", "2"),
        "min_active applies only to an optimized channel",
    )
    assert server.cli_json("channel", "ls") == []


def test_only_administrators_set_a_channel_to_optimize(start_server) -> None:
    server: ServerProcess = start_server("--agents", "0")
    added = server.cli_json("user", "add", "wanda", "--role", "WRITE", "--scope", "default")
    token = added["token"]["token"]
    answer = server.api(
        "PUT", "/api/v1/channels/a/b", json={"optimize": True},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    refused = server.cli("channel", "set", "a", "b", "--optimize", "--token", token)
    one_line_error(refused)
    assert server.cli_json("channel", "ls") == []


def test_the_event_stream_offers_the_optimizers_kind() -> None:
    assert "channel.optimized" in EventKind.__args__


@pytest.mark.chaos
def test_the_limit_settles_at_the_links_peak_and_follows_it(tmp_path, monkeypatch) -> None:
    """The acceptance of issue 24: bench/link_optimizer.py's scenario, two phases of 150 s."""
    monkeypatch.syspath_prepend(str(BENCH))
    scenario = __import__("link_optimizer")
    phase_s = 150.0
    samples = scenario.scenario(tmp_path / "work", phase_s, 5.0)
    print(file=sys.stderr)
    for sample in samples[::5]:
        print(f"{sample.at:6.1f} s  limit {sample.limit:3d}  done {sample.done}", file=sys.stderr)
    first = scenario.settled_at(samples, 12, 0.0)
    second = scenario.settled_at(samples, 6, phase_s)
    limits = [s.limit for s in samples]
    assert first is not None, limits
    assert first <= 120, limits
    assert second is not None, limits
    assert second <= 120, limits
