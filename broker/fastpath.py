"""``POST /v1/orders`` without FastAPI's per-request machinery (the ingest hot path).

Profiling a submit burst showed FastAPI's routing, dependency solving and exception
middleware costing more CPU than the submit itself. This ASGI wrapper answers exactly what
the FastAPI route answers (same auth, rate limit, problem+json errors, bodies); every other
request, and the OpenAPI description of this one, still goes to the FastAPI app. Body
size, the token-before-body check and the body deadline are ``http_limits.BodyGuard``'s,
in front of both.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.auth import Scope as TokenScope
from broker.auth import bearer
from broker.errors import BrokerError
from broker.http_limits import CLAIMS
from broker.rest import Api, broker_problem, validation_problem
from protocol.orders import Order

PATH = "/v1/orders"


class FastSubmit:
    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        response = await self._submit(scope, receive)
        if isinstance(response, tuple):  # the usual answer: two sends, no Response object
            status, body = response
            await send({"type": "http.response.start", "status": status, "headers": _json(body)})
            await send({"type": "http.response.body", "body": body})
            return
        await response(scope, receive, send)

    async def _submit(self, scope: Scope, receive: Receive) -> Any:
        api = self.api
        try:
            claims = scope.get(CLAIMS)  # BodyGuard's, when the request has a body
            if claims is None:
                claims = api.tokens.verify(bearer(_header(scope, b"authorization")))
            claims.require(claims.scope is TokenScope.INGEST, "submit or change orders")
            api.limit(claims)
            body = await _body(receive)
            try:
                order = Order.model_validate_json(body)
            except ValidationError as exc:
                return validation_problem(list(exc.errors()), api.metrics)
            status, result = await api.submit_one(claims, order)
            return status, result.model_dump_json().encode()
        except BrokerError as exc:
            return broker_problem(exc, api.metrics, f"POST {PATH}")


def _json(body: bytes) -> list[tuple[bytes, bytes]]:
    """The headers ``json_response`` sends for ``body``."""
    return [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise BrokerError("client went away")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
