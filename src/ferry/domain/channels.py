"""Channels (FTS channels, links): how many objects may move between two sites at once, how fast,
and whether they may move at all (DESIGN §2).

A task travels from its source storage's site to its destination storage's site; the first
channel that matches the pair governs it, in the order ``A→B``, ``*→B``, ``A→*``, ``*→*``.
A pair no channel matches is unconstrained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ferry.domain.optimizer import Decision, OpenWindow, Search, start
from ferry.domain.sites import ANY_SITE, RESERVED_SITES
from ferry.domain.timetable import Timetable, zone
from ferry.errors import InvalidRequest

OPTIMIZED_CEILING = 64  # an optimized channel's max_active when none is given


class ChannelState(StrEnum):
    ACTIVE = "active"  # tasks are leased up to max_active
    DRAIN = "drain"  # active tasks finish, no new ones are leased
    STOPPED = "stopped"  # active tasks are asked to stop and return to QUEUED


@dataclass(frozen=True, slots=True)
class Channel:
    source_site: str
    destination_site: str
    max_active: int | None = None  # None: no limit
    bandwidth: int | None = None  # bytes per second shared by the channel's active tasks
    state: ChannelState = ChannelState.ACTIVE
    timetable: Timetable | None = None  # in place of ``bandwidth``: a rate by time of week
    timezone: str = "UTC"  # the timetable's clock (an IANA name)
    # Optimized: the limit moves between min_active and max_active (the link optimizer's
    # ``search``), and ``decision`` is its last verdict and why.
    optimize: bool = False
    min_active: int | None = None
    search: Search | None = None
    decision: Decision | None = None
    window: OpenWindow | None = None  # the window the optimizer is measuring

    def __post_init__(self) -> None:
        for site in (self.source_site, self.destination_site):
            check_site_name(site, wildcard=True)
            if site.upper() in RESERVED_SITES:
                raise InvalidRequest(
                    f"{site!r} is no site to name: endpoints outside the registry are governed"
                    " by the catch-all channels (*), and passive transfers by none"
                )
        if self.max_active is not None and self.max_active < 0:
            raise InvalidRequest(f"max_active must be 0 or more, not {self.max_active}")
        if self.bandwidth is not None and self.bandwidth < 1:
            raise InvalidRequest(f"bandwidth must be at least 1 byte/s, not {self.bandwidth}")
        if self.bandwidth is not None and self.timetable is not None:
            raise InvalidRequest("a channel has a bandwidth or a bandwidth timetable, not both")
        zone(self.timezone)
        self._check_optimizer_bounds()

    def _check_optimizer_bounds(self) -> None:
        if not self.optimize:
            if self.min_active is not None:
                raise InvalidRequest("min_active applies only to an optimized channel (optimize)")
            return
        low, high = self.min_active, self.max_active
        if low is None or high is None or low < 1 or high < 1:
            raise InvalidRequest("an optimized channel needs min_active and max_active, each ≥ 1")
        if low > high:
            raise InvalidRequest(f"min_active ({low}) must not exceed max_active ({high})")

    @classmethod
    def optimized(cls, source_site: str, destination_site: str, **fields: Any) -> Channel:
        """A channel whose limit the optimizer moves, from ``min_active`` (default 1) up to
        ``max_active`` (default ``OPTIMIZED_CEILING``)."""
        low = fields.pop("min_active", None) or 1
        high = fields.pop("max_active", None) or OPTIMIZED_CEILING
        return cls(
            source_site, destination_site, max_active=high, optimize=True, min_active=low,
            search=start(low) if low <= high else None, **fields,
        )  # fmt: skip

    @property
    def limit(self) -> int | None:
        """The objects it may move at once now: the optimizer's limit when it optimizes,
        ``max_active`` otherwise (None: no limit)."""
        if not self.optimize:
            return self.max_active
        if self.search is None:
            return self.min_active
        ceiling = self.max_active or self.search.limit
        return min(ceiling, max(self.min_active or 1, self.search.limit))

    @property
    def key(self) -> tuple[str, str]:
        return (self.source_site, self.destination_site)

    @property
    def name(self) -> str:
        return f"{self.source_site}→{self.destination_site}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source_site": self.source_site,
            "destination_site": self.destination_site,
            "max_active": self.max_active,
            "bandwidth": self.bandwidth,
            "state": self.state.value,
            "bandwidth_timetable": self.timetable.text if self.timetable else None,
            "timezone": self.timezone,
            "optimize": self.optimize,
            "min_active": self.min_active,
            "limit": self.limit,
            "decision": self.decision.to_json() if self.decision else None,
        }

    @property
    def shares_bandwidth(self) -> bool:
        """Whether its tasks share a rate, now or at some time of the week: they are copied
        through a throttle whose rate each heartbeat may change."""
        return self.bandwidth is not None or self.timetable is not None

    def bandwidth_at(self, now: datetime) -> int | None:
        """The rate its tasks share at ``now``: its timetable's then, or its bandwidth; None
        for no limit."""
        if self.timetable is not None:
            return self.timetable.rate_at(now.astimezone(zone(self.timezone)))
        return self.bandwidth

    def seconds_to_change(self, now: datetime) -> float | None:
        """Seconds from ``now`` until its timetable next changes the rate; None without one."""
        if self.timetable is None:
            return None
        return self.timetable.seconds_to_change(now.astimezone(zone(self.timezone)))

    def share_of_bandwidth(self, active: int, now: datetime) -> int | None:
        """Each active task's part of the channel's bandwidth at ``now``: split by the tasks
        active now, and shared out again at each heartbeat as they start and end (split by
        ``max_active`` the last of ten objects crawled alone at a tenth of the channel)."""
        rate = self.bandwidth_at(now)
        if rate is None:
            return None
        return max(1, rate // max(1, active))


def check_site_name(site: str, *, wildcard: bool = False) -> None:
    if wildcard and site == ANY_SITE:
        return
    if not site or len(site) > 64 or any(ch in site for ch in "*→/ \t\n"):
        raise InvalidRequest(
            f"{site!r} is not a site name: 1 to 64 characters, no spaces, '/', '*' or '→'"
        )


def check_storage_site(site: str) -> None:
    """A storage's site: a plain name, never the wildcard nor the reserved ``UNKNOWN``."""
    check_site_name(site)
    if site.upper() in RESERVED_SITES:
        raise InvalidRequest(f"{site.upper()!r} is a reserved site name")


class ChannelMap:
    """Channels by pair, resolved with the first-match rule, with a memo per pair."""

    def __init__(self, channels: Iterable[Channel]) -> None:
        self._by_key = {c.key: c for c in channels}
        self._resolved: dict[tuple[str, str], Channel | None] = {}

    def __iter__(self) -> Any:
        return iter(self._by_key.values())

    def resolve(self, source_site: str, destination_site: str) -> Channel | None:
        pair = (source_site, destination_site)
        if pair not in self._resolved:
            self._resolved[pair] = resolve_channel(self._by_key, source_site, destination_site)
        return self._resolved[pair]


def resolve_channel(
    channels: dict[tuple[str, str], Channel], source_site: str, destination_site: str
) -> Channel | None:
    """The channel governing ``source_site → destination_site``: ``A→B``, ``*→B``, ``A→*``,
    ``*→*``, first match; ``None`` when none does."""
    for key in (
        (source_site, destination_site),
        (ANY_SITE, destination_site),
        (source_site, ANY_SITE),
        (ANY_SITE, ANY_SITE),
    ):
        if key in channels:
            return channels[key]
    return None
