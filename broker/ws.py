"""The websocket data plane (DESIGN.md §5.3): ``/v1/ws/store``, ``/v1/ws/kds``, ``/v1/ws/hq``.

A thin pump around the session cores: decode a frame, ask the core or a service, enqueue
the answer. Every refusal maps to a close code: 1007 undecodable, 1008 policy/auth,
1009 too big (websockets enforces ``max_size``), 4001 slow consumer, 4002 no hello in
time, 4003 too many handshakes for a store or token, 4501 token revoked or expired (at a
screen's hello, or later on any open socket: ``end_tokens``), 4502 protocol unsupported,
4503 taken over, 1012 on drain. Before that, the handshake itself may be refused by ``Admission``
(HTTP 503/429: connection caps and handshake rates, docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import TypeAdapter
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from broker.admission import Admission, Refusal
from broker.auth import Claims, Scope, TokenCache, bearer, ended_by
from broker.config import Settings
from broker.errors import InvalidRequest, StorageError, TokenExpired, TokenRevoked, Unauthorized
from broker.fleet import FleetState
from broker.hub import Hub
from broker.kds_actions import Kitchen, Station
from broker.limits import RateLimiter
from broker.metrics import Metrics
from broker.orders import Orders
from broker.peers import HqPeer, KdsPeer, PeerOptions, StorePeer
from broker.records import TicketRecord
from broker.session_kds import KdsSession
from broker.session_store import (
    NOT_RESENT,
    Resume,
    SnapshotJob,
    StoreSession,
    check_hello,
    recovery,
    snapshot_jobs,
    snapshot_pages,
    store_frame,
)
from broker.storage import Backend, Entry, EntryKind, Kind, StreamSlice
from broker.storage.leases import RELEASE_WAIT_S, Holder
from protocol.close_codes import CloseCode
from protocol.codec import decode_json, decode_msgpack, encode_msgpack, truncate_reason
from protocol.errors import ProtocolError
from protocol.ids import order_id_for
from protocol.jobs import JobState
from protocol.messages.common import ErrorCode
from protocol.messages.hq import HQ_SCREEN, HqHello
from protocol.messages.kds import KDS_SCREEN, KdsHello
from protocol.messages.store import (
    STORE_CLIENT,
    Ack,
    Error,
    Hello,
    JobStateReport,
    LanOrder,
    PrinterStatusReport,
    SnapshotEnd,
    Welcome,
)
from protocol.tickets import ExpoOrder

log = logging.getLogger(__name__)

STORE_PATH, KDS_PATH, HQ_PATH = "/v1/ws/store", "/v1/ws/kds", "/v1/ws/hq"
MSGPACK, JSON = Subprotocol("passline.v1.msgpack"), Subprotocol("passline.v1.json")
SUBPROTOCOLS = {STORE_PATH: MSGPACK, KDS_PATH: JSON, HQ_PATH: JSON}
REPLAY_BATCH = 500
LISTEN_BACKLOG = 4096
MAX_KDS_REPLAY = 5000
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    storage: Backend
    hub: Hub
    orders: Orders
    fleet: FleetState
    kitchen: Kitchen
    metrics: Metrics


class Refused(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _path(conn: ServerConnection) -> str:
    assert conn.request is not None
    return urlsplit(conn.request.path).path


class Link(ServerConnection):
    """A connection that keeps what its handshake learned (client address, claims) on
    itself: it goes with the connection, however the handshake ends. Its places in
    ``Admission`` are taken at the TCP accept and given back when the socket closes."""

    admission: Admission  # set per server by ``_link_class``

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted_at = self.loop.time()
        self.address: str | None = None
        self.claims: Claims | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.accepted_at = self.loop.time()
        self.address = self.admission.connected(_peer(transport))
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.admission.disconnected(self.address)


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
    a fifth of an idle link's heap (~5 KiB of 26 at 2,000 links, ``bench/link_memory.py``)."""
    if conn.request is not None:
        conn.request = dataclasses.replace(conn.request, headers=_NO_HEADERS)
    if conn.response is not None:
        conn.response = dataclasses.replace(conn.response, headers=_NO_HEADERS, body=b"")


