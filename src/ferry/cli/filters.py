"""Filter options of ``ferry submit --tree`` (rclone's), and ``--skip-source-errors``.

Rules are tried in order and the first that matches decides: the --include rules, then the
--exclude rules, then the --filter rules as given, then, if any --include was given, an
exclude of everything else. A path no rule matches is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ferry.domain.filters import TreeFilter
from ferry.domain.options import parse_size

_GLOBS = (
    " GLOB: * within a folder, ** across folders, ? one character, [..] a class, {a,b}"
    " alternatives; a leading / anchors it at the tree's root, a trailing / names a folder."
)
IncludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--include",
        help="Take only what matches GLOB (repeatable; everything else is left out)." + _GLOBS,
        show_default=False,
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Leave out what matches GLOB (repeatable).", show_default=False),
]
FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="'+ GLOB' takes, '- GLOB' leaves out (repeatable, tried in the order given,"
        " after --include and --exclude).",
        show_default=False,
    ),
]
MinSizeOption = Annotated[
    str | None,
    typer.Option(
        "--min-size",
        help="Leave out files smaller than this: bytes, or 10K, 5M, 1G (powers of 1024)."
        " A file of unknown size is kept.",
        show_default=False,
    ),
]
MaxSizeOption = Annotated[
    str | None,
    typer.Option("--max-size", help="Leave out files larger than this.", show_default=False),
]
MinAgeOption = Annotated[
    str | None,
    typer.Option(
        "--min-age",
        help="Leave out files modified more recently: 90s, 15m, 6h, 2d back from each run's"
        " listing, or an ISO 8601 time. A file whose storage lists no mtime is kept.",
        show_default=False,
    ),
]
MaxAgeOption = Annotated[
    str | None,
    typer.Option("--max-age", help="Leave out files modified earlier.", show_default=False),
]
SkipSourceErrorsOption = Annotated[
    bool,
    typer.Option(
        "--skip-source-errors",
        help="A source not found or permission-denied (a file, or a folder of the tree that"
        " cannot be listed) ends SKIPPED with the reason, not FAILED.",
    ),
]


@dataclass(frozen=True)
class TreeFilterOptions:
    include: list[str] | None = None
    exclude: list[str] | None = None
    rules: list[str] | None = None
    min_size: str | None = None
    max_size: str | None = None
    min_age: str | None = None
    max_age: str | None = None

    def body(self) -> dict[str, Any] | None:
        """The API's ``filters`` (an ordered list of rules and the bounds), or ``None`` when
        no filter option was given. A bad glob or bound is refused here, saying why."""
        chosen = TreeFilter.build(
            self.include or [],
            self.exclude or [],
            self.rules or [],
            min_size=_size(self.min_size),
            max_size=_size(self.max_size),
            min_age=self.min_age,
            max_age=self.max_age,
        )
        return chosen.to_json() if chosen else None


def _size(text: str | None) -> int | None:
    return None if text is None else parse_size(text)
