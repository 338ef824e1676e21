"""Channels: which one governs a pair of sites, what a site may be called, how bandwidth splits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferry.domain.channels import (
    Channel,
    ChannelMap,
    ChannelState,
    check_storage_site,
    resolve_channel,
)
from ferry.domain.sites import ANY_SITE
from ferry.errors import InvalidRequest

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)

EXACT = Channel("cern", "desy", max_active=1)
INTO_DESY = Channel(ANY_SITE, "desy", max_active=2)
OUT_OF_CERN = Channel("cern", ANY_SITE, max_active=3)
ANYWHERE = Channel(ANY_SITE, ANY_SITE, max_active=4)


def by_key(*channels: Channel) -> dict[tuple[str, str], Channel]:
    return {c.key: c for c in channels}


# --- resolution: A→B, *→B, A→*, *→*, first match --------------------------------------------------


def test_the_exact_pair_wins_over_every_wildcard() -> None:
    channels = by_key(ANYWHERE, OUT_OF_CERN, INTO_DESY, EXACT)
    assert resolve_channel(channels, "cern", "desy") is EXACT


def test_any_source_to_the_destination_comes_before_the_source_to_anywhere() -> None:
    channels = by_key(ANYWHERE, OUT_OF_CERN, INTO_DESY)
    assert resolve_channel(channels, "cern", "desy") is INTO_DESY


def test_the_source_to_anywhere_comes_before_the_catch_all() -> None:
    channels = by_key(ANYWHERE, OUT_OF_CERN)
    assert resolve_channel(channels, "cern", "desy") is OUT_OF_CERN


def test_the_catch_all_governs_a_pair_nothing_else_matches() -> None:
    channels = by_key(ANYWHERE, OUT_OF_CERN, INTO_DESY, EXACT)
    assert resolve_channel(channels, "pic", "in2p3") is ANYWHERE


def test_a_pair_no_channel_matches_is_unconstrained() -> None:
    channels = by_key(EXACT, INTO_DESY, OUT_OF_CERN)
    assert resolve_channel(channels, "pic", "in2p3") is None
    assert resolve_channel({}, "cern", "desy") is None


def test_a_channel_is_not_matched_in_the_reverse_direction() -> None:
    assert resolve_channel(by_key(EXACT), "desy", "cern") is None


def test_a_channel_map_resolves_like_resolve_channel_and_lists_its_channels() -> None:
    channels = ChannelMap([ANYWHERE, INTO_DESY, EXACT])
    assert channels.resolve("cern", "desy") is EXACT
    assert channels.resolve("pic", "desy") is INTO_DESY
    assert channels.resolve("pic", "cern") is ANYWHERE
    assert channels.resolve("pic", "cern") is ANYWHERE  # the memo answers the same
    assert set(channels) == {ANYWHERE, INTO_DESY, EXACT}


def test_a_channel_map_without_a_catch_all_leaves_other_pairs_alone() -> None:
    assert ChannelMap([EXACT]).resolve("pic", "desy") is None


# --- names and limits -----------------------------------------------------------------------------


def test_a_channel_is_named_and_serialized_by_its_pair() -> None:
    channel = Channel("cern", ANY_SITE, max_active=5, bandwidth=100, state=ChannelState.DRAIN)
    assert channel.key == ("cern", "*")
    assert channel.name == "cern→*"
    assert channel.to_json() == {
        "source_site": "cern",
        "destination_site": "*",
        "max_active": 5,
        "bandwidth": 100,
        "state": "drain",
        "bandwidth_timetable": None,
        "timezone": "UTC",
        "optimize": False,
        "min_active": None,
        "limit": 5,
        "decision": None,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_active": -1},
        {"bandwidth": 0},
        {"source_site": ""},
        {"source_site": "a/b"},
        {"destination_site": "a b"},
        {"destination_site": "a→b"},
        {"source_site": "x" * 65},
    ],
)
def test_a_channel_with_a_bad_site_or_limit_is_refused(kwargs) -> None:
    values = {"source_site": "cern", "destination_site": "desy", **kwargs}
    with pytest.raises(InvalidRequest):
        Channel(**values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_active": 2}, "min_active applies only to an optimized channel"),
        ({"optimize": True, "min_active": 0, "max_active": 4}, "each ≥ 1"),
        ({"optimize": True, "min_active": 1, "max_active": 0}, "each ≥ 1"),
        ({"optimize": True, "min_active": 1}, "needs min_active and max_active"),
        ({"optimize": True, "min_active": 9, "max_active": 8}, "must not exceed max_active"),
    ],
)
def test_an_optimized_channel_needs_bounds_that_hold(kwargs, message) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Channel("cern", "desy", **kwargs)


def test_an_optimized_channel_starts_at_its_floor_within_default_bounds() -> None:
    channel = Channel.optimized("cern", "desy")
    assert (channel.min_active, channel.max_active, channel.limit) == (1, 64, 1)
    assert Channel.optimized("cern", "desy", min_active=3, max_active=9).limit == 3


def test_a_channel_may_allow_nothing_at_all() -> None:
    assert Channel("cern", "desy", max_active=0).max_active == 0


@pytest.mark.parametrize("site", ["UNKNOWN", "unknown", "Unknown", ANY_SITE, "", "a/b", "x" * 65])
def test_a_storage_site_may_be_neither_unknown_nor_the_wildcard(site) -> None:
    with pytest.raises(InvalidRequest):
        check_storage_site(site)


@pytest.mark.parametrize("site", ["cern", "CERN-PROD", "x" * 64])
def test_a_plain_storage_site_is_accepted(site) -> None:
    check_storage_site(site)


# --- bandwidth shares -----------------------------------------------------------------------------


def test_without_a_bandwidth_there_is_no_share() -> None:
    assert Channel("cern", "desy", max_active=4).share_of_bandwidth(2, NOW) is None


def test_the_bandwidth_is_split_by_what_runs_now_whatever_max_active() -> None:
    """Defect 18.15: split by max_active, the last of ten objects crawled alone at a tenth."""
    channel = Channel("cern", "desy", max_active=4, bandwidth=1000)
    assert channel.share_of_bandwidth(1, NOW) == 1000
    assert channel.share_of_bandwidth(4, NOW) == 250


def test_without_max_active_the_bandwidth_is_split_by_the_active_tasks() -> None:
    channel = Channel("cern", "desy", bandwidth=1000)
    assert channel.share_of_bandwidth(3, NOW) == 333
    assert channel.share_of_bandwidth(0, NOW) == 1000


def test_a_share_is_never_below_one_byte_per_second() -> None:
    assert Channel("cern", "desy", bandwidth=3).share_of_bandwidth(10, NOW) == 1


def test_no_channel_names_the_site_of_unregistered_endpoints() -> None:
    with pytest.raises(InvalidRequest, match="catch-all"):
        Channel("UNKNOWN", "*")
