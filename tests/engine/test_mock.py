"""The mock:// storage for load tests, found through fsspec's registry and used as the agent uses
any storage: objects of a given size, folders that list N objects, failures on demand, and a
destination that swallows what it is given."""

from __future__ import annotations

import errno
import zlib

import fsspec
import pytest

from ferry.domain.options import Checksum
from ferry.engine.copy import BLOCK_SIZE, CopyRequest, CopyState, copy_object
from ferry.engine.mock import MockFileSystem
from ferry.engine.storages import StorageFS, open_storage
from ferry.engine.trees import TreeEntry, walk_tree
from ferry.errors import AccessDenied, InvalidRequest, SourceNotFound, TransientError


def mock(name: str = "mk", **options: object) -> StorageFS:
    return open_storage(name, f"mock://{name}", options)


def copy(source: StorageFS, path: str, destination: StorageFS, **kwargs: object):
    request = CopyRequest(source, path, destination, f"out/{path.partition('?')[0]}", **kwargs)
    return copy_object(request)


def adler32_of_zeros(size: int) -> str:
    value = 1
    for start in range(0, size, BLOCK_SIZE):
        value = zlib.adler32(bytes(min(BLOCK_SIZE, size - start)), value)
    return f"adler32:{value:08x}"


# --- found through fsspec -------------------------------------------------------------------------


def test_mock_urls_open_the_mock_filesystem_through_the_entry_point() -> None:
    assert fsspec.get_filesystem_class("mock") is MockFileSystem
    storage = mock()
    assert isinstance(storage.fs, MockFileSystem)
    assert storage.root == "mk"


def test_two_opened_mock_storages_share_nothing() -> None:
    assert mock(size=1).fs is not mock(size=2).fs


@pytest.mark.parametrize(
    "options",
    [{"fail": 2}, {"fail": -0.1}, {"size": -1}, {"size": "big"}, {"files": -3}, {"folders": -1}],
)
def test_bad_options_are_refused(options) -> None:
    with pytest.raises(InvalidRequest):
        mock(**options)


# --- objects and folders --------------------------------------------------------------------------


def test_every_object_has_the_storage_size() -> None:
    storage = mock(size=1234)
    info = storage.fs.info(storage.resolve("data/a.bin"))
    assert (info["type"], info["size"]) == ("file", 1234)


def test_an_object_may_override_the_size_in_its_path() -> None:
    storage = mock(size=1234)
    assert storage.fs.info(storage.resolve("data/a.bin?size=7"))["size"] == 7
    assert storage.fs.info(storage.resolve("data/b.bin"))["size"] == 1234


def test_the_root_is_a_folder() -> None:
    storage = mock(size=5)
    assert storage.fs.info(storage.root)["type"] == "directory"
    assert storage.fs.exists(storage.root)


def test_folders_list_the_configured_number_of_objects() -> None:
    storage = mock(size=10, files=3)
    listed = storage.fs.ls(storage.resolve("data"), detail=True)
    assert [(e["name"], e["size"], e["type"]) for e in listed] == [
        (f"mk/data/obj-{n:07d}", 10, "file") for n in range(3)
    ]
    assert storage.fs.info(storage.resolve("data/sub"))["type"] == "directory"
    assert storage.fs.info(listed[0]["name"])["type"] == "file"
    assert storage.fs.ls(storage.root, detail=False) == [f"mk/obj-{n:07d}" for n in range(3)]


def test_an_object_with_parameters_of_its_own_is_a_file_even_among_folders() -> None:
    storage = mock(size=10, files=3)
    info = storage.fs.info(storage.resolve("data/big?size=99"))
    assert (info["type"], info["size"]) == ("file", 99)


def test_without_files_a_path_below_the_root_is_an_object() -> None:
    storage = mock(size=10)
    assert storage.fs.ls(storage.resolve("data/a.bin"), detail=False) == ["mk/data/a.bin"]


def test_a_mock_folder_walks_as_a_tree_of_its_objects() -> None:
    pages = list(walk_tree(mock(size=3, files=5), "data", page_size=2))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [entry for page in pages for entry in page] == [
        TreeEntry(f"obj-{n:07d}", 3) for n in range(5)
    ]


