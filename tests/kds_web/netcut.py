"""A TCP proxy the tests can cut, to play a flaky kitchen Wi-Fi between Chromium and the broker.

``hold()`` turns it into a black hole: connections stay open but nothing gets through, in
either direction, and new ones are accepted and ignored — what a browser sees when the
access point loses its uplink (no RST, no close). ``restore()`` drops every connection
made so far (as the network would, eventually) and forwards again.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttableProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.port: int = self.listener.getsockname()[1]
        self.holding = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"proxy:{self.port}", daemon=True).start()

    def hold(self) -> None:
        self.holding = True

    def restore(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
            self.holding = False
        for s in socks:
            _kill(s)

    def close(self) -> None:
        self._closed = True
        _kill(self.listener)
        self.restore()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(client)
            if self.holding:
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _kill(client)
                continue
            with self._lock:
                self._socks.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.holding:
                    continue  # the black hole swallows it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def _kill(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
