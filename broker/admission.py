"""Who may open a websocket, and how many (DESIGN.md §7).

Pure bookkeeping, no sockets; the clock is injected. ``ws.WsServer`` asks it at each
step of a connection's life:

- TCP accept (``connected``): count it in the node's total, and under its peer address
  unless the peer is a trusted proxy (then the request names the client);
- handshake request (``identify``, ``admit``): the node's cap (HTTP 503), the address's
  cap (429), the address's handshake rate (429), each with Retry-After;
- token verified (``admit_token``; store links at the handshake, screens after their
  hello): the handshake rate per store and per token (HTTP 429, or close 4003);
- socket closed (``disconnected``): its places are free again.

The client's address is the peer's, except when the peer is a trusted proxy: then it is
the right-most X-Forwarded-For entry that is not a trusted proxy itself (what the first
proxy appended). A client that is no proxy cannot choose its address by header. Rate
limits per store and per token keep one store or one leaked token from hammering, where
a per-address limit alone would throttle a whole chain arriving through one balancer.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus

from broker.config import Settings
from broker.errors import ConfigError
from broker.limits import RateLimiter

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Retry-After for a full node or address: places free up as connections close.
CAP_RETRY_AFTER_S = 5.0
MAX_ADDRESS_CHARS = 64  # a forwarded entry that is no address is kept this long


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: str  # which one: node, address, address_rate, store, token (a metrics label)
    status: HTTPStatus
    reason: str
    retry_after_s: float

    @property
    def retry_after(self) -> str:
        """The Retry-After header value: whole seconds, at least one."""
        return str(max(1, math.ceil(self.retry_after_s)))


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)
    except ValueError as exc:
        raise ConfigError(f"trusted_proxies: {exc}") from None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


class Admission:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.proxies = parse_networks(settings.trusted_proxies)
        self.max_total = settings.ws_max_connections
        self.max_per_address = settings.ws_max_per_address
        self.total = 0
        self._per_address: Counter[str] = Counter()
        self._by_address = RateLimiter(settings.hello_rate, settings.hello_burst, clock)
        self._by_token = RateLimiter(settings.store_hello_rate, settings.store_hello_burst, clock)

    # -- addresses -------------------------------------------------------------------------
    def is_proxy(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.proxies)

    def client_address(self, peer: str, forwarded: Iterable[str]) -> str:
        """``peer``, or for a trusted proxy the client its X-Forwarded-For vouches for."""
        if not self.is_proxy(peer):
            return peer
        hops = [h.strip() for value in forwarded for h in value.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.is_proxy(hop):
                ip = _ip(hop)
                return str(ip) if ip is not None else hop[:MAX_ADDRESS_CHARS]
        return str(_ip(hops[0]) or peer) if hops else peer

    # -- a connection's life ---------------------------------------------------------------
    def connected(self, peer: str) -> str | None:
        """A TCP connection from ``peer``: the address it counts under, or ``None`` until
        its request names the client (a trusted proxy's connection)."""
        self.total += 1
        if self.is_proxy(peer):
            return None
        self._per_address[peer] += 1
        return peer

    def identify(self, peer: str, counted: str | None, forwarded: Iterable[str]) -> str:
        """The client's address at the handshake, counted once per connection."""
        if counted is not None:
            return counted
        address = self.client_address(peer, forwarded)
        self._per_address[address] += 1
        return address

    def disconnected(self, address: str | None) -> None:
        self.total -= 1
        if address is None:
            return
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def connections_from(self, address: str) -> int:
        return self._per_address.get(address, 0)

    # -- decisions -------------------------------------------------------------------------
    def admit(self, address: str) -> Refusal | None:
        """At the handshake, before any token: the node's and the address's share."""
        if self.max_total and self.total > self.max_total:
            reason = "too many connections to this node"
            return Refusal("node", HTTPStatus.SERVICE_UNAVAILABLE, reason, CAP_RETRY_AFTER_S)
        if self.max_per_address and self.connections_from(address) > self.max_per_address:
            reason = "too many connections from this address"
            return Refusal("address", HTTPStatus.TOO_MANY_REQUESTS, reason, CAP_RETRY_AFTER_S)
        wait = self._by_address.take(address)
        if wait > 0:
            reason = "too many connection attempts"
            return Refusal("address_rate", HTTPStatus.TOO_MANY_REQUESTS, reason, wait)
        return None

    def admit_token(self, store: str | None, jti: str) -> Refusal | None:
        """Once the token is verified: one store's and one token's handshake rate."""
        keys = [("token", jti)] if store is None else [("token", jti), ("store", store)]
        for limit, key in keys:
            wait = self._by_token.take(f"{limit} {key}")
            if wait > 0:
                reason = f"too many connection attempts for this {limit}"
                return Refusal(limit, HTTPStatus.TOO_MANY_REQUESTS, reason, wait)
        return None
