"""Which addresses the web server's bind host means: loopback only, or every interface."""

from __future__ import annotations

import ipaddress
import socket

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "*"})


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (names other than localhost are not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def advertised_host(bind_host: str) -> str:
    """The host other workers use to reach this one: a wildcard bind is not an address."""
    return socket.gethostname() if bind_host in WILDCARD_HOSTS else bind_host
