"""Who may reach the web server: a non-loopback bind needs WEB_TOKEN or an explicit opt-out."""

from __future__ import annotations

import ipaddress
import socket

from app.errors import SettingsError
from app.settings import Settings

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "*"})


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (names other than localhost are not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_web_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address to anyone unless the user chose to."""
    host = settings.web_host
    if is_loopback(host) or settings.web_token is not None or settings.web_allow_anonymous:
        return
    allowed = (
        f"a token, because WEB_HOST={host!r} is reachable from other machines "
        "(or set WEB_ALLOW_ANONYMOUS=true to serve the API to anyone without one)"
    )
    variable = "WEB_TOKEN"
    raise SettingsError(variable, None, allowed)


def advertised_host(bind_host: str) -> str:
    """The host other workers use to reach this one: a wildcard bind is not an address."""
    return socket.gethostname() if bind_host in WILDCARD_HOSTS else bind_host
