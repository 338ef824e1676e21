"""Replicas: the other places one object of a file transfer may be read from (FTS3's and
Rucio's alternative sources). A source given as a list of locations is read from the first
that answers, in order; the agent walks them within one attempt (``ferry.agent.replicas``)."""

from __future__ import annotations

from collections.abc import Sequence

from ferry.domain.locations import Location, parse_location
from ferry.errors import InvalidRequest

# How many places one object may be read from: its source and its replicas.
REPLICAS_MAX = 16

Sources = tuple[tuple[Location, ...], tuple[tuple[Location, ...], ...]]


def parse_sources(items: Sequence[str | Sequence[str]]) -> Sources:
    """The sources of a transfer as the API and the stored spec write them, each a location
    or a list of a location and its replicas: the first places, and the replicas of each
    (``()`` when no source has any, so that a spec without them stays as it was)."""
    places = [
        (parse_location(item),) if isinstance(item, str) else tuple(map(parse_location, item))
        for item in items
    ]
    if any(not p for p in places):
        raise InvalidRequest("a source given as a list of replicas names at least one")
    sources = tuple(p[0] for p in places)
    replicas = tuple(p[1:] for p in places)
    return sources, replicas if any(replicas) else ()


def check_replicas(
    sources: tuple[Location, ...], replicas: tuple[tuple[Location, ...], ...], *, tree: bool
) -> None:
    """Refuse replicas a transfer cannot use: on a tree, one entry per source or not, too
    many for one object, or one place listed twice."""
    if tree:
        raise InvalidRequest("replicas apply to file transfers only: a tree has one source folder")
    if len(replicas) != len(sources):
        raise InvalidRequest("replicas need one entry per source")
    for source, others in zip(sources, replicas, strict=True):
        places = (source, *others)
        if len(places) > REPLICAS_MAX:
            raise InvalidRequest(
                f"{source} has {len(places)} places to read it from: at most {REPLICAS_MAX}"
            )
        if len(set(places)) != len(places):
            raise InvalidRequest(f"{source} lists the same place twice among its replicas")
        for place in others:
            if not place.name:
                raise InvalidRequest(f"replica {place} names a storage root, not a file")
