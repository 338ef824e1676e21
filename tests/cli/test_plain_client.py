"""The plain client's one connection, against a real HTTP server on loopback that drops a kept
connection once it has answered (as a server does with one left idle past its keep-alive): a
request that may be repeated is sent again on a new connection, one that may not is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from ferry.client.plain import PlainClient
from ferry.errors import ServerUnreachable


class DropsAfterEachAnswer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the client keeps the connection: nothing says close
    served: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.served.append(f"{self.command} {self.path}")
        body = json.dumps({"id": "t1", "status": "COMPLETED"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # then hangs up without having said so

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    DropsAfterEachAnswer.served = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), DropsAfterEachAnswer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_read_on_a_dropped_connection_is_sent_again_once(server: str) -> None:
    with PlainClient(server, token="t") as client:
        assert client.get("t1")["status"] == "COMPLETED"
        assert client.get("t1")["status"] == "COMPLETED"  # the kept connection was dropped
    assert DropsAfterEachAnswer.served == ["GET /api/v1/transfers/t1"] * 2


def test_a_submission_on_a_dropped_connection_is_not_sent_twice(server: str) -> None:
    with PlainClient(server, token="t") as client:
        client.get("t1")
        with pytest.raises(ServerUnreachable, match="closed the connection"):
            client.submit(["local:a"], "local:b")
    assert DropsAfterEachAnswer.served == ["GET /api/v1/transfers/t1"]
