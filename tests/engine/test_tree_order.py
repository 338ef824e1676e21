"""A tree's listing in its stated order, resumed after an entry; sizes a storage does not give."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from ferry.engine.storages import StorageFS
from ferry.engine.trees import TreeEntry, listing_key, walk_tree

# Names whose byte order, "/"-suffixed order and folder-versus-file order all differ.
NAMES = ["B", "a-b", "a.txt", "a/x", "a/y/z", "a-c/f", "ab/f", "e/empty/", "é", "z/1", "z/é"]


def build(root, names=NAMES):
    for name in names:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(name.encode())


def walked(storage: StorageFS, after: str | None = None, page_size: int = 1000) -> list[TreeEntry]:
    return [e for page in walk_tree(storage, "", page_size, after=after) for e in page]


@pytest.fixture
def memory() -> Iterator[StorageFS]:
    fs = MemoryFileSystem(skip_instance_cache=True)
    root = f"/tree-{uuid.uuid4().hex}"  # the memory store is shared by every instance
    fs.mkdir(root)
    yield StorageFS("mem", fs, root)
    fs.rm(root, recursive=True)


def test_files_of_a_folder_come_by_name_then_its_folders_by_name(src, src_root):
    build(src_root)
    assert [e.cursor for e in walked(src)] == [
        "B",
        "a-b",
        "a.txt",
        "é",
        "a/x",
        "a/y/z",
        "a-c/f",
        "ab/f",
        "e/empty/",
        "z/1",
        "z/é",
    ]


def test_the_walk_goes_in_the_order_of_its_listing_key(src, src_root):
    build(src_root)
    keys = [listing_key(e.cursor) for e in walked(src)]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("page_size", [1, 3, 1000])
def test_a_resumed_walk_is_the_tail_of_a_full_walk(src, src_root, page_size):
    build(src_root)
    full = walked(src)
    for n, entry in enumerate(full):
        assert walked(src, after=entry.cursor, page_size=page_size) == full[n + 1 :], entry


def test_a_walk_resumed_in_memory_is_the_tail_of_a_full_walk(memory):
    for name in NAMES:
        if not name.endswith("/"):
            memory.fs.pipe(f"{memory.root}/{name}", name.encode())
    full = walked(memory)
    assert [e.relative for e in full] == [
        *("B", "a-b", "a.txt", "é", "a/x", "a/y/z", "a-c/f", "ab/f", "z/1", "z/é")
    ]
    for n, entry in enumerate(full):
        assert walked(memory, after=entry.cursor) == full[n + 1 :], entry


def test_a_walk_resumed_after_an_empty_root_yields_nothing(src, src_root):
    assert [e.cursor for e in walked(src)] == ["/"]
    assert walked(src, after="/") == []


def test_what_changed_before_the_cursor_is_not_seen_and_after_it_is(src, src_root):
    build(src_root)
    cursor = "a/x"
    (src_root / "a" / "x").unlink()  # the cursor's own entry may be gone too
    (src_root / "a.txt").unlink()
    build(src_root, ["0", "a/w", "a-b2", "a/xa", "a/y/new", "ab/g", "new/f"])
    (src_root / "z" / "1").unlink()
    resumed = [e.cursor for e in walked(src, after=cursor)]
    assert resumed == [
        "a/xa",
        "a/y/new",
        "a/y/z",
        "a-c/f",
        "ab/f",
        "ab/g",
        "e/empty/",
        "new/f",
        "z/é",
    ]
    tail = [e.cursor for e in walked(src) if listing_key(e.cursor) > listing_key(cursor)]
    assert resumed == tail


def test_a_folder_that_became_empty_after_the_cursor_is_an_empty_folder(src, src_root):
    build(src_root)
    (src_root / "z" / "1").unlink()
    (src_root / "z" / "é").unlink()
    assert [e.cursor for e in walked(src, after="ab/f")] == ["e/empty/", "z/"]


class _Counting(LocalFileSystem):
    """Remembers every folder it is asked to list."""

    def __init__(self, listed: list[str], **kwargs):
        super().__init__(**kwargs)
        self.listed = listed

    def ls(self, path, detail=False, **kwargs):
        self.listed.append(path.rstrip("/"))
        return super().ls(path, detail=detail, **kwargs)


def test_folders_wholly_before_the_cursor_are_not_listed_again(src_root):
    build(src_root)
    listed: list[str] = []
    storage = StorageFS("src", _Counting(listed, skip_instance_cache=True), str(src_root))
    assert [e.cursor for e in walked(storage, after="ab/f")] == ["e/empty/", "z/1", "z/é"]
    below = sorted(path[len(str(src_root)) :] for path in listed)
    assert below == ["", "/ab", "/e", "/e/empty", "/z"]


def test_a_cursor_on_a_folder_not_listed_goes_past_all_of_it(src_root):
    """A folder that could not be listed is one entry; resuming after it does not list it."""

    class Unreadable(_Counting):
        def ls(self, path, detail=False, **kwargs):
            if path.rstrip("/").endswith("/a") and not (src_root / "a" / "open").exists():
                raise PermissionError(13, "Permission denied", path)
            return super().ls(path, detail=detail, **kwargs)

    build(src_root, ["a/x", "b/y"])
    listed: list[str] = []
    storage = StorageFS("src", Unreadable(listed, skip_instance_cache=True), str(src_root))
    assert [(e.cursor, e.error is not None) for e in walked(storage)] == [
        ("a/", True),
        ("b/y", False),
    ]
    (src_root / "a" / "open").write_text("readable now")
    listed.clear()
    assert [e.cursor for e in walked(storage, after="a/")] == ["b/y"]
    assert not [path for path in listed if path.endswith("/a")]


class _Unsized(MemoryFileSystem):
    """A storage that gives no size for some files, as an HTTP index gives none."""

    def ls(self, path, detail=True, **kwargs):
        listing = super().ls(path, detail=detail, **kwargs)
        return [{**i, "size": None} if i["name"].endswith("unsized") else i for i in listing]


def test_a_size_the_storage_does_not_give_is_none_not_zero(memory):
    storage = StorageFS("mem", _Unsized(skip_instance_cache=True), memory.root)
    storage.fs.pipe(f"{memory.root}/empty", b"")
    storage.fs.pipe(f"{memory.root}/unsized", b"1234")
    storage.fs.pipe(f"{memory.root}/sized", b"1234")
    assert walked(storage) == [
        TreeEntry("empty", 0),
        TreeEntry("sized", 4),
        TreeEntry("unsized", None),
    ]
