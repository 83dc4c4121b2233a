"""The websocket data plane (DESIGN.md §5.3): ``/v1/ws/store``, ``/v1/ws/kds``, ``/v1/ws/hq``,
``/v1/ws/board``.

The server: handshake (admission, the store link's token), the connection's life, the
close codes; each endpoint's flow is its own module: ``ws_store.py`` (store links),
``ws_kds.py`` (kitchen screens), ``ws_hq.py`` (HQ screens), ``ws_board.py`` (pickup
boards), sharing ``ws_base.py``. A thin
pump around the session cores: decode a frame, ask the core or a service, enqueue the
answer. Every refusal maps to a close code: 1007 undecodable, 1008 policy/auth,
1009 too big (websockets enforces ``max_size``), 4001 slow consumer, 4002 no hello in
time, 4003 too many handshakes for a store or token, 4501 token revoked or expired (at a
screen's hello, or later on any open socket: ``end_tokens``), 4502 protocol unsupported,
4503 taken over, 1012 on drain. Before that, the handshake itself may be refused by ``Admission``
(HTTP 503/429: connection caps and handshake rates, docs/security.md).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import weakref
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from broker.admission import Admission, Refusal
from broker.auth import Claims, Scope, TokenCache, bearer, ended_by
from broker.errors import StorageError, TokenExpired, TokenRevoked, Unauthorized
from broker.keepalive import Keepalive
from broker.limits import RateLimiter
from broker.metrics import Metrics
from broker.peers import BoardPeer, HqPeer, KdsPeer, PeerOptions, StorePeer
from broker.ws_base import (
    BOARD_PATH,
    HQ_PATH,
    KDS_PATH,
    STORE_PATH,
    SUBPROTOCOLS,
    Refused,
    Services,
    T,
)
from broker.ws_board import BoardEndpoint
from broker.ws_hq import HqEndpoint
from broker.ws_kds import KdsEndpoint
from broker.ws_store import StoreEndpoint
from protocol.close_codes import CloseCode
from protocol.codec import decode_json, decode_msgpack, truncate_reason
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096
EXPIRY_SLACK = 1024
AnyPeer = StorePeer | KdsPeer | HqPeer | BoardPeer


def _path(conn: ServerConnection) -> str:
    assert conn.request is not None
    return urlsplit(conn.request.path).path


class Link(ServerConnection):
    """A connection that keeps what its handshake learned (client address, claims) on
    itself: it goes with the connection, however the handshake ends. Its places in
    ``Admission`` are taken at the TCP accept and given back when the socket closes."""

    admission: Admission  # set per server by ``_link_class``

    # Slots, not the instance dict: websockets' connection already sets 27 attributes, and
    # on CPython 3.11 an instance dict stays a compact "split" dict (~0.3 KiB, its keys
    # shared by the class) only while it holds fewer than 30; three more made every link's
    # dict a full table of 1.5 KiB (``bench/link_memory.py``).
    __slots__ = ("accepted_at", "address", "claims")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # websockets only appends to, removes from and walks its writers waiting for the
        # buffer to drain: a list does that, empty for 56 bytes where a deque takes 760.
        self.drain_waiters = []  # type: ignore[assignment]
        # websockets wraps its logger per connection (an adapter, its dict and a weak
        # proxy: 0.4 KiB) only to name the connection in its own debug records: log
        # straight to the logger it wraps.
        adapter = self.protocol.logger
        if isinstance(adapter, logging.LoggerAdapter):
            self.protocol.logger = self.logger = adapter.logger
        self.accepted_at = self.loop.time()
        self.address: str | None = None
        self.claims: Claims | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.accepted_at = self.loop.time()
        self.address = self.admission.connected(_peer(transport))
        super().connection_made(transport)
        self.recv_messages.frames.queue = FrameQueue()  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.admission.disconnected(self.address)


class FrameQueue(list[Frame]):
    """The deque behind websockets' queue of received frames (``SimpleQueue``), as a list:
    it holds nothing or one frame nearly always, and an empty list takes 56 bytes where an
    empty deque takes 760. ``SimpleQueue`` uses ``append``, ``popleft``, ``extendleft``,
    ``len`` and truth (websockets 17; ``tests/broker/test_ws_memory.py`` checks it)."""

    __slots__ = ()

    def popleft(self) -> Frame:
        return self.pop(0)

    def extendleft(self, frames: Iterable[Frame]) -> None:
        self[:0] = reversed(list(frames))  # each to the front in turn, as deque does


def _link_class(admission: Admission) -> type[Link]:
    class BoundLink(Link):
        pass

    BoundLink.admission = admission
    return BoundLink


def _peer(transport: asyncio.BaseTransport) -> str:
    peername = transport.get_extra_info("peername")
    return str(peername[0]) if isinstance(peername, tuple) and peername else "?"


def _forget_handshake(conn: ServerConnection) -> None:
    """Drop the handshake's headers once it is done: nothing reads them later, and they were
    a fifth of an idle link's heap (~5 KiB of 26 at 2,000 links, ``bench/link_memory.py``).
    Emptied in place: websockets' request parser keeps the request for the link's life."""
    if conn.request is not None:
        conn.request.headers.clear()
    if conn.response is not None:
        conn.response.headers.clear()
        conn.response.body = b""


def _claims_of(conn: ServerConnection) -> Claims:
    assert isinstance(conn, Link) and conn.claims is not None  # set by process_request
    return conn.claims


def _refuse(conn: ServerConnection, refusal: Refusal, metrics: Metrics) -> Response:
    metrics.refused.labels(refusal.limit).inc()
    response = conn.respond(refusal.status, refusal.reason + "\n")
    response.headers["Retry-After"] = refusal.retry_after
    return response


class WsServer:
    def __init__(self, services: Services, tokens: TokenCache) -> None:
        self.s = services
        self.settings = services.settings
        self._tokens = tokens
        self.links: dict[str, StorePeer] = {}
        self.peers: set[AnyPeer] = set()
        # a heap: (exp, seq, peer), the peer held weakly: a closed one is freed at once
        self._expiries: list[tuple[int, int, weakref.ref[AnyPeer]]] = []
        self._expiry_seq = itertools.count()
        self.admission = Admission(self.settings)
        self._link_msgs = RateLimiter(self.settings.link_msg_rate, self.settings.link_msg_burst)
        self.server: Server | None = None
        self.keepalive = Keepalive(self.settings.ping_interval, self.settings.ping_timeout)
        """Pings every open socket; its ``run`` is one of the broker's tasks."""
        self.opts = PeerOptions(
            self.settings.queue_size,
            self.settings.close_timeout,
            services.metrics,
            services.now,
            self.settings.default_timezone,
        )
        self.store = StoreEndpoint(self)
        self.kds = KdsEndpoint(self)
        self.hq = HqEndpoint(self)
        self.board = BoardEndpoint(self)
        services.storage.listen_takeover(self.store.taken_over)

    async def start(self, host: str, port: int, **kwargs: Any) -> Server:
        st = self.settings
        self.server = await serve(
            self.handler,
            host,
            port,
            process_request=self.process_request,
            select_subprotocol=self.select_subprotocol,
            compression=None,  # ~14 KiB per idle connection instead of ~64 (DESIGN.md §5.3)
            max_size=st.max_frame,
            max_queue=16,
            write_limit=st.write_limit,
            ping_interval=None,  # one keepalive for the node instead: ``self.keepalive``
            close_timeout=st.close_timeout,
            open_timeout=st.hello_timeout,
            create_connection=_link_class(self.admission),
            backlog=LISTEN_BACKLOG,  # a reconnect storm must not overflow the accept queue
            **kwargs,
        )
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def drain(self, within_s: float) -> None:
        """Stop accepting and close every peer with 1012 (reconnect elsewhere)."""
        if self.server is None:
            return
        self.server.close(code=CloseCode.SERVER_RESTART, reason="server restart")
        try:
            async with asyncio.timeout(within_s):
                await self.server.wait_closed()
        except TimeoutError:
            log.warning("drain: websocket peers still open after %.0fs", within_s)

    def add_peer(self, peer: AnyPeer) -> None:
        """An open, authenticated peer: its token is watched from now on (``end_tokens``)."""
        self.peers.add(peer)
        if peer.claims is not None:
            entry = (peer.claims.exp, next(self._expiry_seq), weakref.ref(peer))
            heapq.heappush(self._expiries, entry)
            if len(self._expiries) > 2 * len(self.peers) + EXPIRY_SLACK:
                # closed peers' entries go when the heap is twice what is open: amortised O(1)
                self._expiries = [e for e in self._expiries if e[2]() in self.peers]
                heapq.heapify(self._expiries)

    def end_tokens(self, now: float, revoked_changed: bool = True) -> None:
        """Close every open socket whose token was revoked or has expired since it showed
        it (4501, DESIGN.md §8.5), run by the revocation task every second or so
        (``broker.revocation``). Expiry comes off a heap ordered by ``exp``; the pass over
        every peer runs only when the deny-list gained an entry since the last sweep (at
        50,000 sockets that pass held the loop ~25 ms every second; ``bench/token_sweep.py``)."""
        if revoked_changed:
            for peer in list(self.peers):
                self._end_if_over(peer, now)
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, _, ref = heapq.heappop(heap)
            held = ref()
            if held is not None and held in self.peers:
                self._end_if_over(held, now)

    def _end_if_over(self, peer: AnyPeer, now: float) -> None:
        if peer.claims is None or peer.closing:
            return
        ended = ended_by(peer.claims, self._tokens.revoked, now)
        if ended is not None:
            log.info("closing %s: %s jti=%s", peer.label, ended.detail, peer.claims.jti)
            peer.close_soon(CloseCode.TOKEN_REVOKED, ended.detail)

    # -- handshake -------------------------------------------------------------------------
    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path not in SUBPROTOCOLS:
            return conn.respond(HTTPStatus.NOT_FOUND, "no websocket endpoint here\n")
        assert isinstance(conn, Link)
        peer = _peer(conn.transport)
        forwarded = request.headers.get_all("X-Forwarded-For")
        conn.address = self.admission.identify(peer, conn.address, forwarded)
        refusal = self.admission.admit(conn.address)
        if refusal is not None:
            return _refuse(conn, refusal, self.s.metrics)
        if path != STORE_PATH:
            return None  # browsers authenticate with their first message
        try:
            claims = self._tokens.verify(bearer(request.headers.get("Authorization")))
        except Unauthorized as exc:
            resp = conn.respond(HTTPStatus.UNAUTHORIZED, exc.detail + "\n")
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        if claims.scope is not Scope.STORE:
            return conn.respond(HTTPStatus.FORBIDDEN, "a store token is needed here\n")
        refusal = self.admission.admit_token(claims.store, claims.jti)
        if refusal is not None:
            return _refuse(conn, refusal, self.s.metrics)
        conn.claims = claims  # on the connection: nothing to clean up if the handshake fails
        return None

    def select_subprotocol(
        self, conn: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        wanted = SUBPROTOCOLS.get(_path(conn))
        if wanted is None or wanted in offered:
            return wanted
        from websockets.exceptions import NegotiationError

        raise NegotiationError(f"subprotocol {wanted} is required")

    # -- connections -----------------------------------------------------------------------
    async def handler(self, conn: ServerConnection) -> None:
        path = _path(conn)
        _forget_handshake(conn)
        self.keepalive.add(conn)
        gauge = self.s.metrics.connections.labels(path)
        gauge.inc()
        try:
            async with asyncio.TaskGroup() as tasks:
                if path == STORE_PATH:
                    await self.store.serve(conn, tasks, _claims_of(conn))
                elif path == KDS_PATH:
                    await self.kds.serve(conn, tasks)
                elif path == BOARD_PATH:
                    await self.board.serve(conn, tasks)
                else:
                    await self.hq.serve(conn, tasks)
        except* Refused as group:
            exc = group.exceptions[0]
            assert isinstance(exc, Refused)
            log.info("refused %s from %s: %d %s", path, conn.remote_address, exc.code, exc.reason)
            self.s.metrics.closes.labels(str(int(exc.code))).inc()
            await _close(conn, exc.code, exc.reason, self.settings.close_timeout)
        except* StorageError as group:  # redis down while the link starts: retry later
            log.warning("%s from %s: %s", path, conn.remote_address, group.exceptions[0])
            self.s.metrics.closes.labels(str(int(CloseCode.TRY_AGAIN_LATER))).inc()
            reason = "storage unavailable: try again later"
            await _close(conn, CloseCode.TRY_AGAIN_LATER, reason, self.settings.close_timeout)
        except* ConnectionClosed:
            pass
        finally:
            self._link_msgs.forget(str(conn.id))
            gauge.dec()

    async def recv(self, conn: ServerConnection, adapter: TypeAdapter[T], binary: bool) -> T:
        data = await conn.recv()
        if self._link_msgs.take(str(conn.id)) > 0:
            raise Refused(CloseCode.LINK_RATE, "message rate limit: slow down, then reconnect")
        try:
            if binary:
                return decode_msgpack(data, adapter, self.settings.max_frame)  # type: ignore[arg-type]
            return decode_json(data, adapter, self.settings.max_frame)
        except ProtocolError as exc:
            raise Refused(exc.code, exc.reason) from None

    async def hello(self, conn: ServerConnection, adapter: TypeAdapter[T], binary: bool) -> T:
        """The first message, due a deadline after the TCP accept: the handshake spends
        from it too. Screens (JSON) are unauthenticated until their hello and get the
        shorter ``browser_hello_timeout``; store links showed their token already."""
        st = self.settings
        budget = st.hello_timeout if binary else st.browser_hello_timeout
        start = conn.accepted_at if isinstance(conn, Link) else conn.loop.time()
        try:
            async with asyncio.timeout_at(start + budget):
                return await self.recv(conn, adapter, binary)
        except TimeoutError:
            reason = f"no hello within {budget:g} s of connecting"
            raise Refused(CloseCode.HELLO_TIMEOUT, reason) from None

    # -- screens (KDS, HQ and pickup boards) -------------------------------------------------
    def browser_claims(self, token: str, scope: Scope) -> Claims:
        try:
            claims = self._tokens.verify(token)
        except (TokenRevoked, TokenExpired) as exc:  # terminal: a new token is needed
            raise Refused(CloseCode.TOKEN_REVOKED, exc.detail) from None
        except Unauthorized as exc:
            raise Refused(CloseCode.POLICY, exc.detail) from None
        if claims.scope is not scope:
            raise Refused(CloseCode.POLICY, f"a {scope.value} token is needed here")
        refusal = self.admission.admit_token(claims.store, claims.jti)
        if refusal is not None:
            self.s.metrics.refused.labels(refusal.limit).inc()
            reason = f"{refusal.reason}: retry in {refusal.retry_after} s"
            raise Refused(CloseCode.RATE_LIMITED, reason)
        return claims


async def _close(conn: ServerConnection, code: CloseCode, reason: str, within_s: float) -> None:
    try:
        async with asyncio.timeout(within_s):
            await conn.close(int(code), truncate_reason(reason))
    except TimeoutError:
        conn.transport.abort()


__all__ = ["BOARD_PATH", "HQ_PATH", "KDS_PATH", "STORE_PATH", "Refused", "Services", "WsServer"]
