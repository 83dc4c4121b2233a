"""One broker process: storage, hub, REST (uvicorn) and websockets in one event loop.

``start_broker(settings)`` is an async context manager: on entry everything listens; on
exit it drains (DESIGN.md §5.5): stop accepting, close websocket peers with 1012, let
in-flight REST requests finish, flush storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn

from broker.auth import TokenCache, check_secret
from broker.clock import Now, system_now
from broker.config import Settings
from broker.fastpath import FastSubmit
from broker.fleet import FleetState
from broker.http_limits import BodyGuard, BodyLimits, header_deadline_protocol
from broker.hub import Hub
from broker.kds_actions import Kitchen
from broker.limits import RateLimiter
from broker.metrics import Metrics
from broker.orders import Orders
from broker.pages import PageConfig
from broker.rest import Api, build_app
from broker.revocation import Revocations
from broker.scheduler import Scheduler
from broker.sos import SpeedOfService
from broker.stalls import StallWatch
from broker.storage import Backend, open_storage, safe_url
from broker.webhooks import Webhooks
from broker.ws import Services, WsServer

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 15.0


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the broker owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Broker:
    settings: Settings
    storage: Backend
    services: Services
    ws: WsServer
    http_server: _EmbeddedUvicorn
    http_socket: socket.socket

    @property
    def http_port(self) -> int:
        return int(self.http_socket.getsockname()[1])

    @property
    def ws_port(self) -> int:
        return self.ws.port


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    return ctx


def _services(
    settings: Settings, storage: Backend, tasks: asyncio.TaskGroup, now: Now = system_now
) -> Services:
    orders = Orders(storage, now, settings.default_timezone)
    hub = Hub(storage, tasks, configs=orders.configs)
    metrics = Metrics()
    webhooks = Webhooks(storage.outbox, storage.node_id, settings, metrics, now)
    stats = getattr(storage, "stats", None)
    if isinstance(stats, dict):
        metrics.watch_storage(stats)
    sos = SpeedOfService(storage, orders, metrics)
    return Services(
        settings=settings,
        storage=storage,
        hub=hub,
        orders=orders,
        fleet=FleetState(storage, hub.publish_hq, tasks, now, webhooks),
        kitchen=Kitchen(storage, orders, now, webhooks, sos),
        metrics=metrics,
        webhooks=webhooks,
        scheduler=Scheduler(storage, orders, now, shared=storage.shared),
        now=now,
        sos=sos,
    )


def _http(settings: Settings, api: Api) -> tuple[_EmbeddedUvicorn, socket.socket]:
    from kds_web import STATIC_DIR

    host, port = settings.http_addr()
    sock = socket.create_server((host, port), reuse_port=False)
    sock.setblocking(False)
    cap = settings.http_max_connections
    config = uvicorn.Config(
        FastSubmit(build_app(api, STATIC_DIR), api),
        http=header_deadline_protocol(settings.http_header_timeout),
        timeout_keep_alive=settings.http_keepalive_timeout,
        limit_concurrency=cap + 1 if cap else None,  # uvicorn counts the asking one too
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.drain_timeout),
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    return _EmbeddedUvicorn(config), sock


@contextlib.asynccontextmanager
async def start_broker(settings: Settings, now: Now = system_now) -> AsyncIterator[Broker]:
    """The broker, running until the context ends. ``now`` is its wall clock (tests)."""
    secret = check_secret(settings.secret)
    settings.http_addr(), settings.ws_addr()  # bad addresses fail here, one clear line
    settings.check_timezone()
    storage = await open_storage(settings.store, settings.stream_max_len)
    try:
        async with asyncio.TaskGroup() as tasks:
            services = _services(settings, storage, tasks, now)
            await services.fleet.reset_links()
            await services.webhooks.start()
            reaper = tasks.create_task(services.fleet.reap_dead_nodes())
            dispatcher = tasks.create_task(services.webhooks.run())
            scheduler = tasks.create_task(services.scheduler.run())
            revocations = Revocations(storage.denylist)
            await revocations.refresh()  # a revoked token is refused from the first request
            tokens = TokenCache(secret, party=settings.token_party(), revoked=revocations.revoked)
            ws = WsServer(services, tokens)
            host, port = settings.ws_addr()
            await ws.start(host, port, ssl=_ssl_context(settings))
            sweeper = tasks.create_task(revocations.run(ws.end_tokens))
            keepalive = tasks.create_task(ws.keepalive.run())
            limiter = RateLimiter(settings.ingest_rate, settings.ingest_burst)
            m = services.metrics
            api = Api(storage, services.orders, services.fleet, m, tokens, limiter, revocations)
            api.webhooks = services.webhooks
            api.sos = services.sos
            server, sock = _http(settings, api)
            server.config.app = PageConfig(  # /kds/config.json &c. need the bound ws port
                server.config.app,
                public_ws=settings.public_ws,
                ws_port=ws.port,
                ws_tls=bool(settings.tls_cert),
            )
            # outermost, before any routing: body limits and the token before the body
            server.config.app = BodyGuard(server.config.app, api, BodyLimits.of(settings))
            serving = tasks.create_task(server.serve(sockets=[sock]))
            broker = Broker(settings, storage, services, ws, server, sock)
            stalls = None
            if settings.stall_log_ms > 0:
                stalls = StallWatch(asyncio.get_running_loop(), settings.stall_log_ms / 1000)
                stalls.start()
            try:
                await _until_started(server, serving)
                log.info(
                    "broker ready http=%d ws=%d store=%s",
                    broker.http_port,
                    broker.ws_port,
                    safe_url(settings.store),
                )
                yield broker
            finally:
                if stalls is not None:
                    stalls.stop()
                reaper.cancel()
                scheduler.cancel()
                sweeper.cancel()
                keepalive.cancel()
                dispatcher.cancel()
                await _drain(broker, serving)
    finally:
        await storage.aclose()


async def _until_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    for _ in range(int(STARTUP_TIMEOUT_S * 100)):
        if server.started:
            return
        if serving.done():
            raise RuntimeError("the HTTP server failed to start")
        await asyncio.sleep(0.01)
    raise TimeoutError("the HTTP server did not start in time")


async def _drain(broker: Broker, serving: asyncio.Task[None]) -> None:
    """Stop accepting, close peers with 1012, finish in-flight requests; storage next."""
    timeout = broker.settings.drain_timeout
    log.info("draining")
    await broker.ws.drain(timeout)
    broker.http_server.should_exit = True
    try:
        async with asyncio.timeout(timeout + 5):
            await serving
    except TimeoutError:
        serving.cancel()
    log.info("drained")
