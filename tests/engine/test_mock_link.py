"""The mock storage's simulated link: total throughput that peaks at a number of copies at
once, copies counted across processes through the link's state file, and a model that the
file may change while copies run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import fsspec
import pytest

from ferry.engine.mock_link import LinkModel, LinkReader, SharedLink, link_of
from ferry.errors import InvalidRequest


def test_the_total_peaks_at_the_peak_concurrency_and_falls_beyond() -> None:
    model = LinkModel(peak=12, rate=1200, falloff=1)
    totals = [model.total(n) for n in range(1, 40)]
    assert max(totals) == model.total(12) == 1200
    assert totals.index(max(totals)) == 11
    assert (model.total(6), model.total(24)) == (600, 600)
    assert model.per_copy(24) == 25


def test_the_state_file_counts_copies_and_may_change_the_model(tmp_path: Path) -> None:
    path = tmp_path / "link.json"
    first, second = SharedLink(path, LinkModel()), SharedLink(path, LinkModel())
    first.enter()
    second.enter()
    assert first.now()[1] == 2
    second.leave()
    SharedLink(path, LinkModel()).change_model(peak=6)
    model, copies = second.now()
    assert (model.peak, copies) == (6, 1)


def test_a_mock_storage_reads_through_its_link_at_the_links_pace(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    fs = fsspec.filesystem("mock", link=str(link), peak="4", rate=str(4 * 1024 * 1024))
    started = time.monotonic()
    with fs.open("src/obj-1?size=262144", "rb") as one:
        assert json.loads(link.read_text())["copies"] == 1
        assert len(one.read()) == 262144
    # alone on a link that peaks at 4 copies, one copy gets a quarter: 1 MiB/s
    assert 0.2 <= time.monotonic() - started < 2
    assert json.loads(link.read_text())["copies"] == 0


def test_a_link_parameter_that_is_no_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="mock link"):
        link_of({"link": str(tmp_path / "l.json"), "peak": "many"})
    with pytest.raises(InvalidRequest, match="peak > 0"):
        link_of({"link": str(tmp_path / "l.json"), "peak": "0"})
    with pytest.raises(InvalidRequest, match="jitter < 1"):
        link_of({"link": str(tmp_path / "l.json"), "jitter": "1"})


def test_jitter_gives_each_copy_its_own_share_around_the_even_one(tmp_path: Path) -> None:
    link = link_of({"link": str(tmp_path / "l.json"), "jitter": "0.5", "rate": "1e9"})
    assert link is not None
    shares = {LinkReader(0, link)._luck for _ in range(20)}
    assert len(shares) > 1
    assert all(0.5 <= share <= 1.5 for share in shares)
