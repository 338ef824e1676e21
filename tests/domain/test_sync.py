"""The rules that decide whether an object is copied, skipped or deleted (domain.sync)."""

from __future__ import annotations

import pytest

from ferry.domain.locations import parse_location
from ferry.domain.options import Overwrite
from ferry.domain.sync import (
    Action,
    Facts,
    SyncLevel,
    check_sync,
    check_sync_options,
    decide,
    deletable,
)
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.errors import InvalidRequest

SOURCE = Facts(size=10, mtime=2000.0)


def _asked() -> bool:
    raise AssertionError("the checksums were read where the rule needs none")


def _same() -> bool:
    return True


def _different() -> bool:
    return False


# (level, destination, checksums, expected action): one row per case of each level.
LEVELS = [
    (SyncLevel.EXISTS, None, _asked, Action.COPY),
    (SyncLevel.EXISTS, Facts(3, 1.0), _asked, Action.SKIP),
    (SyncLevel.SIZE, None, _asked, Action.COPY),
    (SyncLevel.SIZE, Facts(3, 9999.0), _asked, Action.COPY),
    (SyncLevel.SIZE, Facts(10, 1.0), _asked, Action.SKIP),
    (SyncLevel.SIZE, Facts(None, 1.0), _asked, Action.COPY),
    (SyncLevel.MTIME, Facts(3, 9999.0), _asked, Action.COPY),
    (SyncLevel.MTIME, Facts(10, 1000.0), _asked, Action.COPY),  # the source is newer
    (SyncLevel.MTIME, Facts(10, 2000.0), _asked, Action.SKIP),  # as new
    (SyncLevel.MTIME, Facts(10, 3000.0), _asked, Action.SKIP),  # newer than the source
    (SyncLevel.MTIME, Facts(10, None), _asked, Action.COPY),  # a time unknown
    (SyncLevel.CHECKSUM, Facts(3, 1.0), _asked, Action.COPY),
    (SyncLevel.CHECKSUM, Facts(10, 1.0), _same, Action.SKIP),
    (SyncLevel.CHECKSUM, Facts(10, 9999.0), _different, Action.COPY),
]


@pytest.mark.parametrize(("level", "destination", "checksums", "action"), LEVELS)
def test_each_level_copies_what_it_says(level, destination, checksums, action) -> None:
    decision = decide(Overwrite.NEVER, level, SOURCE, destination, checksums)
    assert decision.action is action
    assert decision.reason  # a skip always says why, and so does a copy


def test_a_skip_names_its_level() -> None:
    skipped = decide(Overwrite.NEVER, SyncLevel.MTIME, SOURCE, Facts(10, 2000.0), _asked)
    assert skipped.reason == (
        "the destination has the same size and is as new as the source (sync: mtime)"
    )
    exists = decide(Overwrite.NEVER, SyncLevel.EXISTS, SOURCE, SOURCE, _asked)
    assert "sync: exists" in exists.reason


OVERWRITES = [
    (Overwrite.NEVER, Facts(3, 1.0), _asked, Action.SKIP, "overwrite: never"),
    (Overwrite.ALWAYS, Facts(10, 9999.0), _asked, Action.COPY, "overwrite: always"),
    (Overwrite.IF_NEWER, Facts(3, 1000.0), _asked, Action.COPY, "newer"),
    (Overwrite.IF_NEWER, Facts(3, 3000.0), _asked, Action.SKIP, "overwrite: if-newer"),
    (Overwrite.IF_DIFFERENT, Facts(3, 1.0), _asked, Action.COPY, "sizes differ"),
    (Overwrite.IF_DIFFERENT, Facts(10, 1.0), _same, Action.SKIP, "overwrite: if-different"),
    (Overwrite.IF_DIFFERENT, Facts(10, 1.0), _different, Action.COPY, "checksums differ"),
]


@pytest.mark.parametrize(("overwrite", "destination", "checksums", "action", "why"), OVERWRITES)
def test_without_a_level_the_overwrite_rule_decides_as_it_did(
    overwrite, destination, checksums, action, why
) -> None:
    decision = decide(overwrite, None, SOURCE, destination, checksums)
    assert decision.action is action
    assert why in decision.reason


@pytest.mark.parametrize("overwrite", list(Overwrite))
def test_a_missing_destination_is_copied_whatever_the_rule(overwrite) -> None:
    for level in (None, *SyncLevel):
        assert decide(overwrite, level, SOURCE, None, _asked).action is Action.COPY


@pytest.mark.parametrize(
    ("overwrite", "level"),
    [
        (Overwrite.ALWAYS, SyncLevel.EXISTS),
        (Overwrite.ALWAYS, SyncLevel.CHECKSUM),
        (Overwrite.IF_NEWER, SyncLevel.MTIME),
        (Overwrite.IF_NEWER, SyncLevel.SIZE),
        (Overwrite.IF_DIFFERENT, SyncLevel.SIZE),
        (Overwrite.IF_DIFFERENT, SyncLevel.EXISTS),
    ],
)
def test_an_overwrite_rule_that_contradicts_the_level_is_refused(overwrite, level) -> None:
    with pytest.raises(InvalidRequest, match=f"overwrite '{overwrite.value}' contradicts"):
        check_sync(overwrite, level)


@pytest.mark.parametrize(
    ("overwrite", "level"),
    [
        *((Overwrite.NEVER, level) for level in SyncLevel),
        (Overwrite.IF_DIFFERENT, SyncLevel.CHECKSUM),
        *((overwrite, None) for overwrite in Overwrite),
    ],
)
def test_never_lets_the_level_decide_and_a_rule_that_says_the_same_is_taken(
    overwrite, level
) -> None:
    check_sync(overwrite, level)


def test_deletion_options_that_cannot_hold_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="only with delete_extra"):
        check_sync_options(Overwrite.NEVER, None, delete_extra=False, max_delete=5, unzip=False)
    with pytest.raises(InvalidRequest, match="do not go together"):
        check_sync_options(Overwrite.NEVER, None, delete_extra=True, max_delete=None, unzip=True)
    with pytest.raises(InvalidRequest, match="tree transfers only"):
        TransferSpec(
            TransferKind.FILE,
            (parse_location("local:a"),),
            parse_location("local:b"),
            TransferOptions(delete_extra=True),
        )


def test_only_an_extra_that_the_filters_keep_is_deleted() -> None:
    assert deletable(in_source=False, kept_by_filters=True).action is Action.DELETE
    assert deletable(in_source=True, kept_by_filters=True) is None
    assert deletable(in_source=False, kept_by_filters=False) is None  # excluded: kept


def test_options_travel_in_the_spec_only_when_given() -> None:
    plain = TransferOptions()
    assert not {"sync", "delete_extra", "max_delete"} & set(plain.to_json())
    given = TransferOptions(sync=SyncLevel.SIZE, delete_extra=True, max_delete=7)
    assert TransferOptions.from_json(given.to_json()) == given
    assert given.delete_limit == 7
    assert TransferOptions(delete_extra=True).delete_limit == 100
