"""Which printer targets this PC opens (DESIGN.md §8.3): its own allow-list, not HQ's.

A store config comes from the broker, so whoever can edit it must not be able to make a
cashier PC append to its files (``file:///etc/…``), reach hosts beyond the store
(``tcp://203.0.113.9:25``) or open a URL handler of pyserial (``serial://socket://…``).
The store client checks every printer's transport against this policy before its worker
opens anything; a refused printer never touches its target (``store_client/worker.py``).

Allowed by default (``DEFAULT_PATTERNS``):

==========================  ===============================================================
``tcp://`` IP address       in a private, link-local or loopback range (any port). Loopback
                            is this PC itself (a local print server, the emulator, tests).
                            Host *names* are not allowed by default: a DNS answer could name
                            any address. Allow one by name with ``--allow-transport``.
``file:///dev/usb/lp*``     USB printer-class devices (Linux)
``serial:///dev/tty*``      serial and USB-serial ports (Linux); ``serial://COM*`` on Windows
``usb://*``                 USB devices by vendor:product id
``file://`` anything else   never, unless allowed
==========================  ===============================================================

Patterns (``passline store-client --allow-transport PATTERN``, repeatable; each adds):

- ``tcp://HOST[:PORT]``: ``HOST`` is an address, a network (``203.0.113.0/24``;
  IPv6 in brackets: ``[2001:db8::/32]``) or a name glob (``*.printers.example``, ``*``
  for any host); ``PORT`` a number or ``*`` (no port: any port).
- ``file:///DIR/`` (ending in ``/``): any file under that directory;
  ``file:///PATH`` or ``serial:///PATH``: that path, where each ``*`` stands for part
  of one path segment; ``serial://COM*``.
- ``usb://VID:PID`` with ``*`` globs.

Paths are checked as the transport will open them (percent-decoded, host part included),
and a path with ``.`` or ``..`` segments is never allowed. Pure: no I/O, no DNS.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import unquote, urlsplit

from store_client.errors import StoreClientError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PATTERNS = (
    # never leave the store: RFC 1918, link-local, loopback (this PC) and their IPv6 peers
    "tcp://10.0.0.0/8",
    "tcp://172.16.0.0/12",
    "tcp://192.168.0.0/16",
    "tcp://169.254.0.0/16",
    "tcp://127.0.0.0/8",
    "tcp://[fc00::/7]",
    "tcp://[fe80::/10]",
    "tcp://[::1]",
    "file:///dev/usb/lp*",
    "serial:///dev/tty*",
    "serial://COM*",
    "usb://*",
)
SCHEMES = ("tcp", "file", "serial", "usb")
DEFAULT_TCP_PORT = 9100  # as printer_drivers.transports.tcp
_PORT = re.compile(r"^(\d{1,5}|\*)$")
_HOST_GLOB = re.compile(r"^[A-Za-z0-9*?.-]+$")
REFUSED = "transport not allowed on this PC"


class TransportNotAllowed(StoreClientError):
    """A printer's transport is outside what this PC allows."""


class BadPattern(StoreClientError, ValueError):
    """An ``--allow-transport`` pattern that cannot be understood."""


@dataclass(frozen=True)
class _TcpRule:
    network: IpNetwork | None
    name: str | None
    """A host name glob, when the pattern named no address or network."""
    port: str  # digits or "*"

    def allows(self, target: str | tuple[str, int]) -> bool:
        if not isinstance(target, tuple):
            return False
        host, port = target
        if self.port != "*" and int(self.port) != port:
            return False
        if self.network is not None:
            address = _address(host)
            return address is not None and address in self.network
        return self.name is not None and fnmatchcase(host.lower(), self.name)


