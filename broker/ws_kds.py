"""``/v1/ws/kds``: a kitchen screen (DESIGN.md §5.3).

hello (token checked here, not at the handshake) → snapshot of the station's tickets or
a replay from the screen's position → live ticket entries; the screen's actions go to
``Kitchen`` (``kds_actions.py``) and come back as ``ack``/``error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from broker.auth import Scope
from broker.kds_actions import Station
from broker.peers import KdsPeer
from broker.records import TicketRecord
from broker.session_kds import KdsSession
from broker.storage import Entry, Kind
from broker.ws_base import (
    KDS_PATH,
    REPLAY_BATCH,
    Refused,
)
from protocol.close_codes import CloseCode
from protocol.messages.kds import KDS_SCREEN, KdsHello
from protocol.tickets import ExpoOrder

if TYPE_CHECKING:
    from broker.ws import WsServer

log = logging.getLogger(__name__)

#: A screen further behind than this gets a snapshot instead of a replay.
MAX_KDS_REPLAY = 5000


class KdsEndpoint:
    """The KDS-screen flow of a ``WsServer``."""

    def __init__(self, ws: WsServer) -> None:
        self.ws = ws
        self.s = ws.s
        self.settings = ws.settings

    async def serve(self, conn: ServerConnection, tasks: asyncio.TaskGroup) -> None:
        hello = await self.ws.hello(conn, KDS_SCREEN, binary=False)
        if not isinstance(hello, KdsHello):
            raise Refused(CloseCode.POLICY, "expected hello first")
        claims = self.ws.browser_claims(hello.token, Scope.KDS)
        if claims.store != hello.store or claims.station not in (None, hello.station):
            raise Refused(CloseCode.POLICY, "token is not for this store/station")
        config = await self.s.orders.config(hello.store)
        station = config.station(hello.station) if config is not None else None
        if station is None:
            raise Refused(CloseCode.POLICY, f"unknown station {hello.station!r}")
        assert config is not None  # it has the station
        session = KdsSession(hello.store, station, config.timezone)
        label = f"{KDS_PATH} store={hello.store} station={hello.station}"
        peer = KdsPeer(session, conn, tasks, self.ws.opts, label)
        peer.claims = claims
        log.info("%s open jti=%s", label, claims.jti)  # the id a revocation names
        self.ws.add_peer(peer)
        try:
            await self._serve_kds(conn, peer, hello)
        finally:
            peer.stop()
            self.ws.peers.discard(peer)
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
            msg = await self.ws.recv(conn, KDS_SCREEN, binary=False)
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
