"""What the once-a-second token sweep (revoked or expired tokens, 4501) holds the loop for,
at N open sockets (issue 14; results in docs/benchmarks.md).

The sweep is ``WsServer.end_tokens``, run on N peers with store tokens (in process, no
sockets: it is loop time we measure). A quiet second (no new revocation, nothing expiring)
is the common case; a second after a revocation does the full pass over every peer.

    .venv/bin/python bench/token_sweep.py --sockets 10000 50000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from broker.auth import Claims, Scope
from broker.ws import WsServer


class FakePeer:
    """What the sweep reads of a peer."""

    def __init__(self, claims: Claims) -> None:
        self.claims, self.closing, self.label, self.closed = claims, False, "store", 0

    def close_soon(self, code: int, reason: str) -> None:
        self.closed += 1


def server(n: int, now: float) -> Any:
    ws = object.__new__(WsServer)  # the sweep's state only: peers, expiry heap, tokens
    ws.peers, ws._expiries = set(), []
    ws._expiry_seq = iter(range(10**12))
    revoked = {f"gone-{i}" for i in range(1000)}
    ws._tokens = type("T", (), {"revoked": staticmethod(lambda jti: jti in revoked)})()
    for i in range(n):
        claims = Claims("s", Scope.STORE, f"j-{i}", int(now) + 3600 + i % 600, store=f"s-{i}")
        ws.add_peer(FakePeer(claims))
    return ws


def timed(fn: Any, rounds: int = 20) -> dict[str, float]:
    ms = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(statistics.median(ms), 2), "max_ms": round(max(ms), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[10_000, 50_000])
    args = parser.parse_args()
    now = time.time()
    for n in args.sockets:
        ws = server(n, now)
        quiet = timed(lambda ws=ws: ws.end_tokens(now, False))
        full = timed(lambda ws=ws: ws.end_tokens(now, True))
        print(f"{n:>7} sockets: quiet second {quiet}, after a revocation (full pass) {full}")


if __name__ == "__main__":
    main()
