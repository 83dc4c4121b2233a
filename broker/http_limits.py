"""Limits in front of every HTTP route (DESIGN.md §7, §8.4).

``BodyGuard`` is the outermost ASGI app, so it runs before any routing:

| request | answer |
|---|---|
| a body announced (Content-Length) over its route's limit | 413 at once, nothing read |
| a chunked body that grows past the limit | 413 as the limit is crossed |
| a body-carrying request without a valid bearer token | 401 before the body is read |
| a body that does not arrive within ``http_body_timeout`` | 408 |

Every refusal closes the connection, so the unread rest of a body is never read (uvicorn
would otherwise read and drop it to keep the connection alive). A body that passes is
read once, here, and handed to the app. Scopes are still checked by the routes (403).

``header_deadline_protocol`` is uvicorn's httptools protocol with a deadline on the
request head: uvicorn waits for a request line and headers forever (slowloris), and its
keep-alive timer starts only after a first response. Past its connection cap
(``limit_concurrency``) uvicorn answers 503 itself, in text/plain; ``over_capacity``
takes the place of that answer so the 503 is problem+json with a ``Retry-After``, like
every other refusal.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from broker.auth import bearer
from broker.config import Settings
from broker.errors import BrokerError, ContentTooLarge, RequestTimeout
from broker.rest import Api, broker_problem
from protocol.rest import PROBLEM_JSON, problem_json

log = logging.getLogger(__name__)

#: Methods no route of ours reads a body for: any body is over their limit of 0 bytes.
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
BATCH_PATH = "/v1/orders:batch"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Bytes per route class, and the time a body has to arrive."""

    single: int = 1024 * 1024
    batch: int = 8 * 1024 * 1024
    timeout_s: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_body, settings.max_batch_body, settings.http_body_timeout)

    def cap(self, method: str, path: str) -> int:
        if method in BODYLESS:
            return 0
        return self.batch if path == BATCH_PATH else self.single


#: Where the token BodyGuard verified before the body waits for the route (``fastpath``):
#: verified once per request, not twice.
CLAIMS = "passline.claims"


class _ClientGone(Exception):
    """The client disconnected while sending its body: there is no one to answer."""


class BodyGuard:
    def __init__(self, app: ASGIApp, api: Api, limits: BodyLimits) -> None:
        self.app = app
        self.api = api
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._admit(scope, receive)
        except _ClientGone:
            return
        except BrokerError as exc:
            where = f"{scope['method']} {scope['path']}"
            response = broker_problem(exc, self.api.metrics, where)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, receive if body is None else _replay(body, receive), send)

    async def _admit(self, scope: Scope, receive: Receive) -> bytes | None:
        """The body, read within its limits; ``None`` when the request has none."""
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        length = _content_length(headers)
        if length == 0 or (length is None and "transfer-encoding" not in headers):
            return None
        cap = self.limits.cap(method, path)
        if cap == 0 or (length is not None and length > cap):
            raise ContentTooLarge(f"{method} {path} takes a body of at most {cap} bytes")
        scope[CLAIMS] = self.api.tokens.verify(bearer(headers.get("authorization")))
        return await self._read(receive, cap, f"{method} {path}")

    async def _read(self, receive: Receive, cap: int, what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        raise ContentTooLarge(f"{what} takes a body of at most {cap} bytes")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            wait = self.limits.timeout_s
            raise RequestTimeout(f"the body did not arrive within {wait:g} s") from None


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then whatever the server says next (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class _HeaderDeadline(HttpToolsProtocol):
    """A connection has ``header_timeout_s`` for its request head, counted from the
    connect or from the first byte of each later request; then it is closed."""

    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        if self._head_timer is None and self.header_timeout_s > 0:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.debug("http %s: no request head within %gs", self.client, self.header_timeout_s)
            self.transport.close()


CAPACITY_RETRY_AFTER_S = 2
_OVER_CAPACITY = problem_json(
    503, "Service unavailable", "too many connections to this node: try again shortly"
).encode()


async def over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's answer past ``limit_concurrency``, as problem+json (it closes after)."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(_OVER_CAPACITY)).encode()),
                (b"retry-after", str(CAPACITY_RETRY_AFTER_S).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _OVER_CAPACITY, "more_body": False})


# uvicorn picks its over-the-cap app from this module global when a request arrives past
# ``limit_concurrency``; there is no setting for it. tests/security/test_connections.py
# checks the answer, so an uvicorn that moves it fails loudly.
httptools_impl.service_unavailable = over_capacity  # type: ignore[assignment]


def header_deadline_protocol(timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``."""

    class HeaderDeadline(_HeaderDeadline):
        header_timeout_s = timeout_s

    return HeaderDeadline
