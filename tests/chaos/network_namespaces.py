"""Two network namespaces of the test's own, as root with ``ip``: the server's, joined to the
test's (the host's) by one veth pair, and an agent's, joined to the server's by another; the
link between the server and the agent is cut and healed at will. Nothing is on the host's side
but one end of a veth pair, and nothing listens there."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

NUMBERS = itertools.count()


@dataclass(frozen=True)
class Network:
    server_ns: str
    agent_ns: str
    server_address: str  # the server's, in server_ns: reached from the test and from agent_ns
    link: str  # the server's end of the pair to agent_ns: down cuts the agent off

    def cut(self) -> None:
        """Packets between the agent's namespace and the server's are dropped, silently (no
        refusal, no reset): what a partition looks like to both."""
        ip("-n", self.server_ns, "link", "set", self.link, "down")

    def heal(self) -> None:
        ip("-n", self.server_ns, "link", "set", self.link, "up")


def ip(*arguments: str) -> str:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def partitionable_network() -> Iterator[Network]:
    """Make both namespaces and links; afterwards (even after a failure) end what still runs in
    them (what the test started there) and remove them, the veth pairs with them."""
    tag = f"{os.getpid() % 100_000}{next(NUMBERS)}"
    octet = free_octet()
    server_ns, agent_ns = f"ferry-chaos-s{tag}", f"ferry-chaos-a{tag}"
    host_end, server_end, link, agent_end = (f"fc{tag}{end}" for end in ("h", "s", "l", "a"))
    try:
        ip("netns", "add", server_ns)
        ip("netns", "add", agent_ns)
        ip("link", "add", host_end, "type", "veth", "peer", "name", server_end, "netns", server_ns)
        ip("addr", "add", f"10.231.{octet}.2/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        inside_server = ("-n", server_ns)
        ip(*inside_server, "link", "set", "lo", "up")
        ip(*inside_server, "addr", "add", f"10.231.{octet}.1/30", "dev", server_end)
        ip(*inside_server, "link", "set", server_end, "up")
        ip(*inside_server, "link", "add", link, "type", "veth", "peer", "name", agent_end,
           "netns", agent_ns)  # fmt: skip
        ip(*inside_server, "addr", "add", f"10.232.{octet}.1/30", "dev", link)
        ip(*inside_server, "link", "set", link, "up")
        inside_agent = ("-n", agent_ns)
        ip(*inside_agent, "link", "set", "lo", "up")
        ip(*inside_agent, "addr", "add", f"10.232.{octet}.2/30", "dev", agent_end)
        ip(*inside_agent, "link", "set", agent_end, "up")
        ip(*inside_agent, "route", "add", "default", "via", f"10.232.{octet}.1")
        yield Network(server_ns, agent_ns, f"10.231.{octet}.1", link)
    finally:
        for namespace in (agent_ns, server_ns):
            remove_namespace(namespace)
        with suppress(RuntimeError):  # gone with its peer, unless making that one failed
            ip("link", "del", host_end)


def free_octet() -> int:
    """A third octet whose 10.231.N.0/30 and 10.232.N.0/30 no route of the host uses."""
    routes = ip("-4", "route", "show")
    for candidate in itertools.chain(range(os.getpid() % 256, 256), range(256)):
        if f"10.231.{candidate}." not in routes and f"10.232.{candidate}." not in routes:
            return candidate
    raise RuntimeError("no free 10.231.N.0/30 for a test network")


def remove_namespace(namespace: str) -> None:
    with suppress(RuntimeError):
        for pid in ip("netns", "pids", namespace).split():
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", namespace)
