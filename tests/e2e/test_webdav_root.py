"""A WebDAV storage rooted at the server's own root, against a real wsgidav on 127.0.0.1: its
paths have no leading "/", and its root is named "" (a root of "/" listed "ne.bin" for
"one.bin" and refused its folders as outside the storage)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_servers import StorageServer, webdav_server

from ferry.engine.copy import CopyRequest, copy_object
from ferry.engine.storages import StorageFS, open_storage
from ferry.engine.trees import walk_tree


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[tuple[StorageFS, Path]]:
    with webdav_server(tmp_path / "webdav") as server:
        served = tmp_path / "webdav" / "root"
        (served / "sub" / "deeper").mkdir(parents=True)
        (served / "one.bin").write_bytes(b"one")
        (served / "sub" / "two.bin").write_bytes(b"two")
        (served / "sub" / "deeper" / "three.bin").write_bytes(b"three")
        storage = open_storage("dav", _root_of(server), {}, ())
        yield storage, served
        storage.fs.client.http.close()  # webdav4's connection pool


def _root_of(server: StorageServer) -> str:
    return server.url.rsplit("/", 1)[0] + "/"  # webdav://127.0.0.1:PORT/


def test_a_tree_at_the_servers_root_is_listed_with_whole_names(dav) -> None:
    storage, _served = dav
    listed = {entry.relative for page in walk_tree(storage, "") for entry in page}
    assert listed == {"one.bin", "sub/two.bin", "sub/deeper/three.bin"}
    below = {entry.relative for page in walk_tree(storage, "sub") for entry in page}
    assert below == {"two.bin", "deeper/three.bin"}


def test_an_object_is_written_and_read_at_the_servers_root(dav, tmp_path: Path) -> None:
    storage, served = dav
    local = open_storage("local", tmp_path.as_uri(), {}, ())
    (tmp_path / "up.bin").write_bytes(b"up" * 1000)
    copy_object(CopyRequest(local, "up.bin", storage, "in/up.bin"))
    assert (served / "in" / "up.bin").read_bytes() == b"up" * 1000
    copy_object(CopyRequest(storage, "sub/two.bin", local, "down/two.bin"))
    assert (tmp_path / "down" / "two.bin").read_bytes() == b"two"
