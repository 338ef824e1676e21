"""Where callers may come from (DaemonCore's ALLOW/DENY host lists), per role of the caller.

The rules of a role apply to every request authenticated as that role, and to an agent's
registration with a one-time secret (as ``DAEMON``). Routes that need no token (``/healthz``,
the API document) answer every address: a load balancer must reach them, and they say nothing
a token protects. The address is the TCP peer's, as uvicorn gives it."""

from __future__ import annotations

import ipaddress

from ferry.config import AccessRules
from ferry.errors import AddressRefused


def check_address(rules: dict[str, AccessRules], role: str, address: str | None) -> None:
    """Raise ``AddressRefused`` unless ``address`` may call as ``role``: a ``deny`` network
    that holds it refuses it; otherwise it passes when ``allow`` is empty or holds it. A role
    without rules accepts every address; an unknown address passes only such a role."""
    found = rules.get(role)
    if found is None or not (found.allow or found.deny):
        return
    if address is None:
        raise AddressRefused("an unknown address", role, "the address could not be read")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise AddressRefused(address, role, "not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 caller of a dual-stack socket
    for network in found.deny:
        if ip in network:
            raise AddressRefused(address, role, f"denied by {network}")
    if found.allow and not any(ip in network for network in found.allow):
        allowed = ", ".join(str(network) for network in found.allow)
        raise AddressRefused(address, role, f"not in the allowed networks ({allowed})")
