"""``broker.admission`` without sockets: client addresses through trusted proxies, caps
counted from the TCP accept, handshake rates per address, store and token."""

from __future__ import annotations

from http import HTTPStatus

from broker.admission import Admission
from broker.config import Settings

PROXIES = ("127.0.0.1", "10.0.0.0/8", "2001:db8::/32")


def admission(now: list[float] | None = None, **kw: object) -> Admission:
    settings = Settings(trusted_proxies=PROXIES, **kw)  # type: ignore[arg-type]
    clock = (lambda: now[0]) if now is not None else (lambda: 0.0)
    return Admission(settings, clock)


def test_the_client_is_who_the_first_trusted_proxy_saw() -> None:
    a = admission()
    assert a.client_address("198.51.100.7", ["1.2.3.4"]) == "198.51.100.7"  # no proxy
    assert a.client_address("10.1.1.1", ["1.2.3.4, 10.0.0.5"]) == "1.2.3.4"
    assert a.client_address("10.1.1.1", ["6.6.6.6, 1.2.3.4"]) == "1.2.3.4"  # spoof on the left
    assert a.client_address("10.1.1.1", ["6.6.6.6", "1.2.3.4, 10.2.2.2"]) == "1.2.3.4"
    assert a.client_address("10.1.1.1", []) == "10.1.1.1"
    assert a.client_address("10.1.1.1", ["10.0.0.9, 127.0.0.1"]) == "10.0.0.9"  # all proxies
    assert a.client_address("2001:db8::1", ["2001:0DB9:0::1"]) == "2001:db9::1"
    assert a.client_address("127.0.0.1", ["garbage" * 20]) == ("garbage" * 20)[:64]


def test_places_are_counted_from_accept_to_close() -> None:
    a = admission(ws_max_connections=3, ws_max_per_address=1, hello_rate=0.0)
    direct = a.connected("198.51.100.7")
    assert direct == "198.51.100.7" and a.identify("198.51.100.7", direct, ["9.9.9.9"]) == direct
    proxied = a.connected("10.1.1.1")
    assert proxied is None
    client = a.identify("10.1.1.1", proxied, ["203.0.113.5"])
    assert (client, a.total, a.connections_from(client)) == ("203.0.113.5", 2, 1)
    assert a.admit(client) is None
    second = a.identify("10.1.1.1", a.connected("10.1.1.1"), ["203.0.113.5"])
    refusal = a.admit(second)
    assert refusal is not None and refusal.status is HTTPStatus.TOO_MANY_REQUESTS
    idle = a.connected("192.0.2.1")  # never sends a request, still counts
    refusal = a.admit(a.identify("10.1.1.1", a.connected("10.1.1.1"), ["192.0.2.2"]))
    assert refusal is not None and refusal.status is HTTPStatus.SERVICE_UNAVAILABLE
    for address in (direct, client, second, idle, "192.0.2.2"):
        a.disconnected(address)
    assert a.total == 0 and a.connections_from("203.0.113.5") == 0


def test_handshakes_are_limited_per_store_and_per_token() -> None:
    now = [0.0]
    a = admission(now, store_hello_rate=1.0, store_hello_burst=2)
    assert a.admit_token("s-1", "jti-a") is None
    assert a.admit_token("s-1", "jti-b") is None
    refusal = a.admit_token("s-1", "jti-c")  # the store's bucket is dry
    assert refusal is not None and "store" in refusal.reason and refusal.retry_after == "1"
    assert a.admit_token("s-2", "jti-d") is None  # another store is not
    assert a.admit_token(None, "jti-a") is None
    refusal = a.admit_token(None, "jti-a")  # an hq token: its own bucket only
    assert refusal is not None and "token" in refusal.reason
    now[0] = 1.0
    assert a.admit_token("s-1", "jti-e") is None
