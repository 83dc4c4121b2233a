"""``GET /kds/config.json``, ``/hq/config.json``, ``/board/config.json`` (DESIGN.md §8.4).

A page learns where its websockets are only from here, from the broker that served it,
never from a ``?ws=`` in a link: a link naming another host would make the screen send
its token there. The answer is ``public_ws`` when set (behind a reverse proxy, a NAT or a
load balancer), else this broker's websocket port on the host the page was loaded from
— right whenever both ports are reached under one name, as on a store LAN or the demo.

An ASGI wrapper (like ``fastpath.FastSubmit``) rather than a FastAPI route: the answer
needs the websocket port the server actually bound, and these paths sit under the
static mounts of ``/kds`` and ``/hq``, which would otherwise answer them first.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from broker.errors import ConfigError
from kds_web.pages import CONFIG_PATHS, page_ws


def check_public_ws(text: str) -> str:
    """``ws(s)://host[:port][/prefix]`` without a trailing slash; ``ConfigError`` otherwise."""
    value = text.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"public_ws expects ws://HOST:PORT or wss://HOST[/PREFIX], got {text!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"public_ws takes no user, query or fragment, got {text!r}")
    return value


class PageConfig:
    """Answers the config paths; every other request goes to ``app``."""

    def __init__(self, app: object, *, public_ws: str | None, ws_port: int, ws_tls: bool) -> None:
        # ``object``: it wraps uvicorn's ``Config.app``, typed as "an app, a factory or an
        # import string"; the broker's is always an ASGI 3 app.
        assert callable(app), f"expected an ASGI app, got {app!r}"
        self.app = cast(ASGIApp, app)
        self.public_ws = check_public_ws(public_ws) if public_ws else None
        self.ws_port = ws_port
        self.ws_tls = ws_tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in CONFIG_PATHS
            or scope["method"] not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        body = {"ws": self.ws_base(scope)}
        response = JSONResponse(body, headers={"Cache-Control": "no-store"})
        await response(scope, receive, send)

    def ws_base(self, scope: Scope) -> str:
        if self.public_ws is not None:
            return self.public_ws
        secure = self.ws_tls or scope.get("scheme") == "https"
        return page_ws(Headers(scope=scope).get("host"), self.ws_port, secure=secure)
