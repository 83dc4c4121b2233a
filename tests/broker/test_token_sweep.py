"""The token sweep's bookkeeping (``WsServer.add_peer``/``end_tokens``): expiry comes off a
heap every second, the pass over every peer runs only after a new revocation, and the
heap does not keep closed peers. End to end (real sockets, 4501 on every node):
tests/security/test_revocation.py."""

from __future__ import annotations

from typing import Any

from broker.auth import Claims, Scope
from broker.ws import EXPIRY_SLACK, WsServer

NOW = 1_900_000_000.0


class Peer:
    def __init__(self, jti: str, exp: float) -> None:
        self.claims = Claims("s", Scope.KDS, jti, int(exp), store="s-1")
        self.closing, self.label, self.closed_with = False, "kds", ""

    def close_soon(self, code: int, reason: str) -> None:
        self.closing, self.closed_with = True, f"{int(code)} {reason}"


def sweeper(revoked: set[str]) -> Any:
    ws = object.__new__(WsServer)  # only the sweep's state: no sockets, no services
    ws.peers, ws._expiries, ws._expiry_seq = set(), [], iter(range(10**9))
    ws._tokens = type("Tokens", (), {"revoked": staticmethod(lambda jti: jti in revoked)})()
    return ws


def test_an_expired_token_is_closed_on_a_quiet_sweep_and_a_revoked_one_after_a_change() -> None:
    revoked: set[str] = set()
    ws = sweeper(revoked)
    soon, later, gone = Peer("a", NOW + 5), Peer("b", NOW + 3600), Peer("c", NOW + 3600)
    for p in (soon, later, gone):
        ws.add_peer(p)
    ws.end_tokens(NOW, False)
    assert [p.closed_with for p in (soon, later, gone)] == ["", "", ""]
    revoked.add("c")
    ws.end_tokens(NOW + 10, False)  # no new revocation seen yet: only expiry is checked
    assert (soon.closed_with, later.closed_with, gone.closed_with) == ("4501 token expired", "", "")
    ws.end_tokens(NOW + 11, True)
    assert (later.closed_with, gone.closed_with) == ("", "4501 token revoked")


def test_closed_peers_leave_the_expiry_heap() -> None:
    ws = sweeper(set())
    for i in range(5 * EXPIRY_SLACK):
        peer = Peer(f"j-{i}", NOW + 3600)
        ws.add_peer(peer)
        ws.peers.discard(peer)  # the socket closed
    assert len(ws._expiries) <= 2 * len(ws.peers) + EXPIRY_SLACK + 1
