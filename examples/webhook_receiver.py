"""A passline webhook receiver with Python's standard library only (docs/webhooks.md).

    PASSLINE_WEBHOOK_SECRET=... python examples/webhook_receiver.py 127.0.0.1:9000

It checks every delivery's signature and timestamp, answers 401 to anything that fails,
and handles each event id once (deliveries are at least once: the same event may come
again after a timeout or a broker restart). Answer 2xx only once the event is safe with
you: anything else is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

WINDOW_S = 300  # refuse deliveries stamped further than this from our clock (replays)


def verified(
    secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> bool:
    """``Passline-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``."""
    stamp = headers.get("Passline-Timestamp") or ""
    given = headers.get("Passline-Signature") or ""
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > WINDOW_S:
        return False
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest("v1=" + mac, part.strip()) for part in given.split(","))


class Receiver(http.server.BaseHTTPRequestHandler):
    secret = os.environ.get("PASSLINE_WEBHOOK_SECRET", "")
    seen: set[str] = set()  # a real receiver keeps these in its database

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not verified(self.secret, self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        if event["id"] not in self.seen:
            self.seen.add(event["id"])
            self.handle_event(event)
        self.send_response(204)
        self.end_headers()

    def handle_event(self, event: dict[str, Any]) -> None:
        print(event["type"], event["store_id"], json.dumps(event["data"]), flush=True)


if __name__ == "__main__":
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000").rpartition(":")
    http.server.ThreadingHTTPServer((host, int(port)), Receiver).serve_forever()
