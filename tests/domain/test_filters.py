"""Tree filters: the glob translation (rclone's documented examples), the order rules are tried
in, and the size and age bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ferry.domain.filters import Bounds, Glob, Rule, TreeFilter, Verdict, age_cutoff
from ferry.errors import InvalidRequest

# (glob, path, matches): the examples of rclone's filtering guide, then our own corners.
GLOBS = [
    ("file.jpg", "file.jpg", True),
    ("file.jpg", "directory/file.jpg", True),
    ("file.jpg", "afile.jpg", False),
    ("file.jpg", "directory/afile.jpg", False),
    ("/file.jpg", "file.jpg", True),
    ("/file.jpg", "afile.jpg", False),
    ("/file.jpg", "directory/file.jpg", False),
    ("*.jpg", "file.jpg", True),
    ("*.jpg", "directory/file.jpg", True),
    ("*.jpg", "file.jpg/anotherfile.png", False),
    ("dir/**", "dir/file.jpg", True),
    ("dir/**", "dir/dir1/dir2/file.jpg", True),
    ("dir/**", "directory/file.jpg", False),
    ("dir/**", "adir/file.jpg", False),
    ("l?ss", "less", True),
    ("l?ss", "lass", True),
    ("l?ss", "floss", False),
    ("h[ae]llo", "hello", True),
    ("h[ae]llo", "hallo", True),
    ("h[ae]llo", "hullo", False),
    ("{one,two}_potato", "one_potato", True),
    ("{one,two}_potato", "two_potato", True),
    ("{one,two}_potato", "three_potato", False),
    ("{one,two}_potato", "_potato", False),
    ("\\*.jpg", "*.jpg", True),
    ("\\*.jpg", "a.jpg", False),
    ("\\\\.jpg", "\\.jpg", True),
    ("\\[one\\].jpg", "[one].jpg", True),
    ("\\[one\\].jpg", "o.jpg", False),
    ("potato", "potato", True),
    ("potato", "dir/potato", True),
    ("potato", "dir/apotato", False),
    ("/dir/**", "dir/a/b.txt", True),
    ("/dir/**", "x/dir/b.txt", False),
    ("*", "directory/file.jpg", True),  # the last segment, whatever it is
    ("a/*/c", "a/b/c", True),
    ("a/*/c", "a/b/x/c", False),
    ("a/**/c", "a/b/x/c", True),
    ("?", "/", False),
    ("h[!ae]llo", "hullo", True),
    ("h[!ae]llo", "hello", False),
    ("x[!a]y", "x/y", False),  # a complement never takes a "/"
    ("secret/", "secret/x.txt", True),  # a folder rule: everything below it
    ("secret/", "a/secret/b/x.txt", True),
    ("secret/", "secret", False),  # a file named so is not a folder
    ("secret/", "notsecret/x.txt", False),
    ("/secret/", "a/secret/x.txt", False),
    ("a.b", "axb", False),  # "." is literal
    ("(x)+", "(x)+", True),  # so is every other regex character
    ("{a,b{c,d}}.txt", "bd.txt", True),  # nested alternatives
    ("{a,b{c,d}}.txt", "b.txt", False),
    ("x{,y}.txt", "x.txt", True),  # an empty alternative
    ("\\{a,b}", "{a,b}", True),
    ("*a*b", "xaxb", True),  # two stars: scanned, not backtracked
    ("*a*b", "xaxb/c", False),
    ("*a*b", "c/xaxb", True),
    ("/*a*b", "c/xaxb", False),
    ("**/*.csv", "a/b/c.csv", True),
    ("**/*.csv", "c.csv", False),  # "**/" needs a "/" before the name
    ("a/**/*.csv", "a/x.csv", False),
    ("a/**/*.csv", "a/b/x.csv", True),
    ("*/", "a/b", True),  # a folder rule with a star
    ("*/", "a", False),
]


@pytest.mark.parametrize("scan", [False, True], ids=["regex", "scan"])
@pytest.mark.parametrize(("glob", "path", "matches"), GLOBS)
def test_a_glob_matches_as_rclone_documents(glob: str, path: str, matches: bool, scan) -> None:
    assert Glob(glob, scan=scan).matches(path) is matches


def test_a_glob_of_many_stars_is_scanned_in_one_pass() -> None:
    """Python's backtracking engine took 2.4 s for ``*a*a*a*c`` on 400 characters, and
    exponentially more with each star: such a glob is scanned instead."""
    glob = Glob("*a" * 20 + "*c")
    assert glob.regex is None
    assert not glob.matches("a" * 4000)
    assert glob.matches("a" * 4000 + "c")
    assert Glob("*.csv").regex is not None  # the common ones keep the regular expression


@pytest.mark.parametrize(
    "glob", ["", "/", "a[bc", "{a,b", "x\\", "{a,b}{c,d}{e,f}{g,h}" * 3, "{" * 2000 + "}" * 2000]
)
def test_a_bad_glob_is_refused_saying_so(glob: str) -> None:
    with pytest.raises(InvalidRequest, match="bad glob"):
        Glob(glob)


def test_includes_come_first_then_excludes_then_filter_rules_then_the_implied_exclude() -> None:
    f = TreeFilter.build(
        include=["*.csv", "keep/**"], exclude=["*.tmp", "old/**"], rules=["- keep/x.csv", "+ *"]
    )
    assert [str(r) for r in f.rules] == [
        "+ *.csv",
        "+ keep/**",
        "- *.tmp",
        "- old/**",
        "- keep/x.csv",
        "+ *",
        "- **",
    ]
    assert f.path_kept("old/a.csv")  # the include comes first: kept
    assert f.path_kept("keep/x.csv")  # so does keep/**, before the filter rule
    assert not f.path_kept("a.tmp")
    assert f.path_kept("b.txt")  # the filter rule "+ *" comes before the implied exclude
    assert not TreeFilter.build(include=["*.csv"], rules=["- keep/x.csv"]).path_kept("b.txt")


def test_the_first_matching_rule_decides() -> None:
    f = TreeFilter.build(rules=["- *.tmp", "+ *.tmp", "- secret/"])
    assert not f.path_kept("x.tmp")
    assert not f.path_kept("secret/a.txt")
    assert f.path_kept("b.txt")  # no rule matches: kept
    g = TreeFilter.build(rules=["+ secret/ok.txt", "- secret/"])
    assert g.path_kept("secret/ok.txt")
    assert not g.path_kept("secret/no.txt")


def test_an_include_implies_excluding_everything_else() -> None:
    f = TreeFilter.build(include=["*.csv"])
    assert f.path_kept("a/b/x.csv")
    assert not f.path_kept("a/b/x.txt")
    assert TreeFilter.build(exclude=["*.csv"]).path_kept("x.txt")


def test_a_folder_entry_is_decided_by_folder_rules_only() -> None:
    f = TreeFilter.build(include=["*.csv"], rules=["- cache/"])
    assert f.path_kept("a.csv")
    assert not f.folder_kept("cache")
    assert not f.folder_kept("x/cache")
    assert f.folder_kept("empty")  # the implied "- **" is no folder rule: kept


def test_a_filter_rule_must_say_plus_or_minus() -> None:
    with pytest.raises(InvalidRequest, match="'\\+ GLOB' or '- GLOB'"):
        Rule.parse("* x")
    assert Rule.parse("-  a b") == Rule(Verdict.EXCLUDE, "a b")


NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("90", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("6h", NOW - timedelta(hours=6)),
        ("2d", NOW - timedelta(days=2)),
        ("1w", NOW - timedelta(days=7)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ],
)
def test_an_age_is_a_duration_back_from_now_or_an_absolute_time(
    text: str, expected: datetime
) -> None:
    assert age_cutoff(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "9" * 40 + "w", "2026-13-01"])
def test_a_bad_age_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="bad age"):
        age_cutoff(text, NOW)


def test_size_bounds_are_inclusive_and_an_unknown_size_passes() -> None:
    bounds = TreeFilter(min_size=10, max_size=20).bounds(NOW)
    assert [bounds.keep(n, None) for n in (9, 10, 20, 21)] == [False, True, True, False]
    assert bounds.keep(None, None)


def test_age_bounds_compare_the_mtime_and_an_unknown_mtime_passes() -> None:
    bounds = TreeFilter(max_age="1d", min_age="1h").bounds(NOW)
    hours_ago = [(NOW - timedelta(hours=h)).timestamp() for h in (0.5, 2, 25)]
    assert [bounds.keep(1, m) for m in hours_ago] == [False, True, False]
    assert bounds.keep(1, None)
    assert Bounds(None, None, None, None).keep(0, 0.0)


def test_bounds_that_let_nothing_through_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="min_size 5 is above max_size 4"):
        TreeFilter(min_size=5, max_size=4)
    with pytest.raises(InvalidRequest, match="older than max_age"):
        TreeFilter(min_age="2d", max_age="1d")


def test_a_filter_travels_as_json_unchanged() -> None:
    f = TreeFilter.build(include=["*.csv"], rules=["- x/"], min_size=1, max_age="6h")
    assert TreeFilter.from_json(f.to_json()) == f
    assert not TreeFilter()
    assert f