@dataclass(frozen=True)
class _GlobRule:
    """``/dir/`` (anything under it), ``/a/b*`` (segment by segment) or ``COM*`` (a name)."""

    pattern: str

    def allows(self, target: str | tuple[str, int]) -> bool:
        if not isinstance(target, str):
            return False
        if self.pattern.endswith("/"):
            return target.startswith(self.pattern) and len(target) > len(self.pattern)
        if not self.pattern.startswith("/"):
            return "/" not in target and fnmatchcase(target.upper(), self.pattern.upper())
        want, got = self.pattern.split("/"), target.split("/")
        return len(want) == len(got) and all(
            fnmatchcase(g, w) for w, g in zip(want, got, strict=True)
        )


_Rule = _TcpRule | _GlobRule


@dataclass(frozen=True)
class TransportPolicy:
    """``check(uri)`` raises ``TransportNotAllowed`` unless a pattern allows ``uri``."""

    patterns: tuple[str, ...] = DEFAULT_PATTERNS

    @classmethod
    def with_extra(cls, extra: Iterable[str]) -> TransportPolicy:
        """The defaults plus ``extra``; ``BadPattern`` for one that cannot be understood."""
        added = tuple(p.strip() for p in extra if p.strip())
        for pattern in added:
            _rule(pattern)
        return cls(DEFAULT_PATTERNS + added)

    def check(self, uri: str) -> None:
        scheme = urlsplit(uri).scheme.lower()
        try:
            target = _target(scheme, uri)
        except ValueError as exc:
            raise TransportNotAllowed(f"{REFUSED}: {uri} ({exc})") from None
        for pattern in self.patterns:
            if pattern.lower().startswith(scheme + "://") and _rule(pattern).allows(target):
                return
        raise TransportNotAllowed(f"{REFUSED}: {uri} (see store-client --allow-transport)")


def _target(scheme: str, uri: str) -> str | tuple[str, int]:
    """What the transport would open, parsed as ``printer_drivers.transports`` parses it."""
    if scheme not in SCHEMES:
        raise ValueError(f"expected one of {', '.join(SCHEMES)}")
    parts = urlsplit(uri)
    if scheme == "tcp":
        if not parts.hostname:
            raise ValueError("no host")
        return parts.hostname, parts.port or DEFAULT_TCP_PORT
    if scheme == "usb":
        return parts.netloc.lower()
    path = unquote(parts.netloc + parts.path)
    if "\x00" in path or "\\" in path:
        raise ValueError("odd characters in the path")
    if path.startswith("/") and any(seg in (".", "..", "") for seg in path.split("/")[1:]):
        raise ValueError("not a plain path")
    return path


def _rule(pattern: str) -> _Rule:
    scheme, sep, rest = pattern.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES or not rest:
        raise BadPattern(
            "expected tcp://HOST[:PORT], file:///PATH, serial://PORT or usb://VID:PID, "
            f"got {pattern!r}"
        )
    if scheme == "tcp":
        return _tcp_rule(pattern, rest)
    target = rest.lower() if scheme == "usb" else unquote(rest)
    if scheme == "file" and not target.startswith("/"):
        raise BadPattern(f"expected file:///ABSOLUTE/PATH, got {pattern!r}")
    if any(seg in (".", "..") for seg in target.split("/")):
        raise BadPattern(f"expected a plain path without . or .., got {pattern!r}")
    return _GlobRule(target)


def _tcp_rule(pattern: str, rest: str) -> _TcpRule:
    """``[v6 address or network][:port]`` or ``v4 address, network or name glob[:port]``."""
    if rest.startswith("[") and "]" in rest:
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ("*" if not tail else "")
    else:
        host, sep, port = rest.rpartition(":")
        host, port = (host, port) if sep else (rest, "*")
    if not host or not _PORT.match(port):
        raise BadPattern(f"expected tcp://HOST[:PORT] (PORT a number or *), got {pattern!r}")
    try:
        return _TcpRule(ipaddress.ip_network(host, strict=False), None, port)
    except ValueError:
        pass
    if not _HOST_GLOB.match(host):
        raise BadPattern(f"expected a host name, address or network, got {pattern!r}")
    return _TcpRule(None, host.lower(), port)


def _address(host: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:8.8.8.8 is 8.8.8.8
    return address