_NO_HEADERS = Headers()  # shared and never written to


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
        self.peers: set[StorePeer | KdsPeer | HqPeer] = set()
        self.admission = Admission(self.settings)
        self._link_msgs = RateLimiter(self.settings.link_msg_rate, self.settings.link_msg_burst)
        services.storage.listen_takeover(self._taken_over)
        self.server: Server | None = None
        self.opts = PeerOptions(
            self.settings.queue_size, self.settings.close_timeout, services.metrics
        )

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
            ping_interval=st.ping_interval,
            ping_timeout=st.ping_timeout,
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

    def end_tokens(self, now: float) -> None:
        """Close every open socket whose token was revoked or has expired since it showed
        it (4501, DESIGN.md §8.5): one pass over this node's peers, run by the
        revocation task every second or so (``broker.revocation``)."""
        for peer in list(self.peers):
            if peer.claims is None or peer.closing:
                continue
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
        gauge = self.s.metrics.connections.labels(path)
        gauge.inc()
        try:
            async with asyncio.TaskGroup() as tasks:
                if path == STORE_PATH:
                    await self._store(conn, tasks, _claims_of(conn))
                elif path == KDS_PATH:
                    await self._kds(conn, tasks)
                else:
                    await self._hq(conn, tasks)
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

    async def _recv(self, conn: ServerConnection, adapter: TypeAdapter[T], binary: bool) -> T:
        data = await conn.recv()
        if self._link_msgs.take(str(conn.id)) > 0:
            raise Refused(CloseCode.LINK_RATE, "message rate limit: slow down, then reconnect")
        try:
            if binary:
                return decode_msgpack(data, adapter, self.settings.max_frame)  # type: ignore[arg-type]
            return decode_json(data, adapter, self.settings.max_frame)
        except ProtocolError as exc:
            raise Refused(exc.code, exc.reason) from None

    async def _hello(self, conn: ServerConnection, adapter: TypeAdapter[T], binary: bool) -> T:
        """The first message, due a deadline after the TCP accept: the handshake spends
        from it too. Screens (JSON) are unauthenticated until their hello and get the
        shorter ``browser_hello_timeout``; store links showed their token already."""
        st = self.settings
        budget = st.hello_timeout if binary else st.browser_hello_timeout
        start = conn.accepted_at if isinstance(conn, Link) else conn.loop.time()
        try:
            async with asyncio.timeout_at(start + budget):
                return await self._recv(conn, adapter, binary)
        except TimeoutError:
            reason = f"no hello within {budget:g} s of connecting"
            raise Refused(CloseCode.HELLO_TIMEOUT, reason) from None

    # -- store link ------------------------------------------------------------------------
    async def _store(
        self, conn: ServerConnection, tasks: asyncio.TaskGroup, claims: Claims
    ) -> None:
        hello = await self._hello(conn, STORE_CLIENT, binary=True)
        if not isinstance(hello, Hello):
            raise Refused(CloseCode.POLICY, "expected hello first")
        refusal = check_hello(hello, claims.store)
        if refusal is not None:
            raise Refused(refusal.code, refusal.reason)
        store_id = hello.store_id
        session = StoreSession(store_id)
        peer = StorePeer(session, conn, tasks, self.opts, f"{STORE_PATH} store={store_id}")
        peer.claims = claims
        holder = Holder(self.s.storage.node_id, peer.link_id, hello.client_id)
        previous = await self._take_over(store_id, peer, holder)
        # Replay only to the client that held the store last: another PC resuming from
        # its own old position would be sent what the first one printed meanwhile.
        foreign = previous is not None and not previous.same_client(hello.client_id)
        client_version = hello.client_version
        self.peers.add(peer)
        try:
            await self._open_store(conn, peer, hello, snapshot=foreign)
            del hello  # the loop runs as long as the link: it keeps only what it needs
            while True:
                msg = await self._recv(conn, STORE_CLIENT, binary=True)
                await self._store_message(peer, msg)
        finally:
            peer.stop()
            self.peers.discard(peer)
            await self.s.hub.detach(peer)
            if self.links.get(store_id) is peer:
                del self.links[store_id]
                await self.s.fleet.set_link(store_id, False, client_version, peer.link_id)
            with contextlib.suppress(StorageError):
                await self.s.storage.release_link(store_id, holder)

    async def _take_over(self, store_id: str, peer: StorePeer, holder: Holder) -> Holder | None:
        """The newest hello takes the store's one link, fleet-wide (DESIGN.md §8.2): the
        link it replaces is closed with 4503 here or on its own node, and this one waits
        (bounded) until that has happened before it sends anything."""
        previous = await self.s.storage.claim_link(store_id, holder)
        old = self.links.get(store_id)
        self.links[store_id] = peer
        if old is not None:
            log.info("store=%s: newer link takes over", store_id)
            old.close_soon(CloseCode.TAKEN_OVER, "another store client took over")
        elif previous is not None and previous.live and previous.node != holder.node:
            log.info("store=%s: newer link takes over from node %s", store_id, previous.node)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RELEASE_WAIT_S
            while not await self.s.storage.link_released(store_id, previous):
                if loop.time() > deadline:
                    log.warning("store=%s: node %s did not let go in time", store_id, previous.node)
                    break
                await asyncio.sleep(0.05)
        return previous

    def _taken_over(self, store_id: str, session: str) -> None:
        """Another node took this store's link over: close ours (4503)."""
        peer = self.links.get(store_id)
        if peer is not None and peer.link_id == session:
            log.info("store=%s: a link on another node takes over", store_id)
            peer.close_soon(CloseCode.TAKEN_OVER, "another store client took over")

    async def _open_store(
        self, conn: ServerConnection, peer: StorePeer, hello: Hello, snapshot: bool
    ) -> None:
        """Welcome, then the replay or the snapshot; then live entries may flow."""
        store_id, session = hello.store_id, peer.session
        epoch, head = await self.s.hub.attach(peer)
        first = (await self.s.storage.read(store_id, head, 0)).first
        mode = recovery(hello, StreamSlice(epoch, min(first, head + 1), head, []))
        if snapshot:
            mode = Resume.SNAPSHOT
        config = await self.s.orders.config(store_id)
        now = datetime.now(UTC)
        if mode is Resume.REPLAY:
            assert hello.resume is not None
            welcome = Welcome(epoch=epoch, offset=head, recovered=True, config=config, now=now)
            await conn.send(encode_msgpack(welcome))
            await self._replay_store(conn, session, hello.resume.offset, head)
        else:
            welcome = Welcome(
                epoch=epoch, offset=head, recovered=False, config=config, paged=True, now=now
            )
            await self._snapshot_store(conn, session, hello, welcome)
        jti = peer.claims.jti if peer.claims else "-"
        recovered = mode is Resume.REPLAY
        log.info("store=%s online recovered=%s offset=%d jti=%s", store_id, recovered, head, jti)
        await self.s.fleet.set_link(
            store_id, True, hello.client_version, peer.link_id, hello.offline_orders
        )
        peer.start()

    async def _snapshot_store(
        self, conn: ServerConnection, session: StoreSession, hello: Hello, welcome: Welcome
    ) -> None:
        """``welcome`` then the live jobs in pages, then ``snapshot_end`` (DESIGN.md §8.2):
        no snapshot, however large, outgrows a frame."""
        store_id, now = session.store_id, welcome.now or datetime.now(UTC)
        raw = await self.s.storage.scan(store_id, Kind.JOB, live_only=True)
        offsets = await self._job_offsets(store_id, welcome.offset, len(raw))
        jobs = snapshot_jobs((r.doc for r in raw), offsets)
        if hello.resume is None:
            await self._spool_lost(store_id, [j for j in jobs if j.state in NOT_RESENT], now)
        jobs = [j for j in jobs if j.state not in NOT_RESENT]
        await conn.send(encode_msgpack(welcome))
        for frame, ids in snapshot_pages(jobs):
            await conn.send(frame)
            for job_id in ids:
                session.sent_job(welcome.offset, job_id, now)
        await conn.send(encode_msgpack(SnapshotEnd(offset=welcome.offset, count=len(jobs))))

    async def _job_offsets(self, store_id: str, head: int, wanted: int) -> dict[str, int]:
        """Where the stream still holds each job: a snapshot goes out in stream order.
        Jobs older than the retained stream come first (DESIGN.md §4)."""
        first = (await self.s.storage.read(store_id, head, 0)).first
        offsets: dict[str, int] = {}
        after = max(first - 1, 0)
        while wanted:  # past the head too: jobs committed since were in the scan as well
            got = await self.s.storage.read(store_id, after, REPLAY_BATCH)
            if not got.entries:
                break
            for entry in got.entries:
                if entry.kind is EntryKind.JOB:
                    offsets[entry.tag] = entry.offset
            after = got.entries[-1].offset
        return offsets

    async def _spool_lost(self, store_id: str, printing: list[SnapshotJob], now: datetime) -> None:
        """A client with an empty spool (new PC, wiped disk) cannot say how jobs it was
        printing ended: they are ``uncertain`` (never reprinted by themselves)."""
        reason = "store client spool was reset while printing"
        for job in printing:
            report = JobStateReport(
                job_id=job.job_id, state=JobState.UNCERTAIN, reason=reason, at=now
            )
            await self.s.fleet.job_state(store_id, report)

    async def _replay_store(
        self, conn: ServerConnection, session: StoreSession, after: int, head: int
    ) -> None:
        while after < head:
            got = await self.s.storage.read(session.store_id, after, REPLAY_BATCH)
            if not got.entries or got.entries[0].offset != after + 1:
                raise Refused(CloseCode.TRY_AGAIN_LATER, "history moved: reconnect")
            for entry in got.entries:
                if entry.offset > head:
                    return
                frame = store_frame(entry)
                if frame is not None:
                    await conn.send(frame)
                    session.sent(entry, datetime.now(UTC))
                after = entry.offset

    async def _store_message(self, peer: StorePeer, msg: object) -> None:
        store_id = peer.store_id
        if isinstance(msg, Ack):
            done = peer.session.ack(msg.offset)
            if done:
                self.s.fleet.queue_acks(store_id, done)
        elif isinstance(msg, JobStateReport | LanOrder):
            await self._report(peer, msg)
        elif isinstance(msg, PrinterStatusReport):
            fleet = self.s.fleet
            await self._now_or_later(
                lambda: fleet.printer_status(store_id, msg.printer_id, msg.status)
            )
        elif isinstance(msg, Error):
            log.warning("store=%s reports error %s: %r", store_id, msg.code, msg.message)
        else:
            raise Refused(CloseCode.POLICY, "hello was already sent")

    async def _report(self, peer: StorePeer, msg: JobStateReport | LanOrder) -> None:
        """Apply a report from the client's outbox (a job's state, an order its LAN edge
        took) in ``seq`` order and acknowledge it (DESIGN.md §8.2). One storage cannot take
        now is not acknowledged: the client sends it again."""
        store_id, session = peer.store_id, peer.session
        if msg.seq is None:  # a client that does not number its reports
            error = await self._now_or_later(lambda: self._apply_report(store_id, msg))
        else:
            order = session.report_order(msg.seq)
            if order is None:
                return
            if order is False:
                peer.ack_reports()
                return
            try:
                error = await self._apply_report(store_id, msg)
            except StorageError as exc:
                log.warning("store=%s: report %d not recorded: %s", store_id, msg.seq, exc)
                return
            session.reports_applied = msg.seq
            peer.ack_reports()
        if error is not None:
            peer.offer(encode_msgpack(error))

    async def _apply_report(self, store_id: str, msg: JobStateReport | LanOrder) -> Error | None:
        """The report applied; an ``error`` for the client when it cannot be, ever."""
        if isinstance(msg, LanOrder):
            return await self._lan_order(store_id, msg)
        error = await self.s.fleet.job_state(store_id, msg)
        if error is None:
            return None
        code = ErrorCode.NOT_FOUND if error.startswith("no job") else ErrorCode.ILLEGAL_TRANSITION
        return Error(code=code, message=error[:500], ref=msg.job_id[:64])

    async def _lan_order(self, store_id: str, msg: LanOrder) -> Error | None:
        """An order the store's LAN edge took, printed and now forwards: submitted as if it
        came over REST. Its ids are the ones the edge computed, so the jobs this makes are
        the ones the store already spooled (and dedupes); a repeat is a duplicate."""
        order = msg.order
        order_id = order_id_for(order.store_id, order.channel, order.external_id)
        if order.store_id != store_id:
            reason = f"order for store {order.store_id!r} forwarded by store {store_id!r}"
        else:
            try:
                created, _ = await self.s.orders.submit(order)
            except InvalidRequest as exc:  # the broker's config refuses what the edge printed
                reason = f"order {order.external_id!r} from the LAN refused: {exc.detail}"
            else:
                self.s.metrics.orders.labels("lan" if created else "duplicate").inc()
                return None
        log.warning("store=%s: %s", store_id, reason)
        return Error(code=ErrorCode.BAD_REQUEST, message=reason[:500], ref=order_id)

    async def _now_or_later(self, write: Callable[[], Awaitable[T]]) -> T | None:
        """Apply a store client's report now, or once storage is back (redis down): the
        link stays up either way."""
        try:
            return await write()
        except StorageError:
            self.s.fleet.defer(write)
            return None

    # -- KDS -------------------------------------------------------------------------------
    def _browser_claims(self, token: str, scope: Scope) -> Claims:
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

    async def _kds(self, conn: ServerConnection, tasks: asyncio.TaskGroup) -> None:
        hello = await self._hello(conn, KDS_SCREEN, binary=False)
        if not isinstance(hello, KdsHello):
            raise Refused(CloseCode.POLICY, "expected hello first")
        claims = self._browser_claims(hello.token, Scope.KDS)
        if claims.store != hello.store or claims.station not in (None, hello.station):
            raise Refused(CloseCode.POLICY, "token is not for this store/station")
        config = await self.s.orders.config(hello.store)
        station = config.station(hello.station) if config is not None else None
        if station is None:
            raise Refused(CloseCode.POLICY, f"unknown station {hello.station!r}")
        session = KdsSession(hello.store, station)
        label = f"{KDS_PATH} store={hello.store} station={hello.station}"
        peer = KdsPeer(session, conn, tasks, self.opts, label)
        peer.claims = claims
        log.info("%s open jti=%s", label, claims.jti)  # the id a revocation names
        self.peers.add(peer)
        try:
            await self._serve_kds(conn, peer, hello)
        finally:
            peer.stop()
            self.peers.discard(peer)
            await self.s.hub.detach(peer)

    async def _serve_kds(self, conn: ServerConnection, peer: KdsPeer, hello: KdsHello) -> None:
        session, store = peer.session, hello.store
        epoch, head = await self.s.hub.attach(peer)
        records = await self.s.storage.scan(store, Kind.TICKET, live_only=True)
        tickets = [TicketRecord.model_validate_json(r.doc).ticket for r in records]
        session.load(t for t in tickets if t.station_id == session.station.station_id)
        replay = await self._kds_replay(hello, epoch, head)
        if replay is not None:
            for frame in session.replay(replay, head):
                await conn.send(frame)
        else:
            orders: list[ExpoOrder] = []
            if session.expo:
                raw = await self.s.storage.scan(store, Kind.EXPO, live_only=True)
                orders = [ExpoOrder.model_validate_json(r.doc) for r in raw]
            await conn.send(session.snapshot(epoch, head, orders).model_dump_json())
        peer.start()
        station = Station(store, session.station.station_id, session.expo)
        while True:
            msg = await self._recv(conn, KDS_SCREEN, binary=False)
            if isinstance(msg, KdsHello):
                raise Refused(CloseCode.POLICY, "hello was already sent")
            reply = await self.s.kitchen.act(station, msg)
            peer.offer(reply.model_dump_json())

    async def _kds_replay(self, hello: KdsHello, epoch: str, head: int) -> list[Entry] | None:
        pos = hello.resume
        if (
            pos is None
            or pos.epoch != epoch
            or pos.offset > head
            or head - pos.offset > MAX_KDS_REPLAY
        ):
            return None
        entries: list[Entry] = []
        after = pos.offset
        while after < head:
            got = await self.s.storage.read(hello.store, after, REPLAY_BATCH)
            if not got.entries or got.entries[0].offset != after + 1:
                return None  # trimmed: a snapshot instead
            entries.extend(e for e in got.entries if e.offset <= head)
            after = got.entries[-1].offset
        return entries

    # -- HQ --------------------------------------------------------------------------------
    async def _hq(self, conn: ServerConnection, tasks: asyncio.TaskGroup) -> None:
        hello = await self._hello(conn, HQ_SCREEN, binary=False)
        if not isinstance(hello, HqHello):
            raise Refused(CloseCode.POLICY, "expected hello first")
        claims = self._browser_claims(hello.token, Scope.HQ)
        peer = HqPeer(conn, tasks, self.opts, HQ_PATH)
        peer.claims = claims
        log.info("%s open sub=%s jti=%s", HQ_PATH, claims.sub, claims.jti)
        self.s.hub.attach_hq(peer)
        self.peers.add(peer)
        try:
            await conn.send(self.s.fleet.fleet_fragments())  # one message, page by page
            peer.start()
            while True:
                await self._recv(conn, HQ_SCREEN, binary=False)
                raise Refused(CloseCode.POLICY, "hello was already sent")
        finally:
            peer.stop()
            self.peers.discard(peer)
            self.s.hub.detach_hq(peer)


async def _close(conn: ServerConnection, code: CloseCode, reason: str, within_s: float) -> None:
    try:
        async with asyncio.timeout(within_s):
            await conn.close(int(code), truncate_reason(reason))
    except TimeoutError:
        conn.transport.abort()


__all__ = ["HQ_PATH", "KDS_PATH", "STORE_PATH", "Services", "WsServer"]
