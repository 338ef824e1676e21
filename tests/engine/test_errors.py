"""Backend exceptions become ferry transfer errors, transient or permanent, once."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fsspec
import pytest

from ferry.engine.errors import classify
from ferry.errors import (
    AccessDenied,
    ChecksumMismatch,
    PathOutsideStorage,
    PermanentError,
    SourceAccessDenied,
    SourceNotFound,
    TransferCanceled,
    TransferError,
    TransientError,
)

WHERE = "src:data/a.bin"


@pytest.mark.parametrize(
    "error",
    [
        TransientError("stalled"),
        PermanentError("bad"),
        ChecksumMismatch(WHERE, "adler32:1", "adler32:2"),
        TransferCanceled(WHERE),
    ],
)
def test_ferry_transfer_errors_pass_through(error):
    assert classify(error, WHERE) is error


def test_file_not_found_is_source_not_found():
    error = classify(FileNotFoundError(errno.ENOENT, "No such file"), WHERE)
    assert isinstance(error, SourceNotFound)
    assert error.message == f"not found: {WHERE}"
    assert not error.retryable


def test_permission_error_is_access_denied():
    error = classify(PermissionError(errno.EACCES, "Permission denied"), WHERE)
    assert isinstance(error, AccessDenied)
    assert WHERE in error.message
    assert not error.retryable


def test_a_denial_says_which_side_refused():
    """Only the source's (skip_source_errors skips it); HTTP 401/403 alike."""
    denied = PermissionError(errno.EACCES, "Permission denied")
    assert type(classify(denied, WHERE)) is SourceAccessDenied
    assert type(classify(denied, WHERE, destination=True)) is AccessDenied

    class Forbidden(Exception):
        status = 403

    assert type(classify(Forbidden("no"), WHERE)) is SourceAccessDenied
    assert type(classify(Forbidden("no"), WHERE, destination=True)) is AccessDenied


def test_sftp_statuses_are_classified_as_the_os_errors_they_stand_for():
    """asyncssh's own errors reach us unwrapped from an SFTP open: a missing source was
    retried as transient ("SFTPNoSuchFile on ...")."""
    import asyncssh

    missing = classify(asyncssh.SFTPNoSuchFile("No such file"), WHERE)
    assert type(missing) is SourceNotFound
    assert type(classify(asyncssh.SFTPPermissionDenied("no"), WHERE)) is SourceAccessDenied
    assert type(classify(asyncssh.SFTPPermissionDenied("no"), WHERE, destination=True)) is (
        AccessDenied
    )
    assert classify(asyncssh.SFTPNoSuchFile("gone"), WHERE, destination=True).retryable
    assert classify(asyncssh.SFTPFailure("x"), WHERE).retryable  # as before


def test_a_directory_is_permanent():
    error = classify(IsADirectoryError(errno.EISDIR, "Is a directory"), WHERE)
    assert type(error) is PermanentError
    assert "tree transfer" in error.message


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("timed out"),
        OSError(errno.ETIMEDOUT, "timed out"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        BrokenPipeError(errno.EPIPE, "broken pipe"),
    ],
)
def test_network_failures_are_transient(exc):
    error = classify(exc, WHERE)
    assert isinstance(error, TransientError)
    assert error.retryable
    assert WHERE in error.message


@pytest.mark.parametrize(
    "code", [errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.EHOSTUNREACH]
)
def test_transient_errnos_are_retried(code):
    error = classify(OSError(code, "oops"), WHERE)
    assert isinstance(error, TransientError)
    assert WHERE in error.message
    assert "oops" in error.message


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_retried(code):
    # Space frees up as other copies end or files are cleaned away: 8 files of 1 kB failed
    # for good with 15 MB free when this was permanent.
    error = classify(OSError(code, "No space left on device"), WHERE)
    assert type(error) is TransientError
    assert error.message == f"no space left for {WHERE}: No space left on device"


def test_other_os_errors_are_permanent():
    error = classify(OSError(errno.EINVAL, "Invalid argument"), WHERE)
    assert type(error) is PermanentError
    assert error.message == f"Invalid argument on {WHERE}"


def test_an_os_error_without_errno_keeps_its_text():
    error = classify(OSError("backend said no"), WHERE)
    assert isinstance(error, PermanentError)
    assert "backend said no" in error.message


def test_an_unknown_exception_is_transient_and_named():
    error = classify(RuntimeError("weird"), WHERE)
    assert isinstance(error, TransientError)
    assert error.message == f"RuntimeError on {WHERE}: weird"


def test_a_path_outside_its_storage_is_not_retried():
    error = classify(PathOutsideStorage("src", "../etc"), WHERE)
    assert isinstance(error, TransferError)
    assert not error.retryable


def test_a_checksum_mismatch_is_retried():
    assert issubclass(ChecksumMismatch, TransientError)
    assert ChecksumMismatch.retryable


@pytest.mark.parametrize("cls", [SourceNotFound, AccessDenied, TransferCanceled])
def test_permanent_subclasses_are_not_retried(cls):
    assert issubclass(cls, PermanentError)
    assert not cls.retryable


class _HttpFailure(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"server said {status}")
        self.status = status


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (500, TransientError, True),
        (503, TransientError, True),
        (429, TransientError, True),
        (404, SourceNotFound, False),
        (403, AccessDenied, False),
        (401, AccessDenied, False),
        (400, PermanentError, False),
    ],
)
def test_http_statuses_are_classified(status, kind, retryable):
    error = classify(_HttpFailure(status), WHERE)
    assert isinstance(error, kind)
    assert error.retryable is retryable
    assert str(status) in str(error) or isinstance(error, SourceNotFound)


def test_a_botocore_style_error_is_read_from_its_response():
    class ClientError(Exception):
        def __init__(self, code: str) -> None:
            super().__init__(code)
            self.response = {"ResponseMetadata": {"HTTPStatusCode": 503}, "Error": {"Code": code}}

    assert classify(ClientError("SlowDown"), WHERE).retryable


@pytest.fixture
def answering() -> Iterator[Callable[[int], str]]:
    """A real HTTP server on 127.0.0.1 that answers every request with the status it is told;
    yields a function that sets the status and gives a file's URL."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.do_HEAD()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def answer(code: int) -> str:
        status[0] = code
        return f"http://127.0.0.1:{server.server_address[1]}/a.bin"

    yield answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_server_error_behind_fsspecs_not_found_is_transient(answering, status):
    # fsspec's HTTP backend raises FileNotFoundError from the real error for any failed look.
    url = answering(status)
    with pytest.raises(FileNotFoundError) as raised:
        fsspec.filesystem("http", skip_instance_cache=True).info(url)
    error = classify(raised.value, WHERE)
    assert isinstance(error, TransientError)
    assert f"HTTP {status}" in error.message


def test_a_404_behind_fsspecs_not_found_is_still_not_found(answering):
    url = answering(404)
    with pytest.raises(FileNotFoundError) as raised:
        fsspec.filesystem("http", skip_instance_cache=True).info(url)
    assert isinstance(classify(raised.value, WHERE), SourceNotFound)
