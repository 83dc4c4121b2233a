"""``/v1/ws/store``: one store client's link (DESIGN.md §5.3, §8.2).

hello → the fleet-wide takeover (4503 to the link it replaces) → recovery (replay from the
client's offset, or a paged snapshot) → welcome → live entries from the hub; then the
client's acks, numbered reports and LAN orders (applied in ``seq`` order, acknowledged
with ``reports_ack``) and printer statuses.

The decisions are the sans-I/O cores' in ``session_store.py``: the opening's
(``Opening``: replay or snapshot, the welcome; ``StreamWalk``: what to read next, what to
send, when to stop or refuse) and the link's bookkeeping (``StoreSession``). This module
performs their effects: one loop (``_walk_stream``) reads the stream for both the replay
and the snapshot's scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from broker.auth import Claims
from broker.errors import Conflict, InvalidRequest, NotFound, StorageError
from broker.kds_actions import Station
from broker.peers import StorePeer
from broker.session_store import (
    Opening,
    Refusal,
    Resume,
    SnapshotJob,
    StoreSession,
    StreamWalk,
    check_hello,
    snapshot_pages,
    too_old,
    welcome_frame,
)
from broker.storage import Kind
from broker.storage.leases import RELEASE_WAIT_S, Holder
from broker.ws_base import (
    REPLAY_BATCH,
    STORE_PATH,
    Refused,
    T,
)
from protocol.close_codes import CloseCode
from protocol.codec import encode_msgpack
from protocol.ids import order_id_for
from protocol.jobs import JobState
from protocol.messages.common import ErrorCode
from protocol.messages.kds import KdsError
from protocol.messages.store import (
    STORE_CLIENT,
    Ack,
    EdgeKdsAction,
    Error,
    Hello,
    JobStateReport,
    LanAmend,
    LanCancel,
    LanChange,
    LanOrder,
    PrinterStatusReport,
    SnapshotEnd,
    Welcome,
)

if TYPE_CHECKING:
    from broker.ws import WsServer

log = logging.getLogger(__name__)


class StoreEndpoint:
    """The store-link flow of a ``WsServer``."""

    def __init__(self, ws: WsServer) -> None:
        self.ws = ws
        self.s = ws.s
        self.settings = ws.settings

    async def serve(self, conn: ServerConnection, tasks: asyncio.TaskGroup, claims: Claims) -> None:
        hello = await self.ws.hello(conn, STORE_CLIENT, binary=True)
        if not isinstance(hello, Hello):
            raise Refused(CloseCode.POLICY, "expected hello first")
        refusal = check_hello(hello, claims.store)
        if refusal is not None:
            raise Refused(refusal.code, refusal.reason)
        store_id = hello.store_id
        await self._check_version(hello)
        session = StoreSession(store_id, hello.protocol)
        peer = StorePeer(session, conn, tasks, self.ws.opts, f"{STORE_PATH} store={store_id}")
        peer.claims = claims
        holder = Holder(self.s.storage.node_id, peer.link_id, hello.client_id)
        previous = await self._take_over(store_id, peer, holder)
        client_version = hello.client_version
        self.ws.add_peer(peer)
        try:
            await self._open_store(conn, peer, Opening.after_takeover(hello, previous))
            del hello  # the loop runs as long as the link: it keeps only what it needs
            while True:
                msg = await self.ws.recv(conn, STORE_CLIENT, binary=True)
                await self._store_message(peer, msg)
        finally:
            peer.stop()
            self.ws.peers.discard(peer)
            await self.s.hub.detach(peer)
            if self.ws.links.get(store_id) is peer:
                del self.ws.links[store_id]
                await self.s.fleet.set_link(store_id, False, client_version, peer.link_id)
            with contextlib.suppress(StorageError):
                await self.s.storage.release_link(store_id, holder)

    async def _check_version(self, hello: Hello) -> None:
        """Refuse a client older than its store's ``min_client_version``. (Its own method:
        the config read stays out of the frame that lives as long as the link.)"""
        config = await self.s.orders.config(hello.store_id)
        if config is not None and config.min_client_version is not None:
            refusal = too_old(hello.client_version, config.min_client_version)
            if refusal is not None:
                log.warning("store=%s: %s", hello.store_id, refusal.reason)
                raise Refused(refusal.code, refusal.reason)

    async def _take_over(self, store_id: str, peer: StorePeer, holder: Holder) -> Holder | None:
        """The newest hello takes the store's one link, fleet-wide (DESIGN.md §8.2): the
        link it replaces is closed with 4503 here or on its own node, and this one waits
        (bounded) until that has happened before it sends anything."""
        previous = await self.s.storage.claim_link(store_id, holder)
        old = self.ws.links.get(store_id)
        self.ws.links[store_id] = peer
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

    def taken_over(self, store_id: str, session: str) -> None:
        """Another node took this store's link over: close ours (4503)."""
        peer = self.ws.links.get(store_id)
        if peer is not None and peer.link_id == session:
            log.info("store=%s: a link on another node takes over", store_id)
            peer.close_soon(CloseCode.TAKEN_OVER, "another store client took over")

    async def _open_store(self, conn: ServerConnection, peer: StorePeer, opening: Opening) -> None:
        """Welcome, then the replay or the snapshot (``opening`` decides which); then live
        entries may flow."""
        hello, session = opening.hello, peer.session
        store_id = hello.store_id
        epoch, head = await self.s.hub.attach(peer)
        first = (await self.s.storage.read(store_id, head, 0)).first
        mode = opening.attached(epoch, head, first)
        config = await self.s.orders.config(store_id)
        now = self.s.now()
        welcome = opening.welcome(config, now)
        if mode is Resume.REPLAY:
            await conn.send(welcome_frame(welcome, session.protocol))
            await self._walk_stream(conn, session, opening.replay(self.settings.default_timezone))
        else:
            await self._snapshot_store(conn, session, opening, welcome, now)
        jti = peer.claims.jti if peer.claims else "-"
        recovered = opening.recovered
        log.info("store=%s online recovered=%s offset=%d jti=%s", store_id, recovered, head, jti)
        await self.s.fleet.set_link(
            store_id, True, hello.client_version, peer.link_id, hello.offline_orders
        )
        peer.start()

    async def _snapshot_store(
        self,
        conn: ServerConnection,
        session: StoreSession,
        opening: Opening,
        welcome: Welcome,
        now: datetime,
    ) -> None:
        """``welcome`` then the live jobs in pages, in stream order, then ``snapshot_end``
        (DESIGN.md §8.2): no snapshot, however large, outgrows a frame."""
        store_id = session.store_id
        raw = await self.s.storage.scan(store_id, Kind.JOB, live_only=True)
        scan = opening.scan(len(raw))
        await self._walk_stream(conn, session, scan)
        snapshot = opening.snapshot((r.doc for r in raw), scan)
        await self._spool_lost(store_id, snapshot.lost, now)
        await conn.send(welcome_frame(welcome, session.protocol))
        for frame, ids in snapshot_pages(snapshot.jobs, protocol=session.protocol):
            await conn.send(frame)
            for job_id in ids:
                session.sent_job(welcome.offset, job_id, now)
        count = len(snapshot.jobs)
        await conn.send(encode_msgpack(SnapshotEnd(offset=welcome.offset, count=count)))

    async def _walk_stream(
        self, conn: ServerConnection, session: StoreSession, walk: StreamWalk
    ) -> None:
        """Read the store's stream a page at a time for as long as ``walk`` asks, sending
        each page's frames before the next read."""
        while walk.after is not None:
            got = await self.s.storage.read(session.store_id, walk.after, REPLAY_BATCH)
            step = walk.page_read(got.entries)
            if isinstance(step, Refusal):
                raise Refused(step.code, step.reason)
            for entry, frame in step.sends:
                await conn.send(frame)
                session.sent(entry, self.s.now())

    async def _spool_lost(self, store_id: str, printing: list[SnapshotJob], now: datetime) -> None:
        """A client with an empty spool (new PC, wiped disk) cannot say how jobs it was
        printing ended: they are ``uncertain`` (never reprinted by themselves)."""
        reason = "store client spool was reset while printing"
        for job in printing:
            report = JobStateReport(
                job_id=job.job_id, state=JobState.UNCERTAIN, reason=reason, at=now
            )
            await self.s.fleet.job_state(store_id, report)

    async def _store_message(self, peer: StorePeer, msg: object) -> None:
        store_id = peer.store_id
        if isinstance(msg, Ack):
            done = peer.session.ack(msg.offset)
            if done:
                self.s.fleet.queue_acks(store_id, done)
        elif isinstance(msg, JobStateReport | LanOrder | LanAmend | LanCancel | EdgeKdsAction):
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

    async def _report(self, peer: StorePeer, msg: JobStateReport | LanChange) -> None:
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

    async def _apply_report(self, store_id: str, msg: JobStateReport | LanChange) -> Error | None:
        """The report applied; an ``error`` for the client when it cannot be, ever."""
        if isinstance(msg, LanOrder):
            return await self._lan_order(store_id, msg)
        if isinstance(msg, LanAmend | LanCancel):
            return await self._lan_change(store_id, msg)
        if isinstance(msg, EdgeKdsAction):
            return await self._edge_action(store_id, msg)
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
                # printed at the store already: fired now, never held for its due_at
                created, _ = await self.s.orders.submit(order, hold=False)
            except InvalidRequest as exc:  # the broker's config refuses what the edge printed
                reason = f"order {order.external_id!r} from the LAN refused: {exc.detail}"
            else:
                self.s.metrics.orders.labels("lan" if created else "duplicate").inc()
                return None
        log.warning("store=%s: %s", store_id, reason)
        return Error(code=ErrorCode.BAD_REQUEST, message=reason[:500], ref=order_id)

    async def _lan_change(self, store_id: str, msg: LanAmend | LanCancel) -> Error | None:
        """An amendment or a cancel the LAN edge applied to an order it took: applied here
        as over REST (an amendment once per ``ref``; a cancel is idempotent anyway). Its
        forward of the order came first, in the same sequence."""
        try:
            # only this store's orders: another's is answered as absent (404 over REST)
            await self.s.orders.store_of_order(msg.order_id, lambda owner: owner == store_id)
            if isinstance(msg, LanAmend):
                await self.s.orders.amend(msg.order_id, msg.amendment, msg.ref)
            else:
                await self.s.orders.cancel(msg.order_id, msg.cancel)
            return None
        except (InvalidRequest, NotFound, Conflict) as exc:  # nothing a resend could heal
            reason = f"{msg.type} of {msg.order_id!r} from the LAN refused: {exc.detail}"
        log.warning("store=%s: %s", store_id, reason)
        return Error(code=ErrorCode.BAD_REQUEST, message=reason[:500], ref=msg.order_id)

    async def _edge_action(self, store_id: str, msg: EdgeKdsAction) -> Error | None:
        """A screen's action taken on the store edge without an uplink: applied after
        whatever the cloud did meanwhile, to the ticket as it is now (the version the screen
        saw was the edge's). Its ref keeps it to once; one the ticket no longer allows
        (bumped already, voided) is dropped with an ``error`` (docs/store-edge.md)."""
        config = await self.s.orders.config(store_id)
        st = config.station(msg.station_id) if config is not None else None
        if st is None:
            reason = f"kds action for unknown station {msg.station_id!r}"
        else:
            station = Station(store_id, st.station_id, st.expo)
            reply = await self.s.kitchen.act(station, msg.action)
            if (
                isinstance(reply, KdsError)
                and reply.code is ErrorCode.VERSION_CONFLICT
                and reply.ticket is not None
            ):
                now = msg.action.model_copy(update={"version": reply.ticket.version})
                reply = await self.s.kitchen.act(station, now)
            if not isinstance(reply, KdsError):
                return None
            if reply.code is ErrorCode.INTERNAL:  # storage away: not acknowledged, sent again
                raise StorageError(reply.message)
            reason = f"kds action {msg.action.ref!r} from the edge dropped: {reply.message}"
        log.info("store=%s: %s", store_id, reason)
        return Error(code=ErrorCode.BAD_REQUEST, message=reason[:500], ref=msg.action.ref)

    async def _now_or_later(self, write: Callable[[], Awaitable[T]]) -> T | None:
        """Apply a store client's report now, or once storage is back (redis down): the
        link stays up either way."""
        try:
            return await write()
        except StorageError:
            self.s.fleet.defer(write)
            return None
