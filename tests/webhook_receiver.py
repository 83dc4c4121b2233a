"""A real webhook receiver for the tests: ``examples/webhook_receiver.py``'s handler (the
one docs/webhooks.md shows) on a ThreadingHTTPServer on 127.0.0.1, recording what came."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "webhook_receiver_example", ROOT / "examples" / "webhook_receiver.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = example()
verified = EXAMPLE.verified


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    ok: bool

    @property
    def event(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.body)
        return out


class Receiver:
    """``start()`` listens (again, on the same port after ``stop()``); until then the port
    refuses connections, as a receiver that is down does."""

    def __init__(self, secret: str, status: int = 204) -> None:
        self.secret = secret
        self.status = status
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/passline"

    def start(self) -> None:
        outer = self

        class Handler(EXAMPLE.Receiver):  # type: ignore[misc, name-defined]
            secret = outer.secret
            seen: set[str] = set()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verified(outer.secret, self.headers, body)
                with outer._lock:
                    outer.deliveries.append(Delivery(dict(self.headers.items()), body, ok))
                self.send_response(outer.status if ok else 401)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Verified events, in arrival order, each id once (the first arrival)."""
        with self._lock:
            got = [d.event for d in self.deliveries if d.ok and 200 <= self.status < 300]
        seen: set[str] = set()
        out = []
        for e in got:
            if e["id"] not in seen and (type_ is None or e["type"] == type_):
                seen.add(e["id"])
                out.append(e)
        return out

    async def wait_for(
        self, type_: str, match: dict[str, Any] | None = None, within: float = 30.0
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            for e in self.events(type_):
                if all(e["data"].get(k) == v for k, v in (match or {}).items()):
                    return e
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {type_} event matching {match} within {within}s: {self.events()}")
