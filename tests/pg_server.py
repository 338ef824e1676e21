"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temporary folder,
127.0.0.1 only with trust authentication, no durability (fsync off); stopped and removed at the
end. Each test asks it for an empty database of its own."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

DEBIAN_SERVERS = Path("/usr/lib/postgresql")  # <version>/bin/{initdb,pg_ctl,postgres}
OWNER = "postgres"  # the server refuses to run as root
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


@dataclass
class PostgresCluster:
    port: int
    admin: psycopg.Connection  # autocommit, on the "postgres" database
    base: Path  # the cluster's folder: its data, its log, its socket
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def stop(self) -> None:
        """Stop the server as an operator does (``pg_ctl stop -m fast``: clients are cut off),
        keeping its data; ``start`` brings it back."""
        self.admin.close()
        _as_owner(server_bindir() / "pg_ctl", "stop", "-D", self.base / "data", "-m", "fast",
                  "-w", cwd=self.base)  # fmt: skip

    def start(self) -> None:
        _as_owner(server_bindir() / "pg_ctl", "start", "-D", self.base / "data", "-l",
                  self.base / "server.log", "-w", "-t", "60", cwd=self.base)  # fmt: skip
        self.admin = psycopg.connect(_conninfo(self.port), autocommit=True, connect_timeout=10)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{OWNER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t_{next(self._numbers)}"
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        statement = sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
        self.admin.execute(statement)


def server_bindir() -> Path:
    """The newest of Debian's server versions; else the folder of an ``initdb`` on the PATH."""
    versions = sorted(
        (tuple(int(part) for part in path.name.split(".")), path / "bin")
        for path in DEBIAN_SERVERS.glob("*")
        if (path / "bin" / "initdb").is_file()
    )
    if versions:
        return versions[-1][1]
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL's initdb is missing: `make test` installs it (make test-servers)"
    )


def _as_owner(*command: str | Path, cwd: Path) -> None:
    prefix = ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []
    command_line = [*prefix, *map(str, command)]
    done = subprocess.run(command_line, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _hand_over(folder: Path) -> None:
    """Root runs the server as the ``postgres`` system user, created if missing."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(OWNER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", OWNER], check=True)
        user = pwd.getpwnam(OWNER)
    os.chown(folder, user.pw_uid, user.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _configure(data: Path, sockets: Path, port: int) -> None:
    settings = {**SETTINGS, "port": str(port), "unix_socket_directories": f"'{sockets}'"}
    with (data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    (data / "pg_hba.conf").write_text(HBA)


def _conninfo(port: int) -> str:
    return f"host=127.0.0.1 port={port} user={OWNER} dbname=postgres"


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb, start and wait until ready (``pg_ctl -w`` polls, with a deadline), yield; then
    stop without a shutdown checkpoint and delete everything."""
    bindir = server_bindir()
    # Not under pytest's basetemp: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="ferry-pg-"))
    data, log = base / "data", base / "server.log"
    try:
        _hand_over(base)
        initdb = [bindir / "initdb", "-D", data, "-U", OWNER, "-E", "UTF8", "--no-locale", "-N"]
        _as_owner(*initdb, cwd=base)
        port = _free_port()
        _configure(data, base, port)
        try:
            _as_owner(bindir / "pg_ctl", "start", "-D", data, "-l", log, "-w", "-t", "60", cwd=base)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log.read_text() if log.exists() else ''}") from None
        try:
            cluster = PostgresCluster(
                port, psycopg.connect(_conninfo(port), autocommit=True, connect_timeout=10), base
            )
            try:
                yield cluster
            finally:
                cluster.admin.close()
        finally:
            _as_owner(bindir / "pg_ctl", "stop", "-D", data, "-m", "immediate", "-w", cwd=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
