"""The suite's own machinery: figures recorded per round, written into the page between its
markers, and the end checks failing on what they must catch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chaos_check import no_part_files, rclone_check
from chaos_figures import record
from write_reliability import BEGIN, END, main


def test_figures_of_two_rounds_become_one_row_between_the_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scenario recorded in rounds 1 and 2 is one row with both rounds' figures; the text
    around the markers stays."""
    figures = tmp_path / "figures.jsonl"
    monkeypatch.setenv("FERRY_CHAOS_FIGURES", str(figures))
    for number in (1, 2):
        monkeypatch.setenv("FERRY_CHAOS_ROUND", str(number))
        record("a server killed", to_completed_s=4.25 * number, lost=1200 * number)
    doc = tmp_path / "reliability.md"
    doc.write_text(f"before\n{BEGIN}\nold table\n{END}\nafter\n")

    assert main(["write_reliability.py", str(figures), str(doc)]) == 0

    lines = [json.loads(line) for line in figures.read_text().splitlines()]
    assert [line["round"] for line in lines] == [1, 2]
    assert lines[0]["test"].endswith(
        "::" + test_figures_of_two_rounds_become_one_row_between_the_markers.__name__
    )
    text = doc.read_text()
    assert text.startswith(f"before\n{BEGIN}\n| scenario |")
    assert text.endswith(f"{END}\nafter\n")
    assert "old table" not in text
    (row,) = [line for line in text.splitlines() if line.startswith("| a server killed |")]
    assert "to completed 4.2 s; lost 1,200 | to completed 8.5 s; lost 2,400" in row
    assert "A scenario recorded in rounds 1 and 2 is one row" in row


def test_nothing_is_recorded_without_a_figures_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_CHAOS_FIGURES", raising=False)
    monkeypatch.chdir(tmp_path)
    record("a server killed", to_completed_s=1.0)
    assert list(tmp_path.iterdir()) == []


def test_the_end_checks_catch_a_changed_byte_a_missing_file_and_a_part_file(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for root in (src, dst):
        (root / "d").mkdir(parents=True)
        (root / "d" / "a").write_bytes(b"0123456789")
        (root / "b").write_bytes(b"abc")
    assert rclone_check(src, dst) == 2

    (dst / "d" / "a").write_bytes(b"0123456780")  # same size, one byte changed
    with pytest.raises(AssertionError, match="differences found"):
        rclone_check(src, dst)
    (dst / "d" / "a").write_bytes(b"0123456789")
    (dst / "b").unlink()
    with pytest.raises(AssertionError, match="differences found"):
        rclone_check(src, dst)
    (dst / "b").write_bytes(b"abc")
    (dst / "d" / ".a.ferry-1-1.part").write_bytes(b"01")
    with pytest.raises(AssertionError, match="differences found"):
        rclone_check(src, dst)
    with pytest.raises(AssertionError, match="1 temporary files left"):
        no_part_files(dst)
