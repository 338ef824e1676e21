"""Which entries of a tree a transfer takes: include/exclude rules on paths, size and age
bounds, with rclone's semantics (docs: README, "Filters on tree transfers").

Rules are tried in order and the first that matches decides; a path no rule matches is kept.
A transfer's rules come in rclone's order: its includes, then its excludes, then its filter
rules (``+ GLOB`` / ``- GLOB``, in the order given), then, if any include was given, an
implied exclude of everything. Pure: the listing applies it (``scheduler/expand.py``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ferry.errors import InvalidRequest


class Verdict(StrEnum):
    INCLUDE = "+"
    EXCLUDE = "-"


def glob_to_regex(glob: str) -> str:
    """The regular expression a path relative to the tree's root ("/"-separated, no leading
    "/") must match in full (``re.fullmatch``) for ``glob`` to match it.

    ``*`` is any run of characters within a segment, ``**`` any run including "/", ``?`` one
    character but "/", ``[...]`` a class (``[!...]`` or ``[^...]`` its complement), ``{a,b}``
    alternatives, ``\\`` makes the next character literal. A glob starting with "/" is
    anchored at the root; otherwise it matches the end of the path at a segment boundary. A
    glob ending with "/" matches a folder and so everything below it. Raises
    ``InvalidRequest`` for a glob that cannot be translated, saying why."""
    if not glob or glob == "/":
        raise InvalidRequest(f"bad glob {glob!r}: it is empty")
    anchored, body = glob.startswith("/"), glob.removeprefix("/")
    folder = body.endswith("/")
    regex = _Translation(glob, body).regex()
    start = "" if anchored else "(?:.*/)?"
    pattern = f"{start}{regex}{'.*' if folder else ''}"
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidRequest(f"bad glob {glob!r}: {exc}") from exc
    return pattern


class _Translation:
    """One pass over a glob's characters, writing the regular expression."""

    def __init__(self, glob: str, body: str) -> None:
        self.glob, self.body = glob, body
        self.out: list[str] = []
        self.braces = 0
        self.i = 0

    def regex(self) -> str:
        while self.i < len(self.body):
            self._step(self.body[self.i])
        if self.braces:
            raise InvalidRequest(f"bad glob {self.glob!r}: a '{{' is not closed")
        return "".join(self.out)

    def _step(self, char: str) -> None:
        body, i = self.body, self.i
        if char == "\\":
            if i + 1 >= len(body):
                raise InvalidRequest(f"bad glob {self.glob!r}: it ends with a lone '\\'")
            self.out.append(re.escape(body[i + 1]))
            self.i += 2
            return
        if char == "*":
            double = body.startswith("**", i)
            self.out.append(".*" if double else "[^/]*")
            self.i += 2 if double else 1
            return
        if char == "[":
            self._class()
            return
        self.out.append(self._plain(char))
        self.i += 1

    def _plain(self, char: str) -> str:
        if char == "?":
            return "[^/]"
        if char == "{":
            self.braces += 1
            return "(?:"
        if char == "}" and self.braces:
            self.braces -= 1
            return ")"
        if char == "," and self.braces:
            return "|"
        return re.escape(char)

    def _class(self) -> None:
        end = self.body.find("]", self.i + 2)  # a "]" first in a class is one of its members
        if end < 0:
            raise InvalidRequest(f"bad glob {self.glob!r}: a '[' is not closed")
        members = self.body[self.i + 1 : end]
        negated = members[:1] in ("!", "^")
        members = members[1:] if negated else members
        escaped = members.replace("\\", "\\\\").replace("[", "\\[")
        self.out.append(f"[{'^/' if negated else ''}{escaped}]")
        self.i = end + 1


