"""``ferry submit SRC DEST --replica URL2 --replica URL3``: other places the one source may be
read from, tried in order (README, "Source replicas")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ferry.errors import InvalidRequest

ReplicaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--replica",
        help="Another place the source may be read from, STORAGE:PATH (repeatable, tried in"
        " order after SOURCE when a copy fails, before a retry is counted). One SOURCE only;"
        " not with --tree.",
        show_default=False,
    ),
]


def sources_with_replicas(
    sources: list[str], replicas: list[str] | None, *, tree: bool
) -> list[str | list[str]]:
    """The sources as the API takes them: the one source and its replicas as one list."""
    if not replicas:
        return list(sources)
    if tree:
        raise InvalidRequest("--replica applies to file transfers only, not with --tree")
    if len(sources) != 1:
        raise InvalidRequest(
            f"--replica needs exactly one SOURCE (it names the other places of that one"
            f" object), not {len(sources)}"
        )
    return [[sources[0], *replicas]]


def source_in_words(source: str | list[str]) -> str:
    """A transfer's source as ``ferry status`` prints it: with its replicas, if any."""
    if isinstance(source, str):
        return source
    return f"{source[0]} (replicas: {', '.join(source[1:])})"


def replica_in_words(outcome: dict[str, Any]) -> str:
    """An object's source in ``ferry outcomes``: and the replica it was read from, when that
    was not its source."""
    replica = outcome.get("replica")
    if replica is None or replica == outcome["source"]:
        return str(outcome["source"])
    return f"{outcome['source']}\nread from {replica}"


ExpectedChecksumOption = Annotated[
    str | None,
    typer.Option(
        "--expected-checksum",
        help="ALGORITHM:HEX the object must have (sha256:…, md5:…, adler32:…; sets --checksum):"
        " each copy, from SOURCE or a --replica, is checked against it before it is moved"
        " into place, and a mismatch tries the next replica. One SOURCE only.",
        show_default=False,
    ),
]


def checksum_options(expected: str | None, checksum: str) -> dict[str, str]:
    """The options an expected checksum sets: itself, and the checksum algorithm it names
    (refused when --checksum names another one)."""
    if expected is None:
        return {}
    algorithm = expected.partition(":")[0].lower()
    if checksum not in ("adler32", algorithm):
        raise InvalidRequest(
            f"--expected-checksum is a {algorithm} checksum but --checksum is {checksum}"
        )
    return {"checksum": algorithm, "expected_checksum": expected.lower()}
