"""HTTP download: one 1 GiB file from nginx on 127.0.0.1 to local disk.

nginx (``nginx-light``, sendfile on) serves a folder on a free loopback port; Ferry reads it
through an ``http`` storage, verified by adler32 (the default) and with ``checksum: none``,
against ``curl -o``, ``rclone copyurl`` (rclone's http backend) and gfal2's http plugin.

    python bench/http_download.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from ferry_process import FerryServer, free_port
from large_file import copy_file, make_file
from scores import (
    GFAL2,
    RCLONE,
    Goal,
    Result,
    gfal2_available,
    median_ratio,
    rounds,
    run,
    timing_result,
)

NGINX = "/usr/sbin/nginx"
FERRY = ("ferry adler32", "ferry none")


@contextlib.contextmanager
def nginx(root: Path, base: Path) -> Iterator[str]:
    """nginx in the foreground serving ``root``; yields its URL and stops it at the end."""
    port = free_port()
    (base / "tmp").mkdir(parents=True)
    (base / "nginx.conf").write_text(
        f"user root;\nworker_processes 1;\ndaemon off;\npid {base / 'nginx.pid'};\n"
        f"error_log {base / 'error.log'};\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {base}/tmp;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n"
    )
    command = [NGINX, "-p", str(base), "-e", str(base / "error.log"), "-c", "nginx.conf"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def wait_listening(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            httpx.head(url + "/", timeout=1)
            return
        time.sleep(0.05)
    raise SystemExit(f"nginx did not start ({process.poll()})")


def tools(server: FerryServer, url: str, work: Path) -> dict[str, Callable[[int], object]]:
    source = f"{url}/big.bin"

    def target(i: int) -> str:
        (work / f"out-{i}").mkdir(exist_ok=True)
        return str(work / f"out-{i}" / "big.bin")

    found: dict[str, Callable[[int], object]] = {
        "ferry adler32": lambda i: copy_file(server, f"out-{i}", "adler32", "web:big.bin"),
        "ferry none": lambda i: copy_file(server, f"out-{i}", "none", "web:big.bin"),
        "curl -o": lambda i: run(["curl", "-sSf", "-o", target(i), source]),
    }
    if shutil.which("rclone"):
        found["rclone copyurl"] = lambda i: run([*RCLONE, "copyurl", source, target(i)])
    if gfal2_available():
        found["gfal2 http"] = lambda i: run([*GFAL2, source, target(i)])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        make_file(work / "www" / "big.bin", args.size_mib * 1024 * 1024)
        with nginx(work / "www", work / "nginx") as url:
            server = FerryServer(work)

            def cleanup() -> None:
                for folder in work.glob("out-*"):
                    shutil.rmtree(folder)

            try:
                storage = {"name": "web", "url": url + "/"}
                server.http.post("/api/v1/storages", json=storage).raise_for_status()
                times = rounds(tools(server, url, work), args.runs, cleanup)
            finally:
                server.stop()
    result(times, args).show()


def result(times: dict[str, list[float]], args: argparse.Namespace) -> Result:
    setup = f"{args.size_mib:,} MiB, nginx on 127.0.0.1 → local disk, {args.runs} runs"
    outcome = timing_result("http_download", "HTTP download", setup, times, FERRY)
    for name in times:
        outcome.notes.append(f"{name}: {args.size_mib / min(times[name]):,.0f} MiB/s at best")
    verified = median_ratio(times, "ferry adler32", "curl -o")
    plain = median_ratio(times, "ferry none", "curl -o")
    outcome.goals = [
        Goal("HTTP, adler32: ≤ 1.1 × curl", f"{verified:.2f} × curl", verified <= 1.1),
        Goal("HTTP, checksum none: ≤ 1.1 × curl", f"{plain:.2f} × curl", plain <= 1.1),
    ]
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