@dataclass(frozen=True, slots=True)
class Rule:
    verdict: Verdict
    glob: str

    @classmethod
    def parse(cls, text: str) -> Rule:
        """``+ GLOB`` or ``- GLOB`` (a filter rule as rclone's ``--filter`` takes it)."""
        sign, _, glob = text.partition(" ")
        if sign not in ("+", "-") or not glob.strip():
            raise InvalidRequest(f"bad filter rule {text!r}: write '+ GLOB' or '- GLOB'")
        return cls(Verdict(sign), glob.strip())

    def __str__(self) -> str:
        return f"{self.verdict.value} {self.glob}"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def age_cutoff(text: str, now: datetime) -> datetime:
    """The instant an age bound stands for: ``now`` minus a duration (90s, 15m, 6h, 2d, 1w;
    a bare number is seconds, as rclone's), or an absolute ISO 8601 time (UTC unless it
    says otherwise)."""
    if match := _DURATION.match(text.strip()):
        seconds = float(match[1]) * _UNIT[match[2] or "s"]
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequest(
            f"bad age {text!r}: give a duration (90s, 15m, 6h, 2d) or an ISO 8601 time"
        ) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TreeFilter:
    """What of a tree is taken. ``rules`` are in the order they are tried (``build`` puts a
    transfer's includes, excludes and filter rules in rclone's order). Sizes are bytes,
    inclusive; ages (``age_cutoff``'s texts) are measured from when the run lists the tree:
    ``max_age`` keeps what was modified since, ``min_age`` what was modified before. An
    entry of unknown size passes the size bounds; one of unknown mtime, the age bounds."""

    rules: tuple[Rule, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    min_age: str | None = None
    max_age: str | None = None
    _compiled: tuple[tuple[Verdict, re.Pattern[str], bool], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        compiled = tuple(
            (r.verdict, re.compile(glob_to_regex(r.glob)), r.glob.endswith("/")) for r in self.rules
        )
        object.__setattr__(self, "_compiled", compiled)
        low, high = self.min_size, self.max_size
        if low is not None and high is not None and low > high:
            raise InvalidRequest(f"min_size {low} is above max_size {high}: nothing passes")
        self._check_ages()

    def _check_ages(self) -> None:
        now = datetime.now(UTC)  # only to compare the two bounds: either way round holds
        oldest = age_cutoff(self.max_age, now) if self.max_age else None
        newest = age_cutoff(self.min_age, now) if self.min_age else None
        if oldest is not None and newest is not None and newest < oldest:
            raise InvalidRequest(
                f"min_age {self.min_age!r} is older than max_age {self.max_age!r}: nothing passes"
            )

    @classmethod
    def build(
        cls,
        include: list[str] | tuple[str, ...] = (),
        exclude: list[str] | tuple[str, ...] = (),
        rules: list[str] | tuple[str, ...] = (),
        **bounds: Any,
    ) -> TreeFilter:
        """The filter of rclone's ``--include``, ``--exclude`` and ``--filter`` flags."""
        ordered = [Rule(Verdict.INCLUDE, g) for g in include]
        ordered += [Rule(Verdict.EXCLUDE, g) for g in exclude]
        ordered += [Rule.parse(text) for text in rules]
        if include:
            ordered.append(Rule(Verdict.EXCLUDE, "**"))
        return cls(tuple(ordered), **bounds)

    def __bool__(self) -> bool:
        return bool(self.rules) or any(
            bound is not None
            for bound in (self.min_size, self.max_size, self.min_age, self.max_age)
        )

    def path_kept(self, relative: str) -> bool:
        """Whether a file at ``relative`` passes the rules: the first that matches decides."""
        for verdict, regex, _folder in self._compiled:
            if regex.fullmatch(relative):
                return verdict is Verdict.INCLUDE
        return True

    def folder_kept(self, relative: str) -> bool:
        """Whether a folder entry (an empty folder, or one that could not be listed) passes:
        only folder rules (globs ending in "/") decide, as what it holds is not known."""
        path = f"{relative}/"
        for verdict, regex, folder in self._compiled:
            if folder and regex.fullmatch(path):
                return verdict is Verdict.INCLUDE
        return True

    def bounds(self, now: datetime) -> Bounds:
        """The size and mtime bounds of a run listing the tree at ``now``."""
        return Bounds(
            self.min_size,
            self.max_size,
            age_cutoff(self.max_age, now).timestamp() if self.max_age else None,
            age_cutoff(self.min_age, now).timestamp() if self.min_age else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rules": [str(rule) for rule in self.rules]}
        for name in ("min_size", "max_size", "min_age", "max_age"):
            if (value := getattr(self, name)) is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeFilter:
        min_size, max_size = data.get("min_size"), data.get("max_size")
        return cls(
            tuple(Rule.parse(text) for text in data.get("rules") or ()),
            min_size=int(min_size) if min_size is not None else None,
            max_size=int(max_size) if max_size is not None else None,
            min_age=data.get("min_age"),
            max_age=data.get("max_age"),
        )


@dataclass(frozen=True, slots=True)
class Bounds:
    """Size and mtime (POSIX seconds) bounds, all inclusive; ``None``: no bound."""

    min_size: int | None
    max_size: int | None
    modified_since: float | None
    modified_before: float | None

    def keep(self, size: int | None, mtime: float | None) -> bool:
        if size is not None:
            if self.min_size is not None and size < self.min_size:
                return False
            if self.max_size is not None and size > self.max_size:
                return False
        if mtime is not None:
            if self.modified_since is not None and mtime < self.modified_since:
                return False
            if self.modified_before is not None and mtime > self.modified_before:
                return False
        return True
