"""Copying one object between local storages: same bytes, checksum on the fly, nothing partial."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib

import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from ferry.domain.options import Checksum, Overwrite
from ferry.engine.copy import (
    BLOCK_SIZE,
    CopyRequest,
    CopyState,
    copy_object,
    temporary_name,
)
from ferry.engine.storages import StorageFS, open_storage, secret_values
from ferry.errors import (
    ChecksumMismatch,
    PathOutsideStorage,
    PermanentError,
    SourceNotFound,
    TransferCanceled,
    TransientError,
)


def request(src, dst, source="a.bin", destination="out/a.bin", **kwargs) -> CopyRequest:
    return CopyRequest(src, source, dst, destination, **kwargs)


def leftovers(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.endswith(".part"))


@pytest.fixture
def payload(src_root) -> bytes:
    data = os.urandom(100_000)
    (src_root / "a.bin").write_bytes(data)
    return data


def test_copy_writes_identical_bytes_with_adler32(src, dst, dst_root, payload):
    outcome = copy_object(request(src, dst))
    assert (dst_root / "out" / "a.bin").read_bytes() == payload
    assert outcome.state is CopyState.DONE
    assert outcome.bytes == len(payload)
    assert outcome.checksum == f"adler32:{zlib.adler32(payload):08x}"


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [(Checksum.MD5, hashlib.md5), (Checksum.SHA256, hashlib.sha256)],
)
def test_copy_with_a_hashlib_checksum(src, dst, payload, algorithm, digest):
    outcome = copy_object(request(src, dst, checksum=algorithm))
    assert outcome.checksum == f"{algorithm.value}:{digest(payload).hexdigest()}"


def test_copy_without_checksum(src, dst, dst_root, payload):
    outcome = copy_object(request(src, dst, checksum=Checksum.NONE))
    assert outcome.checksum is None
    assert (dst_root / "out" / "a.bin").read_bytes() == payload


def test_copy_of_an_empty_file(src, dst, src_root, dst_root):
    (src_root / "empty").write_bytes(b"")
    outcome = copy_object(request(src, dst, "empty", "empty"))
    assert (outcome.state, outcome.bytes) == (CopyState.DONE, 0)
    assert outcome.checksum == "adler32:00000001"
    assert (dst_root / "empty").read_bytes() == b""


def test_copy_of_a_file_larger_than_a_block(src, dst, src_root, dst_root):
    data = os.urandom(2 * BLOCK_SIZE + 123)
    (src_root / "big").write_bytes(data)
    seen: list[int] = []
    outcome = copy_object(request(src, dst, "big", "big"), progress=seen.append)
    assert (dst_root / "big").read_bytes() == data
    assert outcome.checksum == f"adler32:{zlib.adler32(data):08x}"
    assert seen == [BLOCK_SIZE, BLOCK_SIZE, 123]


def test_copy_leaves_no_temporary_file(src, dst, dst_root, payload):
    copy_object(request(src, dst))
    assert leftovers(dst_root) == []


def test_overwrite_never_skips_an_existing_destination(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(b"keep me")
    outcome = copy_object(request(src, dst, overwrite=Overwrite.NEVER))
    assert outcome.state is CopyState.SKIPPED
    assert (dst_root / "out" / "a.bin").read_bytes() == b"keep me"


def test_overwrite_always_replaces_an_existing_destination(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(b"old")
    outcome = copy_object(request(src, dst, overwrite=Overwrite.ALWAYS))
    assert outcome.state is CopyState.DONE
    assert (dst_root / "out" / "a.bin").read_bytes() == payload


def test_missing_source_is_not_found_and_writes_nothing(src, dst, dst_root):
    with pytest.raises(SourceNotFound, match="src:missing"):
        copy_object(request(src, dst, "missing", "out/missing"))
    assert list(dst_root.iterdir()) == []


def test_a_directory_source_is_a_permanent_error(src, dst, src_root, dst_root):
    (src_root / "folder").mkdir()
    with pytest.raises(PermanentError, match="is a directory") as caught:
        copy_object(request(src, dst, "folder", "folder"))
    assert not caught.value.retryable
    assert list(dst_root.iterdir()) == []


@pytest.mark.parametrize("linked", [False, True])
def test_a_pipe_is_refused_not_read(src, dst, src_root, dst_root, linked):
    """A named pipe in a tree would hold the copy's read (and its slot) until a writer came."""
    os.mkfifo(src_root / "pipe")
    if linked:
        (src_root / "link").symlink_to(src_root / "pipe")
    name = "link" if linked else "pipe"
    outcome: list[BaseException] = []

    def copy() -> None:
        try:
            copy_object(request(src, dst, name, name))
        except BaseException as exc:
            outcome.append(exc)

    copying = threading.Thread(target=copy, daemon=True)
    copying.start()
    copying.join(10)
    if copying.is_alive():  # let the stuck read end, then fail
        os.close(os.open(src_root / "pipe", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the copy was reading the pipe")
    (refusal,) = outcome
    assert isinstance(refusal, PermanentError)
    assert "not a regular file" in str(refusal)
    assert list(dst_root.iterdir()) == []


def test_cancel_removes_the_partial_copy(src, dst, src_root, dst_root):
    (src_root / "big").write_bytes(os.urandom(2 * BLOCK_SIZE))
    blocks = []
    with pytest.raises(TransferCanceled, match="src:big"):
        copy_object(
            request(src, dst, "big", "out/big"),
            progress=blocks.append,
            should_stop=lambda: len(blocks) >= 1,
        )
    assert blocks == [BLOCK_SIZE]
    assert list((dst_root / "out").iterdir()) == []


class _FailingWrites(MemoryFileSystem):
    """An in-memory destination whose files fail after their first write."""

    def _open(self, path, mode="rb", **kwargs):
        opened = super()._open(path, mode, **kwargs)
        if "w" in mode:
            write, calls = opened.write, []

            def failing_write(data):
                calls.append(len(data))
                if len(calls) > 1:
                    raise OSError(28, "No space left on device")
                return write(data)

            opened.write = failing_write
        return opened


def test_a_failure_while_writing_leaves_no_temporary_file(src, src_root):
    (src_root / "big").write_bytes(os.urandom(2 * BLOCK_SIZE))
    memory = StorageFS("mem", _FailingWrites(skip_instance_cache=True), "/bucket")
    memory.fs.makedirs("/bucket", exist_ok=True)
    with pytest.raises(TransientError, match="no space left"):
        copy_object(request(src, memory, "big", "out/big"))
    assert memory.fs.find("/bucket") == []


def test_a_symlink_leading_out_of_the_source_is_refused(src, dst, src_root, tmp_path):
    (tmp_path / "secret").write_bytes(b"private")
    (src_root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(PathOutsideStorage):
        src.resolve("link")
    with pytest.raises(PermanentError) as caught:
        copy_object(request(src, dst, "link", "link"))
    assert not caught.value.retryable
    assert isinstance(caught.value.__cause__, PathOutsideStorage)


def test_a_destination_folder_linked_out_of_the_storage_is_refused(
    src, dst, dst_root, tmp_path, payload
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst_root / "out").symlink_to(outside)
    with pytest.raises(PermanentError) as caught:
        copy_object(request(src, dst))
    assert not caught.value.retryable
    assert list(outside.iterdir()) == []


def test_a_symlink_inside_the_storage_is_followed(src, dst, src_root, dst_root, payload):
    (src_root / "alias").symlink_to(src_root / "a.bin")
    copy_object(request(src, dst, "alias", "alias"))
    assert (dst_root / "alias").read_bytes() == payload


def test_temporary_name_sits_beside_the_destination():
    assert temporary_name("/root/out/a.bin", "42") == "/root/out/.a.bin.ferry-42-1.part"
    assert temporary_name("/root/out/a.bin", "42", 3) == "/root/out/.a.bin.ferry-42-3.part"


def test_a_folder_is_never_replaced_by_a_file(src, dst, dst_root, payload):
    (dst_root / "out" / "a.bin").mkdir(parents=True)
    with pytest.raises(PermanentError, match="is a folder"):
        copy_object(request(src, dst, overwrite=Overwrite.ALWAYS))
    assert (dst_root / "out" / "a.bin").is_dir()
    assert leftovers(dst_root) == []


def test_a_retry_removes_what_a_killed_attempt_left(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    torn = dst_root / "out" / ".a.bin.ferry-7-1.part"
    torn.write_bytes(payload[:10])
    outcome = copy_object(request(src, dst, tag="7", attempt=2))
    assert outcome.state is CopyState.DONE
    assert (dst_root / "out" / "a.bin").read_bytes() == payload
    assert leftovers(dst_root) == []


def test_a_retry_recognises_the_copy_its_earlier_attempt_finished(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(payload)  # moved into place, then the agent died
    outcome = copy_object(request(src, dst, attempt=2))
    assert outcome.state is CopyState.DONE
    assert outcome.checksum == f"adler32:{zlib.adler32(payload):08x}"


def test_a_retry_still_skips_a_different_existing_file(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(bytes(len(payload)))  # same size, other bytes
    assert copy_object(request(src, dst, attempt=2)).state is CopyState.SKIPPED
    assert (dst_root / "out" / "a.bin").read_bytes() == bytes(len(payload))


def test_a_destination_error_names_the_destination(src, payload, tmp_path):
    class VanishingFolder(MemoryFileSystem):
        def open(self, path, mode="rb", **kwargs):
            if "w" in mode:
                raise FileNotFoundError(path)
            return super().open(path, mode, **kwargs)

    memory = StorageFS("mem", VanishingFolder(skip_instance_cache=True), "/root")
    with pytest.raises(TransientError, match=r"mem:out/a\.bin vanished"):
        copy_object(request(src, memory))


def _age(path, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


@pytest.mark.parametrize(("source_age", "copied"), [(10, True), (1000, False)])
def test_if_newer_replaces_only_an_older_destination(
    src, dst, src_root, dst_root, payload, source_age, copied
):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(b"old")
    _age(dst_root / "out" / "a.bin", 100)
    _age(src_root / "a.bin", source_age)
    outcome = copy_object(request(src, dst, overwrite=Overwrite.IF_NEWER))
    assert outcome.state is (CopyState.DONE if copied else CopyState.SKIPPED)
    assert (dst_root / "out" / "a.bin").read_bytes() == (payload if copied else b"old")


def test_if_different_skips_an_identical_destination(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(payload)
    assert (
        copy_object(request(src, dst, overwrite=Overwrite.IF_DIFFERENT)).state is CopyState.SKIPPED
    )


@pytest.mark.parametrize("other", [b"short", "same size"])
def test_if_different_replaces_by_size_then_checksum(src, dst, dst_root, payload, other):
    (dst_root / "out").mkdir()
    existing = other if isinstance(other, bytes) else bytes(len(payload))
    (dst_root / "out" / "a.bin").write_bytes(existing)
    assert copy_object(request(src, dst, overwrite=Overwrite.IF_DIFFERENT)).state is CopyState.DONE
    assert (dst_root / "out" / "a.bin").read_bytes() == payload


def test_always_replaces(src, dst, dst_root, payload):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "a.bin").write_bytes(payload)
    assert copy_object(request(src, dst, overwrite=Overwrite.ALWAYS)).state is CopyState.DONE


class _Flipping:
    """A writer that damages the first byte it is given: a fault between read and write."""

    def __init__(self, handle) -> None:
        self._handle, self._damaged = handle, False

    def write(self, data: bytes) -> int:
        if not self._damaged and data:
            data, self._damaged = bytes([data[0] ^ 0xFF]) + data[1:], True
        return int(self._handle.write(data))

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class FaultyLocal(LocalFileSystem):
    """Local files whose writes are damaged while ``faults`` lasts (one per file written)."""

    faults = 0

    def open(self, path, mode="rb", **kwargs):
        handle = super().open(path, mode, **kwargs)
        if "w" in mode and FaultyLocal.faults > 0:
            FaultyLocal.faults -= 1
            return _Flipping(handle)
        return handle


@pytest.fixture
def faulty_dst(dst_root):
    FaultyLocal.faults = 0
    return StorageFS("dst", FaultyLocal(skip_instance_cache=True), str(dst_root))


def test_a_byte_flipped_in_transit_is_caught_and_the_retry_is_whole(
    src, faulty_dst, dst_root, payload
):
    FaultyLocal.faults = 1
    with pytest.raises(ChecksumMismatch) as caught:
        copy_object(request(src, faulty_dst, tag="9"))
    assert caught.value.retryable
    assert caught.value.error_class == "checksum"
    assert "checksum mismatch on dst:out/a.bin" in str(caught.value)
    assert not (dst_root / "out" / "a.bin").exists()
    assert leftovers(dst_root) == []
    retried = copy_object(request(src, faulty_dst, tag="9", attempt=2))
    assert retried.state is CopyState.DONE
    assert (dst_root / "out" / "a.bin").read_bytes() == payload


class _FlippedReads:
    """A reader that inverts the first byte it hands out: a fault on the source's side."""

    def __init__(self, handle) -> None:
        self._handle, self._damaged = handle, False

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        if not self._damaged and data:
            data, self._damaged = bytes([data[0] ^ 0xFF]) + data[1:], True
        return bytes(data)

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class FlakySource(LocalFileSystem):
    """Local files whose reads are damaged while ``faults`` lasts (one per file opened)."""

    faults = 0

    def open(self, path, mode="rb", **kwargs):
        handle = super().open(path, mode, **kwargs)
        if "r" in mode and FlakySource.faults > 0:
            FlakySource.faults -= 1
            return _FlippedReads(handle)
        return handle


@pytest.fixture
def flaky_src(src_root):
    FlakySource.faults = 0
    return StorageFS("src", FlakySource(skip_instance_cache=True), str(src_root))


def test_a_byte_flipped_in_a_source_read_passes_the_copy_checksum(
    flaky_src, dst, dst_root, payload
):
    """What the copy's own checksum cannot see: it sums the bytes as they were read."""
    FlakySource.faults = 1
    assert copy_object(request(flaky_src, dst)).state is CopyState.DONE
    assert (dst_root / "out" / "a.bin").read_bytes() != payload


@pytest.mark.parametrize("damaged", ["copy", "second read"])
def test_verify_source_catches_a_byte_flipped_in_either_read(
    flaky_src, dst, dst_root, payload, damaged
):
    FlakySource.faults = 1 if damaged == "copy" else 0
    if damaged == "second read":  # the copy's open is clean, the second one damaged
        original = FlakySource.open

        def second_open_flips(self, path, mode="rb", **kwargs):
            FlakySource.open = original
            FlakySource.faults = 1
            return original(self, path, mode, **kwargs)

        FlakySource.open = second_open_flips
    with pytest.raises(ChecksumMismatch) as caught:
        copy_object(request(flaky_src, dst, tag="7", verify_source=True))
    assert caught.value.retryable
    assert caught.value.error_class == "checksum"
    assert "src:a.bin read twice gave different bytes: adler32:" in str(caught.value)
    assert not (dst_root / "out" / "a.bin").exists()
    assert leftovers(dst_root) == []
    retried = copy_object(request(flaky_src, dst, tag="7", attempt=2, verify_source=True))
    assert retried.state is CopyState.DONE
    assert (dst_root / "out" / "a.bin").read_bytes() == payload


@pytest.mark.parametrize("size", [100, 3 * BLOCK_SIZE // 2])
def test_verify_source_reads_a_plain_local_source_twice(
    src, dst, src_root, dst_root, size, monkeypatch
):
    """Small or large, local to local, the second read happens and the copy is whole."""
    import ferry.engine.copy as engine

    data = os.urandom(size)
    (src_root / "a.bin").write_bytes(data)
    reads = []
    checksum_of = engine.checksum_of
    monkeypatch.setattr(
        engine, "checksum_of", lambda *args: reads.append(args[1]) or checksum_of(*args)
    )
    outcome = copy_object(request(src, dst, verify_source=True))
    assert outcome.state is CopyState.DONE
    assert outcome.checksum == f"adler32:{zlib.adler32(data):08x}"
    assert (dst_root / "out" / "a.bin").read_bytes() == data
    assert reads == [str(src_root / "a.bin")]


def test_a_permanent_fault_never_leaves_a_destination(src, faulty_dst, dst_root, payload):
    FaultyLocal.faults = 10
    for attempt in (1, 2, 3):
        with pytest.raises(ChecksumMismatch):
            copy_object(request(src, faulty_dst, tag="9", attempt=attempt))
    assert not (dst_root / "out" / "a.bin").exists()
    assert leftovers(dst_root) == []


def test_a_destination_without_write_permission_is_access_denied(src, payload, dst_root):
    class ReadOnly(LocalFileSystem):
        def open(self, path, mode="rb", **kwargs):
            if "w" in mode:
                raise PermissionError(13, "Permission denied", path)
            return super().open(path, mode, **kwargs)

    read_only = StorageFS("dst", ReadOnly(skip_instance_cache=True), str(dst_root))
    with pytest.raises(PermanentError, match=r"permission denied: dst:out/a\.bin") as caught:
        copy_object(request(src, read_only))
    assert not caught.value.retryable
    assert leftovers(dst_root) == []


def test_a_source_deleted_after_listing_fails_as_not_found(src, dst, src_root, dst_root):
    with pytest.raises(SourceNotFound, match=r"not found: src:listed-then-gone\.bin"):
        copy_object(request(src, dst, source="listed-then-gone.bin"))
    assert list(dst_root.iterdir()) == []


def test_local_copies_without_checksum_go_through_the_kernel(
    src, dst, dst_root, payload, monkeypatch
):
    import ferry.engine.copy as engine

    calls = []
    monkeypatch.setattr(engine, "_stream", lambda *args: calls.append(args))
    outcome = copy_object(request(src, dst, checksum=Checksum.NONE))
    assert (outcome.state, outcome.bytes, outcome.checksum) == (CopyState.DONE, len(payload), None)
    assert (dst_root / "out" / "a.bin").read_bytes() == payload
    assert calls == []  # no byte went through Python's loop
    assert leftovers(dst_root) == []


class _ObjectStore(MemoryFileSystem):
    """An in-memory stand-in for an object store (its protocol says so)."""

    protocol = ("s3",)
    damage = False

    def open(self, path, mode="rb", **kwargs):
        handle = super().open(path, mode, **kwargs)
        return _Flipping(handle) if "w" in mode and _ObjectStore.damage else handle


@pytest.mark.parametrize("damaged", [False, True])
def test_an_object_store_gets_the_whole_object_or_nothing(src, payload, damaged):
    store = _ObjectStore(skip_instance_cache=True)
    root = f"/bucket-{os.urandom(4).hex()}"  # the memory store is shared by every instance
    bucket = StorageFS("bucket", store, root)
    _ObjectStore.damage = damaged
    try:
        if damaged:
            with pytest.raises(ChecksumMismatch):
                copy_object(request(src, bucket))
        else:
            assert copy_object(request(src, bucket)).state is CopyState.DONE
    finally:
        _ObjectStore.damage = False
    names = list(store.find(root))
    assert names == ([] if damaged else [f"{root}/out/a.bin"])  # never a temporary name


def test_a_failed_upload_leaves_the_object_that_was_there(src, payload):
    class BrokenUpload(_ObjectStore):
        def open(self, path, mode="rb", **kwargs):
            if "w" in mode:
                raise ConnectionResetError("connection reset by peer")
            return super().open(path, mode, **kwargs)

    store = BrokenUpload(skip_instance_cache=True)
    root = f"/bucket-{os.urandom(4).hex()}"
    _ObjectStore(skip_instance_cache=True).pipe_file(f"{root}/out/a.bin", b"previous version")
    with pytest.raises(TransientError):
        copy_object(request(src, StorageFS("bucket", store, root), overwrite=Overwrite.ALWAYS))
    assert store.cat_file(f"{root}/out/a.bin") == b"previous version"


def test_a_symlink_planted_at_the_temporary_name_is_not_followed(
    src, dst, dst_root, payload, tmp_path
):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (dst_root / "out").mkdir()
    (dst_root / "out" / ".a.bin.ferry-42-1.part").symlink_to(victim)
    assert copy_object(request(src, dst, tag="42")).state is CopyState.DONE
    assert victim.read_bytes() == b"precious"
    final = dst_root / "out" / "a.bin"
    assert not final.is_symlink()
    assert final.read_bytes() == payload


@pytest.mark.parametrize(
    "path", ["%2e%2e/private/secret.txt", "a%2f%2e%2e%2f..%2fsecret", "%2E%2E/x"]
)
def test_percent_encoded_escapes_are_refused_on_web_storages(path: str) -> None:
    web = open_storage("web", "http://127.0.0.1:9/pub/")
    with pytest.raises(PathOutsideStorage):
        web.resolve(path)
    assert open_storage("disk", "file:///tmp").resolve("100%25.txt") == "/tmp/100%25.txt"


class _QuotingBackend(MemoryFileSystem):
    """A destination whose backend quotes what it was given when it fails, as httpx did with
    a WebDAV ``auth`` list: ``Invalid "auth" argument: ['ferry', 'the password']``."""

    def _open(self, path, mode="rb", **kwargs):
        raise TypeError(f"Invalid 'auth' argument: ['ferry', '{SECRET}']")


SECRET = "correct-horse-battery-staple"


def test_an_error_that_quotes_a_credential_is_reported_without_it(src, src_root):
    (src_root / "a.bin").write_bytes(b"a")
    options = {"auth": ["ferry", SECRET], "skip_instance_cache": True}
    quoting = StorageFS(
        "dav", _QuotingBackend(skip_instance_cache=True), "/q", secrets=secret_values(options)
    )
    with pytest.raises(TransientError) as raised:
        copy_object(request(src, quoting, "a.bin", "out/a.bin"))
    assert SECRET not in raised.value.message
    assert SECRET not in str(raised.value)
    assert "[redacted]" in raised.value.message


def test_secret_values_are_the_strings_of_secret_named_options():
    options = {
        "auth": ["ferry", "pa55word"],
        "username": "ferry",
        "key": "abcd",
        "port": 22,
        "client_keys": [["k1-material"]],
        "timeout": "30",
    }
    assert secret_values(options) == {"pa55word", "abcd", "k1-material"}


class _NoFolders(MemoryFileSystem):
    """An object store's view of folders: only the prefixes of objects; none can be made."""

    protocol = ("s3",)

    def makedirs(self, path, exist_ok=False):
        return None

    def isdir(self, path):
        return bool(self.find(path))


def test_an_empty_folder_of_a_tree_is_made(src, dst, dst_root):
    outcome = copy_object(CopyRequest(src, "empty", dst, "out/empty", folder=True))
    assert (outcome.state, outcome.bytes) == (CopyState.DONE, 0)
    assert (dst_root / "out" / "empty").is_dir()
    again = copy_object(CopyRequest(src, "empty", dst, "out/empty", folder=True))
    assert again.state is CopyState.DONE  # already there: nothing to do


def test_a_file_in_the_way_of_an_empty_folder_is_a_permanent_error(src, dst, dst_root):
    (dst_root / "out").mkdir()
    (dst_root / "out" / "empty").write_text("a file")
    with pytest.raises(PermanentError, match=r"dst:out/empty is a file"):
        copy_object(CopyRequest(src, "empty", dst, "out/empty", folder=True))
    assert (dst_root / "out" / "empty").read_text() == "a file"


def test_an_object_store_keeps_no_empty_folder_and_says_so(src):
    bucket = StorageFS("bucket", _NoFolders(skip_instance_cache=True), f"/b-{os.urandom(4).hex()}")
    outcome = copy_object(CopyRequest(src, "empty", bucket, "out/empty", folder=True))
    assert outcome.state is CopyState.SKIPPED
    assert outcome.reason == "the destination keeps no empty folders (an object store): none made"
