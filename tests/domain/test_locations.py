"""``STORAGE:PATH`` locations: parsed, normalized, and confined to their storage root."""

from __future__ import annotations

import posixpath
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.domain.locations import (
    LOCATION_PATTERN,
    Location,
    confine_path,
    is_storage_name,
    is_within,
    parse_location,
)
from ferry.errors import FerryError, InvalidLocation, InvalidRequest, PathOutsideStorage


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("local:a/./b", "a/b"),
        ("local:a//b", "a/b"),
        ("local:a/b/", "a/b"),
        ("local:a/x/../b", "a/b"),
        ("local:", ""),
        ("local:.", ""),
        ("local:./", ""),
        ("local:a/..", ""),
        ("local:data/a.csv", "data/a.csv"),
        ("local:dir with space/é.txt", "dir with space/é.txt"),
        ("local:..hidden", "..hidden"),
        ("local:a:b", "a:b"),
        ("local:...", "..."),
        ("local:a/.../b", "a/.../b"),
        ("local:.a/b.", ".a/b."),
        ("local:a/b/.", "a/b"),
        ("local:a/b/..", "a"),
        ("local:a\\b", "a\\b"),
    ],
)
def test_good_paths_are_normalized(text, path):
    assert parse_location(text) == Location("local", path)


@pytest.mark.parametrize(
    "text",
    ["local:..", "local:../x", "local:a/../..", "local:a/../../b", "local:./../x"],
)
def test_climbing_out_is_refused(text):
    with pytest.raises(PathOutsideStorage):
        parse_location(text)


@pytest.mark.parametrize("text", ["local:/etc/passwd", "local:/", "local://x", "local:\\x"])
def test_absolute_paths_are_refused(text):
    with pytest.raises(PathOutsideStorage):
        parse_location(text)


def test_nul_is_refused():
    with pytest.raises(InvalidLocation, match="NUL"):
        parse_location("local:a\x00b")


def test_missing_colon_is_refused():
    with pytest.raises(InvalidLocation, match="STORAGE:PATH"):
        parse_location("data/a.csv")


@pytest.mark.parametrize(
    "text", [":a", "1local:a", "-x:a", "lo cal:a", "a/b:c", "x" * 64 + ":a", "é:a"]
)
def test_bad_storage_names_are_refused(text):
    with pytest.raises(InvalidLocation, match="is not a storage name"):
        parse_location(text)


def test_location_errors_are_invalid_requests():
    assert issubclass(InvalidLocation, InvalidRequest)
    assert issubclass(PathOutsideStorage, InvalidRequest)


def test_outside_error_names_storage_and_path():
    with pytest.raises(PathOutsideStorage) as caught:
        confine_path("local", "../x")
    assert (caught.value.storage, caught.value.path) == ("local", "../x")
    assert "'../x'" in str(caught.value)
    assert "'local'" in str(caught.value)


def test_longest_storage_name_is_accepted():
    name = "a" + "b" * 62
    assert is_storage_name(name)
    assert parse_location(f"{name}:x").storage == name


def test_location_prints_back_as_text():
    assert str(parse_location("local:a/./b")) == "local:a/b"
    assert str(parse_location("local:")) == "local:"


def test_name_is_the_last_component():
    assert parse_location("local:a/b.txt").name == "b.txt"
    assert parse_location("local:").name == ""


def test_child_joins_and_normalizes():
    assert Location("local", "a").child("b/./c") == Location("local", "a/b/c")
    assert Location("local", "").child("x") == Location("local", "x")
    assert Location("local", "a/b").child("../c") == Location("local", "a/c")


@pytest.mark.parametrize("relative", ["../..", "../../x", "/etc"])
def test_child_cannot_leave_the_storage(relative):
    with pytest.raises(PathOutsideStorage):
        Location("local", "a").child(relative)


_COMPONENTS = st.sampled_from(["a", "b", ".", "..", "", "é", "x y", "...", "..a"])


def _outcome(make):  # what a call returns, or the class of what it raises
    try:
        return make()
    except FerryError as exc:
        return type(exc)


@given(
    st.lists(_COMPONENTS, max_size=4).map("/".join),
    st.lists(_COMPONENTS | st.just("\x00"), max_size=6).map("/".join),
)
def test_a_child_is_its_path_joined_then_normalized(base, relative):
    folder = _outcome(lambda: Location("local", confine_path("local", base)))
    if not isinstance(folder, Location):
        return
    joined = posixpath.join(folder.path, relative)
    expected = _outcome(lambda: Location("local", confine_path("local", joined)))
    assert _outcome(lambda: folder.child(relative)) == expected


