"""A TCP proxy for the store link that can be cut and stalled.

Unlike ``tests/kds_web/netcut.py`` (whose hold swallows bytes and is only safe when every
connection is dropped afterwards), a stall here is what a black-holed uplink does to TCP:
nothing moves, in either direction, for a while — the bytes are not lost, they wait in
the proxy and in the kernel's buffers (so the sender blocks, as it would on retransmits)
and arrive late when the stall ends, unless one side has given up and closed first. New
connections made during a stall are accepted and wait too.

``cut()`` closes every connection at once (both ends see a reset or EOF), as a NAT
timeout or a router reboot would. Threads, not asyncio: the proxy keeps forwarding
whatever the harness's event loop is doing.
"""

from __future__ import annotations

import contextlib
import socket
import threading

CHUNK = 65536
POLL_S = 0.2


class _Pair:
    """The two sockets of one proxied connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.dead = False
        self.pumps_left = 2

    def kill(self) -> None:
        self.dead = True
        for s in (self.client, self.upstream):
            if s is not None:
                _close(s)


class LinkProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream_port``; ``stall``, ``resume``, ``cut``."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self._flowing = threading.Event()
        self._flowing.set()
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"proxy:{self.port}", daemon=True).start()

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> int:
        """Close every open connection; returns how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            pair.kill()
        return len(pairs)

    def close(self) -> None:
        self._closed = True
        _close(self.listener)
        self.cut()
        self.resume()

    # -- threads -------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            pair = _Pair(client)
            with self._lock:
                self._pairs.add(pair)
            self.connections += 1
            threading.Thread(target=self._open, args=(pair,), daemon=True).start()

    def _open(self, pair: _Pair) -> None:
        if not self._wait_flowing(pair):
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._forget(pair)
            return
        upstream.settimeout(None)
        pair.upstream = upstream
        if pair.dead:  # cut while connecting
            _close(upstream)
            return
        for src, dst in ((pair.client, upstream), (upstream, pair.client)):
            threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()

    def _wait_flowing(self, pair: _Pair) -> bool:
        while not self._flowing.wait(POLL_S):
            if pair.dead or self._closed:
                return False
        return not pair.dead

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                if not self._wait_flowing(pair):
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)  # pass the EOF on, like TCP would
        with self._lock:
            pair.pumps_left -= 1
            done = pair.pumps_left == 0
        if done:
            self._forget(pair)

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
        pair.kill()


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
