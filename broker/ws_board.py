"""``/v1/ws/board``: a customer pickup board (docs/kds.md#pickup-board).

hello (a ``board`` token for that store, checked here) → a snapshot: the orders preparing
now (the live expo roll-ups, or every ticket of each order with an active one) and those
that turned ready or left in the recent stream (from the board's ``resume`` position if it
is in this epoch and at most ``BOARD_LOOKBACK`` entries back, else the last
``BOARD_LOOKBACK`` entries) → ``board_order``/``board_removed`` from the hub's entries
(``session_board.py``). The board sends nothing after its hello.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from broker.auth import Scope
from broker.peers import BoardPeer
from broker.records import OrderRecord, TicketRecord
from broker.session_board import BoardSession
from broker.storage import Entry, Kind
from broker.ws_base import BOARD_PATH, REPLAY_BATCH, Refused
from protocol.close_codes import CloseCode
from protocol.messages.board import BOARD_SCREEN, BoardHello
from protocol.tickets import ExpoOrder, Ticket

if TYPE_CHECKING:
    from broker.ws import WsServer

log = logging.getLogger(__name__)

#: Stream entries a board's snapshot looks back over for orders that turned ready (or were
#: cancelled): ~10 minutes of a busy store's lunch. Older ready orders are not shown again
#: to a board that starts afresh; one that resumes keeps its own.
BOARD_LOOKBACK = 3000


class BoardEndpoint:
    """The pickup-board flow of a ``WsServer``."""

    def __init__(self, ws: WsServer) -> None:
        self.ws = ws
        self.s = ws.s

    async def serve(self, conn: ServerConnection, tasks: asyncio.TaskGroup) -> None:
        hello = await self.ws.hello(conn, BOARD_SCREEN, binary=False)
        claims = self.ws.browser_claims(hello.token, Scope.BOARD)
        if claims.store != hello.store:
            raise Refused(CloseCode.POLICY, "token is not for this store")
        config = await self.s.orders.config(hello.store)
        if config is None:
            raise Refused(CloseCode.POLICY, f"unknown store {hello.store!r}")
        session = BoardSession.for_config(hello.store, config)
        label = f"{BOARD_PATH} store={hello.store}"
        peer = BoardPeer(session, conn, tasks, self.ws.opts, label)
        peer.claims = claims
        log.info("%s open jti=%s", label, claims.jti)
        self.ws.add_peer(peer)
        try:
            epoch, head = await self.s.hub.attach(peer)
            window = await self._window(hello, peer, epoch, head)
            live = await self._live(session)
            snapshot = session.start(window, live, epoch, head, self.s.now())
            await conn.send(snapshot.model_dump_json())
            peer.begin()
            while True:
                await self.ws.recv(conn, BOARD_SCREEN, binary=False)
                raise Refused(CloseCode.POLICY, "a board sends nothing after its hello")
        finally:
            peer.stop()
            self.ws.peers.discard(peer)
            await self.s.hub.detach(peer)

    async def _window(
        self, hello: BoardHello, peer: BoardPeer, epoch: str, head: int
    ) -> list[Entry]:
        """The stream entries the snapshot looks back over (only the kinds it reads)."""
        after = max(0, head - BOARD_LOOKBACK)
        pos = hello.resume
        if pos is not None and pos.epoch == epoch and after <= pos.offset <= head:
            after = pos.offset
        out: list[Entry] = []
        while after < head:
            got = await self.s.storage.read(hello.store, after, REPLAY_BATCH)
            if got.epoch != epoch or not got.entries:
                break
            out.extend(e for e in got.entries if e.offset <= head and e.kind in peer.kinds)
            after = got.entries[-1].offset
        return out

    async def _live(self, session: BoardSession) -> list[ExpoOrder] | list[Ticket]:
        """What is on the stations now: the live expo roll-ups, or (no expo) every ticket
        of each order that has an active one (an order's state needs all of them)."""
        store = session.store_id
        if session.expo:
            rolls = await self.s.storage.scan(store, Kind.EXPO, live_only=True)
            return [ExpoOrder.model_validate_json(r.doc) for r in rolls]
        raw = await self.s.storage.scan(store, Kind.TICKET, live_only=True)
        active = [TicketRecord.model_validate_json(r.doc).ticket for r in raw]
        order_ids = sorted({t.order_id for t in active})
        have = {t.ticket_id for t in active}
        records = await self.s.storage.get_many(Kind.ORDER, order_ids, store)
        missing = [
            ticket_id
            for r in records
            if r is not None
            for ticket_id in OrderRecord.model_validate_json(r.doc).tickets.values()
            if ticket_id not in have
        ]
        more = await self.s.storage.get_many(Kind.TICKET, missing, store)
        return active + [TicketRecord.model_validate_json(r.doc).ticket for r in more if r]
