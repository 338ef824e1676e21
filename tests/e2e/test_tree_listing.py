"""A tree listed from an HTTP index (nginx) and an S3 prefix (moto) on 127.0.0.1 goes in the
order of its listing key, a walk resumed after any entry is the tail of the full walk, and a
size the index does not give is unknown, not 0."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import botocore.session
import pytest
from storage_servers import S3_KEY, S3_SECRET, StorageServer, http_server, s3_server

from ferry.engine.storages import StorageFS, open_storage
from ferry.engine.trees import TreeEntry, listing_key, walk_tree

# The walk's order. Percent-encoded, "é" would come first; with its trailing "/", folder "a/"
# would come after "a-c/".
ORDER = ["B.txt", "a b.txt", "a-b.txt", "é.txt", "a/x", "a/y/z", "a-c/f", "ab/f", "z/1", "z/é"]


@pytest.fixture(scope="module")
def storages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, StorageFS]]:
    base = tmp_path_factory.mktemp("listing")
    with ExitStack() as stack:
        http, www = stack.enter_context(http_server(base / "http"))
        for name in ORDER:
            (www / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
            (www / "tree" / name).write_bytes(name.encode())
        s3 = stack.enter_context(s3_server(base / "s3"))
        _put_objects(s3)
        yield {
            kind: open_storage(kind, server.url, server.fsspec_kwargs())
            for kind, server in (("http", http), ("s3", s3))
        }


def _put_objects(server: StorageServer) -> None:
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server.options["endpoint_url"],
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    for name in ORDER:
        client.put_object(Bucket="ferry-tests", Key=f"root/tree/{name}", Body=name.encode())
    client.close()


def walked(storage: StorageFS, after: str | None = None) -> list[TreeEntry]:
    return [
        entry for page in walk_tree(storage, "tree", page_size=3, after=after) for entry in page
    ]


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_a_remote_tree_is_walked_in_the_order_of_its_listing_key(storages, kind) -> None:
    full = walked(storages[kind])
    assert [entry.relative for entry in full] == ORDER
    keys = [listing_key(entry.cursor) for entry in full]
    assert keys == sorted(keys)


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_a_remote_walk_resumed_after_any_entry_is_the_tail_of_the_full_walk(storages, kind) -> None:
    full = walked(storages[kind])
    for n, entry in enumerate(full):
        assert walked(storages[kind], after=entry.cursor) == full[n + 1 :], entry


def test_sizes_an_index_does_not_give_are_unknown_and_an_s3_listing_gives_them(storages) -> None:
    assert {entry.size for entry in walked(storages["http"])} == {None}
    assert [entry.size for entry in walked(storages["s3"])] == [len(n.encode()) for n in ORDER]
