"""Which entries of a tree a transfer takes: include/exclude rules on paths, size and age
bounds, with rclone's semantics (docs: README, "Filters on tree transfers").

Rules are tried in order and the first that matches decides; a path no rule matches is kept.
A transfer's rules come in rclone's order: its includes, then its excludes, then its filter
rules (``+ GLOB`` / ``- GLOB``, in the order given), then, if any include was given, an
implied exclude of everything. Pure: the listing applies it (``scheduler/expand.py``, and
``ferry copy`` with no server)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from ferry.errors import InvalidRequest


class Verdict(StrEnum):
    INCLUDE = "+"
    EXCLUDE = "-"


# A glob's alternatives once its braces are expanded: more are refused (each costs a pass).
MAX_ALTERNATIVES = 256
MAX_BRACES = 32

# Tokens of a glob without braces: a literal character, "?", a class, "*" and "**".
_LIT, _ONE, _CLASS, _STAR, _ANY = range(5)
_Token = tuple[int, Any]


class Glob:
    """One glob, compiled to decide whether it matches a path relative to the tree's root
    ("/"-separated, no leading "/").

    ``*`` is any run of characters within a segment, ``**`` any run including "/", ``?`` one
    character but "/", ``[...]`` a class (``[!...]`` or ``[^...]`` its complement), ``{a,b}``
    alternatives, ``\\`` makes the next character literal. A glob starting with "/" is
    anchored at the root; otherwise it matches the end of the path at a segment boundary. A
    glob ending with "/" matches a folder and so everything below it.

    A glob with at most one ``*`` or ``**`` in each alternative is matched by a regular
    expression; any other by a scan that steps through the path once, holding every place in
    the glob it may be at: Python's backtracking engine took seconds for ``*a*a*a*c`` on a
    name of 400 characters, and paths come from whoever writes the source tree."""

    def __init__(self, text: str, *, scan: bool = False) -> None:
        if not text or text == "/":
            raise InvalidRequest(f"bad glob {text!r}: it is empty")
        self.text = text
        self.anchored = text.startswith("/")
        body = text.removeprefix("/")
        folder = body.endswith("/")
        self.alternatives = [
            [*_tokens(text, alternative), *([(_ANY, None)] if folder else [])]
            for alternative in _expand_braces(text, body)
        ]
        stars = max(sum(kind in (_STAR, _ANY) for kind, _ in a) for a in self.alternatives)
        self.regex = None if scan or stars > 1 else re.compile(self._pattern())

    def matches(self, path: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(path) is not None
        return any(self._scan(tokens, path) for tokens in self.alternatives)

    def _pattern(self) -> str:
        parts = []
        for tokens in self.alternatives:
            prefix = "" if self.anchored or tokens[:1] == [(_ANY, None)] else "(?:.*/)?"
            parts.append(prefix + "".join(_regex_of(token) for token in tokens))
        return "|".join(f"(?:{part})" for part in parts)

    def _scan(self, tokens: list[_Token], path: str) -> bool:
        end = len(tokens)
        places = _skip_stars(tokens, {0})
        for char in path:
            after: set[int] = set()
            for place in places:
                if place < end and _takes(tokens[place], char):
                    after.add(place if tokens[place][0] in (_STAR, _ANY) else place + 1)
            if char == "/" and not self.anchored:
                after.add(0)  # the glob may begin again after any "/"
            places = _skip_stars(tokens, after)
            if not places and self.anchored:
                return False  # (unanchored, it may begin again after the next "/")
        return end in places


def _takes(token: _Token, char: str) -> bool:
    kind, value = token
    if kind == _LIT:
        return bool(char == value)
    if kind == _ANY:
        return True
    if char == "/":
        return False
    return kind != _CLASS or value.fullmatch(char) is not None


def _skip_stars(tokens: list[_Token], places: set[int]) -> set[int]:
    """``places`` and every place after stars that may match nothing."""
    reached, pending = set(places), list(places)
    while pending:
        place = pending.pop()
        if place < len(tokens) and tokens[place][0] in (_STAR, _ANY) and place + 1 not in reached:
            reached.add(place + 1)
            pending.append(place + 1)
    return reached


def _regex_of(token: _Token) -> str:
    kind, value = token
    if kind == _LIT:
        return re.escape(str(value))
    if kind == _CLASS:
        return str(value.pattern)
    return {_ONE: "[^/]", _STAR: "[^/]*", _ANY: ".*"}[kind]


def _expand_braces(glob: str, body: str) -> list[str]:
    """``body`` once for each choice of its ``{a,b}`` alternatives (escapes kept)."""
    if body.count("{") > MAX_BRACES:  # each "{" is a level of recursion below
        raise InvalidRequest(f"bad glob {glob!r}: more than {MAX_BRACES} '{{'")
    i, depth, start = 0, 0, -1
    commas: list[int] = []
    while i < len(body):
        char = body[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth, start = (depth + 1, i if depth == 0 else start)
            commas = commas if depth > 1 else []
        elif char == "," and depth == 1:
            commas.append(i)
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                return _expand_choices(glob, body, start, commas, i)
        i += 1
    if depth:
        raise InvalidRequest(f"bad glob {glob!r}: a '{{' is not closed")
    return [body]


def _expand_choices(glob: str, body: str, start: int, commas: list[int], close: int) -> list[str]:
    bounds = [start, *commas, close]
    choices = [body[a + 1 : b] for a, b in itertools.pairwise(bounds)]
    rest = _expand_braces(glob, body[close + 1 :])
    expanded = [
        head + tail
        for choice in choices
        for head in _expand_braces(glob, body[:start] + choice)
        for tail in rest
    ]
    if len(expanded) > MAX_ALTERNATIVES:
        raise InvalidRequest(
            f"bad glob {glob!r}: its braces make more than {MAX_ALTERNATIVES} alternatives"
        )
    return expanded


def _tokens(glob: str, body: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            if i + 1 >= len(body):
                raise InvalidRequest(f"bad glob {glob!r}: it ends with a lone '\\'")
            tokens.append((_LIT, body[i + 1]))
            i += 2
        elif char == "*":
            stars = len(body[i:]) - len(body[i:].lstrip("*"))
            kind = _ANY if stars > 1 else _STAR
            if not (tokens and tokens[-1][0] == kind):  # "* *" twice in a row is once
                tokens.append((kind, None))
            i += stars
        elif char == "[":
            token, i = _class(glob, body, i)
            tokens.append(token)
        else:
            tokens.append((_ONE, None) if char == "?" else (_LIT, char))
            i += 1
    return tokens


def _class(glob: str, body: str, i: int) -> tuple[_Token, int]:
    end = body.find("]", i + 2)  # a "]" first in a class is one of its members
    if end < 0:
        raise InvalidRequest(f"bad glob {glob!r}: a '[' is not closed")
    members = body[i + 1 : end]
    negated = members[:1] in ("!", "^")
    members = members[1:] if negated else members
    escaped = members.replace("\\", "\\\\").replace("[", "\\[")
    try:
        compiled = re.compile(f"[{'^/' if negated else ''}{escaped}]")
    except re.error as exc:
        raise InvalidRequest(f"bad glob {glob!r}: {exc}") from exc
    return (_CLASS, compiled), end + 1


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
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError as exc:
            raise InvalidRequest(f"bad age {text!r}: it reaches before the year 1") from exc
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
    _compiled: tuple[tuple[Verdict, Glob, bool], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        compiled = tuple((r.verdict, Glob(r.glob), r.glob.endswith("/")) for r in self.rules)
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
        for verdict, glob, _folder in self._compiled:
            if glob.matches(relative):
                return verdict is Verdict.INCLUDE
        return True

    def folder_kept(self, relative: str) -> bool:
        """Whether a folder entry (an empty folder, or one that could not be listed) passes:
        only folder rules (globs ending in "/") decide, as what it holds is not known."""
        path = f"{relative}/"
        for verdict, glob, folder in self._compiled:
            if folder and glob.matches(path):
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


class ListedEntry(Protocol):
    """What a filter reads of a listed entry (``engine.trees.TreeEntry``)."""

    @property
    def relative(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def mtime(self) -> float | None: ...
    @property
    def folder(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def skipped(self) -> str | None: ...


_Entry = TypeVar("_Entry", bound=ListedEntry)


class ListingFilter:
    """A transfer's filters as one listing applies them: its age bounds measured from when the
    run started, so that a run listed again after a restart leaves out the same entries."""

    def __init__(self, rules: TreeFilter, bounds: Bounds) -> None:
        self.rules = rules
        self.bounds = bounds

    @classmethod
    def of(cls, rules: TreeFilter | None, started: datetime) -> ListingFilter | None:
        return cls(rules, rules.bounds(started)) if rules else None

    def kept(self, page: list[_Entry]) -> list[_Entry]:
        """The entries of ``page`` the filters let through, in order. A folder entry (an empty
        folder, one that could not be listed) is decided by folder rules only; the tree's root
        is always kept; a link not followed, by the rules only (it has no size of its own)."""
        return [entry for entry in page if self.keeps(entry)]

    def keeps(self, entry: ListedEntry) -> bool:
        if entry.folder or entry.error is not None:
            return not entry.relative or self.rules.folder_kept(entry.relative)
        if not self.rules.path_kept(entry.relative):
            return False
        return entry.skipped is not None or self.bounds.keep(entry.size, entry.mtime)