def test_with_folders_a_folder_lists_folders_of_objects() -> None:
    storage = mock(size=1, files=2, folders=3)
    listed = storage.fs.ls(storage.resolve("data"), detail=True)
    assert [(e["name"], e["type"]) for e in listed] == [
        (f"mk/data/dir-{n:05d}", "directory") for n in range(3)
    ]
    inner = storage.fs.ls(listed[1]["name"], detail=False)
    assert inner == ["mk/data/dir-00001/obj-0000000", "mk/data/dir-00001/obj-0000001"]


def test_a_mock_tree_of_folders_walks_every_object_once() -> None:
    entries = [e for page in walk_tree(mock(files=2, folders=3), "data") for e in page]
    assert [e.relative for e in entries] == [
        f"dir-{d:05d}/obj-{n:07d}" for d in range(3) for n in range(2)
    ]


def test_reading_an_object_gives_its_size_in_zero_bytes() -> None:
    storage = mock(size=BLOCK_SIZE + 3)
    with storage.fs.open(storage.resolve("a.bin?size=10"), "rb") as handle:
        assert handle.read() == bytes(10)
    with storage.fs.open(storage.resolve("data/a.bin"), "rb") as handle:
        assert handle.read(5) == bytes(5)
        assert len(handle.read()) == BLOCK_SIZE - 2
        assert handle.read() == b""


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [(errno.ENOENT, SourceNotFound), (errno.EIO, TransientError), (errno.EACCES, AccessDenied)],
)
def test_a_source_that_always_fails_raises_the_error_of_its_errno(code, error) -> None:
    source = mock("src", size=10, fail=1, errno=code)
    with pytest.raises(error) as raised:
        copy(source, "data/a.bin", mock("dst"))
    assert "src:data/a.bin" in str(raised.value)


def test_a_failure_defaults_to_a_transient_io_error() -> None:
    with pytest.raises(TransientError):
        copy(mock("src", size=10, fail=1), "a/b.bin", mock("dst"))


def test_one_object_may_fail_while_the_others_copy() -> None:
    source, destination = mock("src", size=10), mock("dst")
    with pytest.raises(AccessDenied):
        copy(source, "data/bad.bin?fail=1&errno=13", destination)
    assert copy(source, "data/good.bin", destination).state is CopyState.DONE


def test_a_destination_that_always_fails_fails_the_copy_transiently() -> None:
    with pytest.raises(TransientError) as raised:
        copy(mock("src", size=10), "data/a.bin", mock("dst", fail=1))
    assert "dst:out/data/a.bin" in str(raised.value)


# --- the destination swallows ---------------------------------------------------------------------


def test_a_copy_into_the_mock_is_done_with_a_checksum_and_leaves_nothing() -> None:
    size = BLOCK_SIZE * 2 + 17
    destination = mock("dst")

    outcome = copy(mock("src", size=size), "data/a.bin", destination)

    assert (outcome.state, outcome.bytes) == (CopyState.DONE, size)
    assert outcome.checksum == adler32_of_zeros(size)
    assert not destination.fs.exists(destination.resolve("out/data/a.bin"))


def test_a_copy_of_an_overridden_size_moves_that_size() -> None:
    outcome = copy(mock("src", size=10), "data/a.bin?size=1000", mock("dst"), checksum=Checksum.MD5)
    assert (outcome.state, outcome.bytes) == (CopyState.DONE, 1000)
    assert outcome.checksum is not None
    assert outcome.checksum.startswith("md5:")


def test_a_local_file_can_be_copied_into_the_mock(tmp_path) -> None:
    (tmp_path / "a.bin").write_bytes(b"ferry" * 1000)
    local = open_storage("local", tmp_path.as_uri())

    outcome = copy(local, "a.bin", mock("dst"))

    assert (outcome.state, outcome.bytes) == (CopyState.DONE, 5000)
    assert outcome.checksum == f"adler32:{zlib.adler32(b'ferry' * 1000):08x}"


def test_the_same_object_can_be_copied_into_the_mock_again() -> None:
    source, destination = mock("src", size=100), mock("dst")
    assert copy(source, "data/a.bin", destination).state is CopyState.DONE
    assert copy(source, "data/a.bin", destination).state is CopyState.DONE
