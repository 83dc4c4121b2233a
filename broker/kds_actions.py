"""KDS actions: start, bump, bump_line, recall, prioritize, serve, fire (DESIGN.md §3, §5.3).

The rules are ``kitchen.actions``; this module loads, checks versions and refs, writes,
and turns the kitchen's refusals into ``error`` replies (the one place it does).

Every action carries the version the screen saw: a stale one is answered with
``version_conflict`` and the current ticket; repeating an applied action (same ``ref``)
is answered with an ack and changes nothing. The ticket and its expo roll-up are written
in one Tx, with retries when another screen wrote the roll-up first; so are the
speed-of-service marks of an action that ends a timing (``broker/sos.py``). ``fire``
(expo only) sends a scheduled order to the stations now: ``Orders.fire``, as
``POST …/fire`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.clock import Now, system_now
from broker.errors import Conflict, NotFound, StorageError
from broker.orders import Orders, expo_entry, put, retrying, ticket_entry, ticket_put
from broker.records import MAX_REFS, OrderRecord, TicketRecord
from broker.sos import NOTHING, Measured, SpeedOfService
from broker.storage import Kind, NewEntry, Put, Storage, Tx
from kitchen.actions import apply_action, check_fires, check_serves, check_station, serve
from kitchen.errors import ActionRefused, StaleVersion
from kitchen.expo import OPEN_STATES, with_ticket
from kitchen.pickup import stations_pickup_state
from protocol.errors import TransitionError
from protocol.messages.board import PickupState
from protocol.messages.common import ErrorCode
from protocol.messages.kds import Fire, KdsAck, KdsAction, KdsError, Serve
from protocol.tickets import ExpoOrder, ExpoState, Ticket, TicketOrder, TicketState
from protocol.webhooks import EventType

if TYPE_CHECKING:
    from broker.webhooks import Webhooks

log = logging.getLogger(__name__)

KdsReply = KdsAck | KdsError


@dataclass(frozen=True)
class Station:
    store_id: str
    station_id: str
    expo: bool


class Kitchen:
    def __init__(
        self,
        storage: Storage,
        orders: Orders,
        now: Now = system_now,
        webhooks: Webhooks | None = None,
        sos: SpeedOfService | None = None,
    ) -> None:
        self.storage = storage
        self.orders = orders
        self.now = now
        self.webhooks = webhooks
        self.sos = sos

    async def act(self, station: Station, action: KdsAction) -> KdsReply:
        try:
            if isinstance(action, Serve):
                return await retrying(lambda: self._serve(station, action))
            if isinstance(action, Fire):
                return await self._fire(station, action)
            return await retrying(lambda: self._ticket_action(station, action))
        except ActionRefused as exc:
            return KdsError(ref=action.ref, code=exc.code, message=exc.message)
        except StorageError as exc:  # the screen stays connected and may try again
            log.warning("kds action %s not applied: %s", action.ref, exc.detail)
            return KdsError(
                ref=action.ref, code=ErrorCode.INTERNAL, message="storage unavailable: try again"
            )

    async def _ticket_action(self, station: Station, action: KdsAction) -> KdsReply:
        assert not isinstance(action, Serve | Fire)
        raw = await self.storage.get(Kind.TICKET, action.ticket_id, station.store_id)
        if raw is None or raw.store_id != station.store_id:
            raise ActionRefused(ErrorCode.NOT_FOUND, f"no ticket {action.ticket_id!r}")
        rec = TicketRecord.model_validate_json(raw.doc)
        ticket = rec.ticket
        check_station(ticket, station.station_id, station.expo)
        if action.ref in rec.refs:  # sent again: queue its event again (kept once)
            await self._ready_without_expo(ticket)
            return KdsAck(ref=action.ref, ticket=ticket)
        if action.version != ticket.version:
            return _conflict(action.ref, ticket, None)
        now = self.now()
        try:
            new = apply_action(ticket, action, now)
        except TransitionError as exc:
            return KdsError(
                ref=action.ref, code=ErrorCode.ILLEGAL_TRANSITION, message=str(exc), ticket=ticket
            )
        refs = [*rec.refs, action.ref][-MAX_REFS:]
        measured = await self.sos.ticket(rec, new, now) if self.sos else NOTHING
        done = [*rec.measured, *(s.measure for s in measured.samples)]
        puts: list[Put] = [ticket_put(TicketRecord(ticket=new, refs=refs, measured=done))]
        entries: list[NewEntry] = [ticket_entry(new)]
        await self._roll_up(new, puts, entries)
        await self.storage.commit(station.store_id, Tx(puts, entries, measured.tallies))
        self._observe(measured)
        await self._ready_without_expo(new)
        return KdsAck(ref=action.ref, ticket=new)

    def _observe(self, measured: Measured) -> None:
        if self.sos is not None:
            self.sos.observe(measured)

    async def _roll_up(self, ticket: Ticket, puts: list[Put], entries: list[NewEntry]) -> None:
        raw = await self.storage.get(Kind.EXPO, ticket.order_id, ticket.store_id)
        if raw is None:
            return
        new = with_ticket(ExpoOrder.model_validate_json(raw.doc), ticket)
        live_order = new.state in OPEN_STATES
        puts.append(put(Kind.EXPO, ticket.order_id, new, raw.version + 1, live_order))
        config_raw = await self.storage.get(Kind.CONFIG, ticket.store_id)
        expo_id = _expo_station_id(config_raw.doc if config_raw else "")
        if expo_id is not None:
            entries.append(expo_entry(new, expo_id))

    async def _serve(self, station: Station, action: Serve) -> KdsReply:
        check_serves(station.expo)
        raw = await self.storage.get(Kind.EXPO, action.order_id, station.store_id)
        if raw is None or raw.store_id != station.store_id:
            raise ActionRefused(ErrorCode.NOT_FOUND, f"no order {action.order_id!r} on expo")
        expo = ExpoOrder.model_validate_json(raw.doc)
        try:
            new = serve(expo, action.version, self.now())
        except StaleVersion:
            return _conflict(action.ref, None, expo)
        except ActionRefused as exc:
            return KdsError(ref=action.ref, code=exc.code, message=exc.message, order=expo)
        if new is None:
            if expo.state is ExpoState.SERVED:  # served already: its event was queued
                await self._ready(expo.store_id, expo.order_id, expo.order, None)
            return KdsAck(ref=action.ref, order=expo)
        now = self.now()
        measured = await self.sos.serve(expo, station.station_id, now) if self.sos else NOTHING
        tx = Tx(
            [put(Kind.EXPO, action.order_id, new, raw.version + 1, live=False)],
            [expo_entry(new, station.station_id)],
            measured.tallies,
        )
        await self.storage.commit(station.store_id, tx)
        self._observe(measured)
        await self._ready(new.store_id, new.order_id, new.order, None)
        return KdsAck(ref=action.ref, order=new)

    async def _fire(self, station: Station, action: Fire) -> KdsReply:
        """A scheduled order to its stations now; acknowledged with its expo roll-up
        after (also when it had fired already: firing is idempotent)."""
        check_fires(station.expo)
        try:
            await self.orders.fire(action.order_id, lambda owner: owner == station.store_id)
        except NotFound:
            raise ActionRefused(ErrorCode.NOT_FOUND, f"no order {action.order_id!r}") from None
        except Conflict as exc:
            raise ActionRefused(ErrorCode.ILLEGAL_TRANSITION, exc.detail) from None
        raw = await self.storage.get(Kind.EXPO, action.order_id, station.store_id)
        order = ExpoOrder.model_validate_json(raw.doc) if raw is not None else None
        return KdsAck(ref=action.ref, order=order)

    # -- order.ready (docs/webhooks.md) --------------------------------------------------
    async def _ready_without_expo(self, ticket: Ticket) -> None:
        """Where the store has no expo, an order is ready once every station's ticket
        is (voided ones aside); with an expo, once expo bumps it (``_serve``). The rule
        is ``kitchen.pickup``'s, which the pickup board follows too."""
        if ticket.state is not TicketState.READY or not self._wants_ready(ticket.store_id):
            return
        if await self.storage.get(Kind.EXPO, ticket.order_id, ticket.store_id) is not None:
            return
        raw = await self.storage.get(Kind.ORDER, ticket.order_id, ticket.store_id)
        if raw is None:
            return
        ids = list(OrderRecord.model_validate_json(raw.doc).tickets.values())
        records = await self.storage.get_many(Kind.TICKET, ids, ticket.store_id)
        states = [
            TicketRecord.model_validate_json(r.doc).ticket.state for r in records if r is not None
        ]
        if stations_pickup_state(states) is PickupState.READY:  # the board's rule too
            await self._ready(ticket.store_id, ticket.order_id, ticket.order, ids)

    def _wants_ready(self, store_id: str) -> bool:
        return self.webhooks is not None and self.webhooks.wanted(EventType.ORDER_READY, store_id)

    async def _ready(
        self, store_id: str, order_id: str, order: TicketOrder, tickets: list[str] | None
    ) -> None:
        if self.webhooks is None or not self._wants_ready(store_id):
            return
        now = self.now()
        data = {
            "order_id": order_id,
            "external_id": order.external_id,
            "channel": order.channel,
            "service": order.service.value,
            "pickup_code": order.pickup_code,
            "table": order.table,
            "ready_at": now,
            "by": "stations" if tickets is not None else "expo",
        }
        # once per order: a recall and a second bump do not make the order ready again
        await self.webhooks.emit(EventType.ORDER_READY, store_id, order_id, now, data)


def _conflict(ref: str, ticket: Ticket | None, order: ExpoOrder | None) -> KdsError:
    return KdsError(
        ref=ref,
        code=ErrorCode.VERSION_CONFLICT,
        message="the ticket changed; here is the current one",
        ticket=ticket,
        order=order,
    )


def _expo_station_id(config_doc: str) -> str | None:
    import json

    if not config_doc:
        return None
    for st in json.loads(config_doc).get("stations", []):
        if st.get("expo"):
            return str(st["station_id"])
    return None
