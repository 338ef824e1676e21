"""A source that stops sending: the attempt ends as a transient "stalled" error, quickly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry.engine.copy import CopyRequest, copy_object
from ferry.engine.storages import open_storage
from ferry.errors import TransferStalled

SIZE = 1_000_000


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that announces a megabyte, sends ten bytes, then waits."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(SIZE))
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(SIZE))
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            release.wait(30)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads, server.block_on_close = True, False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    release.set()
    server.shutdown()
    server.server_close()


def test_a_stalled_http_source_aborts_as_transient(stalling_server, dst, dst_root) -> None:
    source = open_storage("web", stalling_server)
    started = time.monotonic()
    with pytest.raises(TransferStalled) as caught:
        copy_object(CopyRequest(source, "big.bin", dst, "big.bin", stall_s=1.0))
    assert time.monotonic() - started < 10
    assert caught.value.retryable
    assert str(caught.value) == "stalled: no data from web:big.bin for 1 s"
    assert list(dst_root.iterdir()) == []


@pytest.mark.parametrize("url", ["mock://mk?size=3000000", "memory://stall-free"])
def test_an_in_process_source_is_read_without_a_watching_thread(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread(job: object) -> None:
        raise AssertionError("an in-process read was handed to a watching thread")

    monkeypatch.setattr("ferry.engine.stall._READERS.run", no_thread)
    source = open_storage("src", url.partition("?")[0], {"size": 3_000_000})
    if source.protocols[0] == "memory":
        source.fs.pipe(source.resolve("a.bin"), bytes(3_000_000))
    sink = open_storage("sink", "mock://sink")
    outcome = copy_object(CopyRequest(source, "a.bin", sink, "a.bin", stall_s=1.0))
    assert outcome.bytes == 3_000_000
