"""Kitchen screens on the store edge while the store has no uplink ("local mode").

While the uplink is up, a screen on the edge is relayed to the broker (``edge.py``), and
the edge watches what goes by: the tickets the broker shows, and which screens (token and
station) the broker admitted. When the uplink is down, a screen the broker admitted before
is served here instead, from those tickets and the tickets of the orders the edge takes on
the LAN: the same ``snapshot``/``ticket``/``ticket_removed``/``all_day`` messages, with
``snapshot.local`` set so the screen says "local mode". Its actions are applied with the
broker's rules (``kitchen.actions``), shown on every local screen of the station, and
forwarded in the outbox (``kds_action``) for the broker to apply when the uplink is back.
Once the link is back and the outbox is empty, local screens are closed with 1012 and
reconnect through the relay. docs/store-edge.md has the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from kitchen.actions import apply_action, check_station
from kitchen.errors import ActionRefused
from kitchen.screens import ACTIVE, all_day
from protocol.config import StationConfig
from protocol.errors import TransitionError
from protocol.messages.common import ErrorCode
from protocol.messages.kds import (
    KDS_SCREEN,
    AllDay,
    Fire,
    KdsAck,
    KdsError,
    KdsHello,
    Serve,
    Snapshot,
    TicketRemoved,
    TicketUpdate,
)
from protocol.messages.store import EdgeKdsAction
from protocol.tickets import Ticket

if TYPE_CHECKING:
    from store_client.daemon import StoreClient

log = logging.getLogger(__name__)

#: How often a local screen checks whether the uplink is back (and the outbox empty).
UPLINK_CHECK_S = 1.0
MAX_REFS = 32
#: Tickets no longer on a screen (ready, voided) kept for a recall: the most recent ones.
KEEP_DONE = 500
#: Screens (token fingerprint, station) the broker admitted, kept in the spool so a store
#: client restarted during an outage still serves them; the most recent ones.
KEEP_ADMITTED = 200
ADMITTED_KEY = "edge_admitted"
POLICY, UPLINK_DOWN, UPLINK_BACK = 1008, 1013, 1012


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LocalKitchen:
    def __init__(self, client: StoreClient) -> None:
        self.client = client
        self.tickets: dict[str, Ticket] = {}
        self._done: OrderedDict[str, None] = OrderedDict()
        self._refs: dict[str, list[str]] = {}
        self._admitted: dict[tuple[str, str], None] = {}  # oldest first
        self._screens: dict[str, set[WebSocket]] = {}
        self.epoch = "edge-" + secrets.token_hex(4)
        self._offset = 0

    # -- learning while relayed ------------------------------------------------------------

    async def restore(self) -> None:
        """After a start: the screens the broker admitted before, and the tickets of the
        orders the edge took last (a restart during an outage keeps the kitchen going)."""
        from store_client.edge_orders import EdgeOrder  # no cycle: edge_orders is plain

        raw = await self.client.spool.meta(ADMITTED_KEY)
        if raw:
            self._admitted = dict.fromkeys((f, s) for f, s in json.loads(raw))
        for state in await self.client.spool.recent_lan_order_states(KEEP_DONE):
            for ticket in EdgeOrder.model_validate_json(state).tickets.values():
                self._keep(ticket)

    async def admitted(self, token: str, station_id: str) -> None:
        """The broker admitted this screen (it answered its hello with a snapshot)."""
        entry = (_fingerprint(token), station_id)
        if entry in self._admitted:
            return
        self._admitted[entry] = None
        while len(self._admitted) > KEEP_ADMITTED:
            del self._admitted[next(iter(self._admitted))]
        await self.client.spool.set_meta(ADMITTED_KEY, json.dumps(list(self._admitted)))

    def observe(self, frame: str) -> None:
        """A frame the broker sent a relayed screen: keep the tickets it shows."""
        try:
            msg = json.loads(frame)
            kind = msg.get("type")
            if kind == "snapshot":
                for raw in msg.get("tickets", ()):
                    self._keep(Ticket.model_validate(raw))
            elif kind == "ticket" or (kind == "ack" and msg.get("ticket")):
                self._keep(Ticket.model_validate(msg["ticket"]))
            elif kind == "ticket_removed":
                self.tickets.pop(str(msg.get("ticket_id")), None)
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
            return  # not ours to judge: the screen gets it as it is

    async def taken(self, tickets: Iterable[Ticket]) -> None:
        """Tickets of an order the edge took, amended or cancelled: local screens show them."""
        for ticket in tickets:
            self._keep(ticket)
            await self._push(ticket)

    def _keep(self, ticket: Ticket) -> None:
        old = self.tickets.get(ticket.ticket_id)
        if old is not None and old.version > ticket.version:
            return
        self.tickets[ticket.ticket_id] = ticket
        if ticket.state in ACTIVE:
            self._done.pop(ticket.ticket_id, None)
            return
        self._done[ticket.ticket_id] = None  # most recent last
        self._done.move_to_end(ticket.ticket_id)
        while len(self._done) > KEEP_DONE:  # memory stays bounded however long it runs
            oldest, _ = self._done.popitem(last=False)
            self.tickets.pop(oldest, None)
            self._refs.pop(oldest, None)

    # -- a screen served here --------------------------------------------------------------

    async def serve(self, screen: WebSocket) -> None:
        hello = await self._hello(screen)
        if hello is None:
            return
        station = hello.station
        screens = self._screens.setdefault(station, set())
        screens.add(screen)
        try:
            await screen.send_text(self._snapshot(station).model_dump_json())
            log.info("kds screen on the LAN: local mode, station %s", station)
            await self._loop(screen, station)
        except WebSocketDisconnect:
            pass
        finally:
            screens.discard(screen)

    async def _hello(self, screen: WebSocket) -> KdsHello | None:
        try:
            msg = KDS_SCREEN.validate_json(await screen.receive_text())
        except ValidationError:
            await screen.close(POLICY, "expected hello first")
            return None
        config = self.client.current_config()
        store_id = self.client.settings.store_id
        if not isinstance(msg, KdsHello) or msg.store != store_id:
            await screen.close(POLICY, "token is not for this store/station")
            return None
        st = config.station(msg.station) if config is not None else None
        if st is None or st.expo:
            await screen.close(UPLINK_DOWN, "the store's uplink is down (expo needs it)")
            return None
        if (_fingerprint(msg.token), msg.station) not in self._admitted:
            reason = "the store's uplink is down and this screen was not seen online yet"
            await screen.close(UPLINK_DOWN, reason)
            return None
        return msg

    def _snapshot(self, station: str) -> Snapshot:
        active = self._active(station)
        return Snapshot(
            epoch=self.epoch,
            offset=self._offset,
            station=self._station_config(station),
            tickets=tuple(sorted(active, key=lambda t: (t.created_at, t.ticket_id))),
            all_day=all_day(active),
            local=True,
            timezone=self._timezone(),
        )

    def _timezone(self) -> str | None:
        """The store's zone as the broker last sent it (the broker fills in its default)."""
        config = self.client.current_config()
        return config.timezone if config is not None else None

    def _station_config(self, station: str) -> StationConfig:
        config = self.client.current_config()
        assert config is not None
        st = config.station(station)
        assert st is not None
        return st

    def _active(self, station: str) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.station_id == station and t.state in ACTIVE]

    async def _loop(self, screen: WebSocket, station: str) -> None:
        while True:
            try:
                async with asyncio.timeout(UPLINK_CHECK_S):
                    text = await screen.receive_text()
            except TimeoutError:
                if self.client.online and await self.client.spool.outbox_size() == 0:
                    await screen.close(UPLINK_BACK, "the store's uplink is back: reconnect")
                    return
                continue
            await screen.send_text(await self._act(text, station))

    async def _act(self, text: str, station: str) -> str:
        try:
            action = KDS_SCREEN.validate_json(text)
        except ValidationError as exc:
            return _error(None, ErrorCode.BAD_REQUEST, f"undecodable: {exc.error_count()} errors")
        if isinstance(action, KdsHello):
            return _error(None, ErrorCode.BAD_REQUEST, "hello was already sent")
        if isinstance(action, Serve):
            return _error(action.ref, ErrorCode.ILLEGAL_TRANSITION, "serving needs the uplink")
        if isinstance(action, Fire):  # the edge holds no scheduled order: the broker does
            return _error(action.ref, ErrorCode.ILLEGAL_TRANSITION, "firing needs the uplink")
        ticket = self.tickets.get(action.ticket_id)
        if ticket is None:
            return _error(action.ref, ErrorCode.NOT_FOUND, f"no ticket {action.ticket_id!r}")
        if action.ref in self._refs.get(ticket.ticket_id, ()):
            return KdsAck(ref=action.ref, ticket=ticket).model_dump_json()
        if action.version != ticket.version:
            return KdsError(
                ref=action.ref,
                code=ErrorCode.VERSION_CONFLICT,
                message="the ticket changed; here is the current one",
                ticket=ticket,
            ).model_dump_json()
        now = self.client.clock.now()
        try:
            check_station(ticket, station, expo=False)
            new = apply_action(ticket, action, now)
        except ActionRefused as exc:
            return KdsError(ref=action.ref, code=exc.code, message=exc.message).model_dump_json()
        except TransitionError as exc:
            return KdsError(
                ref=action.ref, code=ErrorCode.ILLEGAL_TRANSITION, message=str(exc), ticket=ticket
            ).model_dump_json()
        forward = EdgeKdsAction(station_id=station, action=action, taken_at=now)
        await self.client.spool.forward(forward)
        self.client.reports_pending()
        refs = self._refs.setdefault(new.ticket_id, [])
        refs[:] = [*refs, action.ref][-MAX_REFS:]
        self._keep(new)
        await self._push(new)
        return KdsAck(ref=action.ref, ticket=new).model_dump_json()

    async def _push(self, ticket: Ticket) -> None:
        """A ticket's new state to every local screen of its station, then the counts."""
        screens = self._screens.get(ticket.station_id)
        if not screens:
            return
        self._offset += 1
        frame = (
            TicketUpdate(offset=self._offset, ticket=ticket)
            if ticket.state in ACTIVE
            else TicketRemoved(offset=self._offset, ticket_id=ticket.ticket_id)
        ).model_dump_json()
        counts = AllDay(offset=self._offset, counts=all_day(self._active(ticket.station_id)))
        for screen in list(screens):
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await screen.send_text(frame)
                await screen.send_text(counts.model_dump_json())


def _error(ref: str | None, code: ErrorCode, message: str) -> str:
    return KdsError(ref=ref, code=code, message=message).model_dump_json()
