"""Local storages in temporary folders, opened through fsspec as the agent opens them."""

from __future__ import annotations

import pytest

from ferry.engine.storages import StorageFS, open_storage


@pytest.fixture
def src_root(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    return root


@pytest.fixture
def dst_root(tmp_path):
    root = tmp_path / "dst"
    root.mkdir()
    return root


@pytest.fixture
def src(src_root) -> StorageFS:
    return open_storage("src", f"file://{src_root}")


@pytest.fixture
def dst(dst_root) -> StorageFS:
    return open_storage("dst", f"file://{dst_root}")
