"""Where a served page finds its websockets (``/kds/config.json`` and friends).

Shared by the broker and the store edge, which both serve these pages: a page learns the
websocket base only from the server that served it, never from a link (docs/security.md).
"""

from __future__ import annotations

import re

CONFIG_PATHS = frozenset({"/kds/config.json", "/hq/config.json", "/board/config.json"})
FALLBACK_HOST = "127.0.0.1"
#: A Host header's host part: a DNS name or IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def page_ws(host_header: str | None, ws_port: int, *, secure: bool) -> str:
    """The websocket base on the page's own host: ``ws://10.0.0.5:8765``."""
    found = _HOST.match(host_header or "")
    host = found.group(1) if found else FALLBACK_HOST
    return f"{'wss' if secure else 'ws'}://{host}:{ws_port}"
