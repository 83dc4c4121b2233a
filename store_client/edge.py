"""The store edge: order ingest and kitchen screens on the store's LAN (``--lan HOST:PORT``,
DESIGN.md §8.6).

A POS on the LAN posts orders here exactly as it would to the broker (same body, same
answers, same problem+json errors). The order is planned with the broker's own rules
(``kitchen``), against the last config the broker sent, with the broker's deterministic
ids; its jobs, the order and its forward to the broker are written in one spool
transaction, and the printers start at once, whether or not the uplink is up. The forward
goes up in the outbox, in order with job reports, and the broker acknowledges it like a
report; there it is submitted as if it came over REST, so its jobs are the ones already
spooled (deduplicated by id) and nothing prints twice. docs/store-edge.md has the rules.

Kitchen screens may load the KDS app from the edge (``/kds/``); its ``config.json`` points
the page at the edge's own ``/v1/ws/kds``, which the edge relays to the broker's, frame for
frame (the screen's hello and token go to the broker, which checks them; close codes come
back as they are). With the uplink down the screen is closed with 1013 and retries; screens
that keep working offline are the next step (docs/store-edge.md).

Only this module imports the web stack (Starlette on uvicorn), and only with ``--lan``: a
store client without the edge does not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from kds_web import STATIC_DIR
from kds_web.pages import page_ws
from kitchen.amend import amended, plan_amend, plan_cancel
from kitchen.errors import Refused
from kitchen.routing import Plan, plan_submit, submit_result
from protocol.config import VersionedStoreConfig
from protocol.ids import order_id_for
from protocol.messages.kds import KDS_SCREEN, KdsHello
from protocol.messages.store import LanAmend, LanCancel
from protocol.orders import Amendment, CancelRequest, Order
from protocol.rest import PROBLEM_JSON, field_errors, problem_json, validation_detail
from store_client.edge_orders import EdgeOrder
from store_client.edge_screens import LocalKitchen
from store_client.edge_settings import EdgeSettings
from store_client.lean import proxy_setting

if TYPE_CHECKING:
    from store_client.daemon import StoreClient

log = logging.getLogger(__name__)

#: The broker's default limit for one order's body (``max_body``).
MAX_BODY = 1024 * 1024
BODY_TIMEOUT_S = 30.0
NO_CONFIG_RETRY_S = 5
KDS_PATH = "/v1/ws/kds"
JSON_SUBPROTOCOL = "passline.v1.json"
#: Close code for a screen whose broker cannot be reached now (RFC 6455: try again later).
UPLINK_DOWN = 1013
MAX_SCREEN_FRAME = 1024 * 1024
RELAY_CLOSE_S = 5.0
JSON = "application/json"
M = TypeVar("M", bound=BaseModel)


class _Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.response = Response(
            problem_json(status, title, detail, errors), status, headers, media_type=PROBLEM_JSON
        )


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


#: How long a stopping edge waits for its screens' sockets to close.
CLOSE_S = 5.0


class LanEdge:
    """The LAN ingest of one store client; ``await edge.serve()`` runs it."""

    def __init__(self, client: StoreClient, settings: EdgeSettings) -> None:
        self.client = client
        self.settings = settings
        self._sock = socket.create_server((settings.host, settings.port), reuse_port=False)
        self.port: int = self._sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/v1/orders", self.submit, methods=["POST"]),
                Route("/v1/orders/{order_id}/amend", self.amend, methods=["POST"]),
                Route("/v1/orders/{order_id}/cancel", self.cancel, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/kds/config.json", self.page_config, methods=["GET", "HEAD"]),
                WebSocketRoute(KDS_PATH, self.kds_socket),
                Mount("/kds", StaticFiles(directory=STATIC_DIR / "kds", html=True)),
            ]
        )
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_keep_alive=5,
            limit_concurrency=64,
        )
        self._server = _EmbeddedUvicorn(config)
        self.local = LocalKitchen(client)

    async def serve(self) -> None:
        log.info("store edge: LAN ingest on http://%s:%d", self.settings.host, self.port)
        if not self.settings.token:
            log.warning(
                "store edge: no --lan-token: LAN devices use the store's own token, which "
                "also opens the store link; set --lan-token so the POS never holds it"
            )
        await self.local.restore()
        try:
            await self._server.serve(sockets=[self._sock])
        except asyncio.CancelledError:
            await self._close()
            raise
        finally:
            self._sock.close()

    async def _close(self) -> None:
        """The client is stopping: close the screens' sockets (1012) and let their relays
        end, so nothing of the web stack outlives the client (uvicorn, cut off mid-serve,
        leaves its websocket tasks behind otherwise)."""
        self._server.should_exit = True
        try:
            async with asyncio.timeout(CLOSE_S):
                await self._server.shutdown(sockets=[self._sock])
        except TimeoutError:
            log.warning("store edge: screens did not close in %.0fs", CLOSE_S)
            for task in list(self._server.server_state.tasks):
                task.cancel()

    # -- routes ------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        phase = self.client.link.phase.value
        body = f'{{"status":"ok","store_id":"{self.client.settings.store_id}","link":"{phase}"}}'
        return Response(body, media_type="application/json")

    async def page_config(self, request: Request) -> Response:
        """The KDS page's websocket base: this edge, on the host the page was loaded from."""
        ws = page_ws(request.headers.get("host"), self.port, secure=False)
        return Response(
            f'{{"ws":"{ws}"}}', media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    async def kds_socket(self, screen: WebSocket) -> None:
        """A kitchen screen's socket, relayed to the broker's ``/v1/ws/kds`` as it is while
        the store is linked; served here in local mode while it is not (``edge_screens``)."""
        offered = screen.scope.get("subprotocols") or []
        await screen.accept(subprotocol=JSON_SUBPROTOCOL if JSON_SUBPROTOCOL in offered else None)
        if not self.client.online:
            await self.local.serve(screen)
            return
        try:
            async with connect(
                self.client.broker_url(KDS_PATH),
                subprotocols=[JSON_SUBPROTOCOL],  # type: ignore[list-item]
                compression=None,
                open_timeout=self.client.settings.open_timeout_s,
                max_size=MAX_SCREEN_FRAME,
                ssl=self.client.ssl_context(),
                proxy=proxy_setting(),
            ) as broker:
                await _relay(screen, broker, self.local)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            why = (
                f"broker answered HTTP {exc.response.status_code}"
                if isinstance(exc, InvalidStatus)
                else "the store's uplink is down"
            )
            log.info("kds screen on the LAN: %s", why)
            with contextlib.suppress(RuntimeError):
                await screen.close(UPLINK_DOWN, why)

    async def amend(self, request: Request) -> Response:
        """``POST /v1/orders/{id}/amend`` for an order this edge took: delta chits print at
        once, the amendment goes up after (DESIGN.md §8.6)."""
        try:
            self._authorize(request)
            body = await _body(request)
            am = _parse_as(Amendment, body)
            rec = await self._edge_order(request.path_params["order_id"])
            if rec.cancelled:
                raise _Problem(409, "Conflict", f"order {rec.order_id!r} is cancelled")
            config, now = self._config(), self.client.clock.now()
            plan = _planned(lambda: plan_amend(rec, rec.tickets, am, config, now))
            new = rec.model_copy(
                update={
                    **amended(rec, am, plan),
                    "tickets": {**rec.tickets, **{t.station_id: t for t in plan.tickets}},
                }
            )
            ref = f"lan-{rec.order_id}-r{plan.revision}"
            forward = LanAmend(order_id=rec.order_id, amendment=am, ref=ref, taken_at=now)
            fresh = await self.client.spool.change_lan_order(
                rec.order_id, new.model_dump_json(), plan.jobs, forward
            )
        except _Problem as exc:
            return exc.response
        self.client.lan_order_taken(fresh)
        await self.local.taken(plan.tickets)
        return Response(submit_result(rec.order_id, plan).model_dump_json(), 200, media_type=JSON)

    async def cancel(self, request: Request) -> Response:
        """``POST /v1/orders/{id}/cancel`` for an order this edge took: what has not
        started printing stops, void chits go to the stations with live lines."""
        try:
            self._authorize(request)
            body = await _body(request)
            req = _parse_as(CancelRequest, body) if body.strip() else CancelRequest()
            rec = await self._edge_order(request.path_params["order_id"])
            if rec.cancel_result is not None:
                again = rec.cancel_result.model_copy(update={"duplicate": True})
                return Response(again.model_dump_json(), 200, media_type=JSON)
            config, now = self._config(), self.client.clock.now()
            plan = _planned(lambda: plan_cancel(rec, rec.tickets, config, now))
            result = submit_result(rec.order_id, plan)
            new = rec.model_copy(
                update={
                    "revision": plan.revision,
                    "cancelled": True,
                    "cancel_result": result,
                    "tickets": {t.station_id: t for t in plan.tickets},
                    "jobs": [*rec.jobs, *(j.job_id for j in plan.jobs)],
                }
            )
            forward = LanCancel(order_id=rec.order_id, cancel=req, taken_at=now)
            fresh = await self.client.spool.change_lan_order(
                rec.order_id, new.model_dump_json(), plan.jobs, forward, stop=rec.jobs
            )
        except _Problem as exc:
            return exc.response
        self.client.lan_order_taken(fresh)
        await self.local.taken(plan.tickets)
        return Response(result.model_dump_json(), 200, media_type=JSON)

    def _config(self) -> VersionedStoreConfig:
        config = self.client.current_config()
        if config is None:
            raise _Problem(
                503,
                "Not ready",
                "no store config yet: the store client has not reached the broker once",
                headers={"Retry-After": str(NO_CONFIG_RETRY_S)},
            )
        return config

    async def _edge_order(self, order_id: str) -> EdgeOrder:
        state = await self.client.spool.lan_order_state(order_id)
        if state is None:
            raise _Problem(
                404,
                "Not found",
                f"no order {order_id!r} taken on this edge: amend or cancel orders from "
                "other channels at the broker",
            )
        return EdgeOrder.model_validate_json(state)

    async def submit(self, request: Request) -> Response:
        try:
            self._authorize(request)
            order = _parse(await _body(request))
            status, body = await self._take(order)
        except _Problem as exc:
            return exc.response
        return Response(body, status, media_type="application/json")

    # -- steps -------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        """The edge's LAN token when one is set (``--lan-token``), else the store's own
        token. Compared in constant time, before the body is read."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = self.settings.token or self.client.settings.token
        which = "the edge's LAN token" if self.settings.token else "this store's token"
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
            raise _Problem(
                401,
                "Unauthorized",
                f"send {which}: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def _take(self, order: Order) -> tuple[int, str]:
        store_id = self.client.settings.store_id
        if order.store_id != store_id:
            raise _Problem(
                403, "Forbidden", f"this store edge takes orders for store {store_id!r} only"
            )
        config = self._config()
        order_id = order_id_for(order.store_id, order.channel, order.external_id)
        now = self.client.clock.now()
        plan = _planned(lambda: plan_submit(order, order_id, config, now))
        result = submit_result(order_id, plan)
        state = EdgeOrder(
            order_id=order_id,
            order=order,
            line_station=plan.line_station,
            tickets={t.station_id: t for t in plan.tickets},
            jobs=[j.job_id for j in plan.jobs],
            result=result,
        )
        offline = not self.client.online
        taken, answer, fresh = await self.client.spool.take_lan_order(
            order, result, plan.jobs, now, offline, state.model_dump_json()
        )
        self.client.lan_order_taken(fresh)
        if taken:
            await self.local.taken(plan.tickets)
            log.info(
                "lan order store=%s external_id=%s jobs=%d new=%d",
                store_id,
                order.external_id,
                len(plan.jobs),
                len(fresh),
            )
        return (200 if answer.duplicate else 202), answer.model_dump_json()


def _planned(plan: Callable[[], Plan]) -> Plan:
    """The kitchen's plan; its refusals as the broker's 422."""
    try:
        return plan()
    except Refused as exc:
        raise _Problem(422, "Unprocessable request", exc.detail, exc.errors) from None


async def _body(request: Request) -> bytes:
    """The body, refused with 413 before it is read when it says it is too long, and
    when it turns out to be; 408 when it does not arrive in time."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _Problem(413, "Content too large", f"a body may have at most {MAX_BODY} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise _Problem(
                        413, "Content too large", f"a body may have at most {MAX_BODY} bytes"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise _Problem(408, "Request timeout", "the body did not arrive in time") from None
    except ClientDisconnect:
        raise _Problem(400, "Bad request", "the client went away") from None
    return b"".join(chunks)


def _parse(body: bytes) -> Order:
    return _parse_as(Order, body)


def _parse_as(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = field_errors(list(exc.errors()))
        raise _Problem(422, "Invalid request", validation_detail(errors), errors) from None


async def _relay(screen: WebSocket, broker: ClientConnection, local: LocalKitchen) -> None:
    """Frames both ways until one side closes; the other is closed with its code. The
    edge watches what goes by, for local mode: which screens the broker admits, and the
    tickets it shows them."""
    hello: list[tuple[str, str]] = []

    async def up() -> None:
        try:
            while True:
                text = await screen.receive_text()
                if not hello:
                    with contextlib.suppress(ValidationError):
                        first = KDS_SCREEN.validate_json(text)
                        if isinstance(first, KdsHello):
                            hello.append((first.token, first.station))
                await broker.send(text)
        except WebSocketDisconnect as exc:  # the screen went: so does its broker socket
            await broker.close(exc.code if 1000 <= exc.code < 5000 else 1000)
        except ConnectionClosed:
            pass  # the broker closed: down() passes its code and reason to the screen

    async def down() -> None:
        try:
            async for frame in broker:
                text = frame if isinstance(frame, str) else frame.decode()
                if hello and text.startswith('{"type":"snapshot"'):
                    await local.admitted(*hello[0])
                local.observe(text)
                await screen.send_text(text)
        except ConnectionClosed:
            pass
        code, reason = broker.close_code or UPLINK_DOWN, broker.close_reason or ""
        if code in (1005, 1006, 1015):  # codes that may not be sent: the link just died
            code = UPLINK_DOWN
        with contextlib.suppress(RuntimeError):
            await screen.close(code, reason or "the store's uplink is down")

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # down() ends once the broker socket is closed, either way round: let it pass the
        # close on to the screen
        await asyncio.wait(tasks[1:], timeout=RELAY_CLOSE_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