@given(st.lists(_COMPONENTS, max_size=8).map("/".join), st.booleans())
def test_accepted_paths_stay_inside(path, leading_slash):
    text = ("/" if leading_slash else "") + path
    try:
        confined = confine_path("local", text)
    except PathOutsideStorage:
        return
    assert not confined.startswith("/")
    assert ".." not in confined.split("/")
    assert confined == "" or posixpath.normpath(confined) == confined


@given(
    st.lists(
        st.sampled_from(["", ".", "..", "...", "a", ".a", "a.", "..a", "b c"]), max_size=6
    ).map("/".join)
)
def test_normalizing_agrees_with_normpath(path):
    """Paths already normal skip ``normpath``; every path still comes out as it would make it."""
    expected = posixpath.normpath(path) if path else ""
    try:
        confined = confine_path("local", path)
    except PathOutsideStorage:
        assert path.startswith("/") or expected == ".." or expected.startswith("../")
        return
    assert confined == ("" if expected == "." else expected)


@given(st.text())
def test_any_text_is_confined_or_refused(text):
    try:
        confined = confine_path("local", text)
    except (PathOutsideStorage, InvalidLocation):
        return
    assert not confined.startswith("/")
    assert ".." not in confined.split("/")


# --- endpoints outside the registry ---------------------------------------------------------------


def test_an_endpoint_url_is_a_location_whose_storage_is_its_server() -> None:
    location = parse_location("https://mirror.example.org:8443/pub/data/a.bin")

    assert location.storage == "https://mirror.example.org:8443"
    assert location.path == "pub/data/a.bin"
    assert str(location) == "https://mirror.example.org:8443/pub/data/a.bin"
    assert parse_location(str(location)) == location
    assert str(location.child("x")) == "https://mirror.example.org:8443/pub/data/a.bin/x"


@pytest.mark.parametrize(
    "text",
    [
        "https://host/a/../../etc/passwd",
        "https://user:pw@host/a",
        "https://host/a?sig=1",
        "https://host/a#frag",
        "https:///a",
        "1http://host/a",
    ],
)
def test_bad_endpoint_urls_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_location(text)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("local:data/a.csv", True),
        ("local:", True),
        ("s3.eu-1:bucket/key with spaces", True),
        ("local:path/with://inside", True),
        ("https://host.example.org/data/a.csv", True),
        ("HTTPS://host:8443", True),
        ("local", False),
        ("1local:a", False),
        (":a", False),
        ("local:/etc/passwd", False),
        ("local:\\share", False),
        ("local:a\x00b", False),
        ("https://user@host/a", False),
        ("https://host/a?token=x", False),
        ("https://host/a#part", False),
        ("https:///a", False),
        ("9p://host/a", False),
    ],
)
def test_the_documented_pattern_takes_what_parse_location_takes(text: str, valid: bool) -> None:
    assert bool(re.match(LOCATION_PATTERN, text)) is valid
    if valid:
        parse_location(text)
    else:
        with pytest.raises(InvalidRequest):
            parse_location(text)


@pytest.mark.parametrize(
    ("path", "folder", "inside"),
    [
        ("data", "data", True),
        ("data/a.csv", "data", True),
        ("data/a.csv", "data/", True),
        ("data2/a.csv", "data", False),  # a longer name is not below
        ("dat", "data", False),
        ("data", "data/a.csv", False),
        ("anything/at/all", "", True),  # the root holds every relative path
        ("anything", ".", True),
        ("/srv/data/x", "/srv/data", True),
        ("/srv/database", "/srv/data", False),
        ("/srv", "/", True),
        ("/", "/", True),
    ],
)
def test_a_path_is_within_a_folder_by_whole_segments(path: str, folder: str, inside: bool) -> None:
    assert is_within(path, folder) is inside


_SEGMENT = st.sampled_from(["a", "b", "ab", "a.b", "a b"])


@given(st.lists(_SEGMENT, max_size=4), st.lists(_SEGMENT, min_size=1, max_size=4), st.booleans())
def test_within_agrees_with_comparing_segments(
    path: list[str], folder: list[str], absolute: bool
) -> None:
    lead = "/" if absolute else ""
    written_path, written_folder = lead + "/".join(path), lead + "/".join(folder)
    assert is_within(written_path, written_folder) is (path[: len(folder)] == folder)
