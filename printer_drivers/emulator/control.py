"""The emulator's JSON control endpoint (DESIGN.md §5.4), a minimal HTTP/1.1 server.

``POST /state`` with a JSON object of fault fields, ``GET /state``, ``GET /receipts``,
``DELETE /receipts``. One request per connection; every read has a timeout. A request whose
``Host`` is not this machine is refused with 421 (DNS rebinding: ``local_http``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from printer_drivers.local_http import MISDIRECTED, REFUSAL

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
REQUEST_TIMEOUT_S = 10.0

Handler = Callable[[str, str, bytes], Awaitable[tuple[int, Any]]]
HostCheck = Callable[[str | None], bool]


async def _read_request(
    reader: asyncio.StreamReader, host_ok: HostCheck
) -> tuple[str, str, bytes] | None:
    """Method, path and body; None for a request to another ``Host`` (its body unread)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if not host_ok(headers.get("host")):
        return None
    length = int(headers.get("content-length") or 0)
    if length > MAX_BODY_BYTES:
        raise ValueError(f"body of {length} bytes is over {MAX_BODY_BYTES}")
    body = await reader.readexactly(length) if length else b""
    return method.upper(), target.split("?", 1)[0], body


def _response(status: int, payload: Any) -> bytes:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def connection_handler(
    handle: Handler, host_ok: HostCheck
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """An ``asyncio.start_server`` callback that answers one request with ``handle``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(_read_request(reader, host_ok), REQUEST_TIMEOUT_S)
            except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                writer.write(_response(400, {"error": "malformed HTTP request"}))
            else:
                if request is None:
                    writer.write(_response(MISDIRECTED, {"error": REFUSAL}))
                else:
                    status, payload = await handle(*request)
                    writer.write(_response(status, payload))
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (TimeoutError, ConnectionError) as exc:
            log.debug("control connection dropped: %s", exc)
        finally:
            writer.close()

    return serve


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or ``ValueError`` saying why not."""
    try:
        data = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object such as {"paper": "out"}')
    return data
