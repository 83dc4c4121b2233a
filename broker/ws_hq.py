"""``/v1/ws/hq``: an HQ screen (DESIGN.md §5.3): hello → the fleet (one fragmented
message, page by page) → printer, link and job deltas from the hub."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from broker.auth import Scope
from broker.peers import HqPeer
from broker.ws_base import (
    HQ_PATH,
    Refused,
)
from protocol.close_codes import CloseCode
from protocol.messages.hq import HQ_SCREEN, HqHello

if TYPE_CHECKING:
    from broker.ws import WsServer

log = logging.getLogger(__name__)


class HqEndpoint:
    """The HQ-screen flow of a ``WsServer``."""

    def __init__(self, ws: WsServer) -> None:
        self.ws = ws
        self.s = ws.s
        self.settings = ws.settings

    async def serve(self, conn: ServerConnection, tasks: asyncio.TaskGroup) -> None:
        hello = await self.ws.hello(conn, HQ_SCREEN, binary=False)
        if not isinstance(hello, HqHello):
            raise Refused(CloseCode.POLICY, "expected hello first")
        claims = self.ws.browser_claims(hello.token, Scope.HQ)
        peer = HqPeer(conn, tasks, self.ws.opts, HQ_PATH)
        peer.claims = claims
        log.info("%s open sub=%s jti=%s", HQ_PATH, claims.sub, claims.jti)
        self.s.hub.attach_hq(peer)
        self.ws.add_peer(peer)
        try:
            await conn.send(self.s.fleet.fleet_fragments())  # one message, page by page
            peer.start()
            while True:
                await self.ws.recv(conn, HQ_SCREEN, binary=False)
                raise Refused(CloseCode.POLICY, "hello was already sent")
        finally:
            peer.stop()
            self.ws.peers.discard(peer)
            self.s.hub.detach_hq(peer)
