"""The ``Host`` check of the small local HTTP endpoints: the emulator's control port and
the store client's status page (which imports it from here: the lowest package both use).

A web page from any site can make the browser showing it send requests to 127.0.0.1.
Once the page's own name resolves to 127.0.0.1 (DNS rebinding), the browser also lets it
read the answers — but those requests still carry the page's name in ``Host``. So these
endpoints answer only requests addressed to this machine by a loopback name
(``127.0.0.1``, ``localhost``, ``[::1]``, any port), and refuse the rest with 421. An
endpoint listening beyond loopback (``printer-sim --host 0.0.0.0``) also takes an IP
address as the host (no DNS name is involved, so nothing can rebind) and the name it was
told to listen on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
MISDIRECTED = 421
REFUSAL = "Host must be 127.0.0.1, localhost or [::1] (with the port)"


def host_name(header: str | None) -> str | None:
    """The name of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), lower-case;
    None when it is missing or malformed."""
    if not header:
        return None
    value = header.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    else:
        name, _, port = value.partition(":")
    if not name or (port and not port.isdigit()) or (port == "" and value.endswith(":")):
        return None
    return name


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def listens_beyond_loopback(host: str) -> bool:
    """True unless ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # "" (every address) or a name: whatever it resolves to


def host_allowed(
    header: str | None, *, beyond_loopback: bool = False, also: Collection[str] = ()
) -> bool:
    """Whether a request with this ``Host`` is addressed to this machine."""
    name = host_name(header)
    if name is None:
        return False
    if name in LOOPBACK_NAMES:
        return True
    return beyond_loopback and (is_ip(name) or name in also)
