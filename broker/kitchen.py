"""KDS actions: start, bump, bump_line, recall, prioritize, serve (DESIGN.md §3, §5.3).

Every action carries the version the screen saw: a stale one is answered with
``version_conflict`` and the current ticket; repeating an applied action (same ``ref``)
is answered with an ack and changes nothing. The ticket and its expo roll-up are written
in one Tx, with retries when another screen wrote the roll-up first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from broker.amend import expo_state
from broker.errors import StorageError
from broker.orders import expo_entry, now_utc, put, retrying, ticket_entry, ticket_put
from broker.records import MAX_REFS, TicketRecord
from broker.storage import Kind, NewEntry, Put, Storage, Tx
from protocol.errors import TransitionError
from protocol.messages.common import ErrorCode
from protocol.messages.kds import (
    Bump,
    BumpLine,
    KdsAck,
    KdsAction,
    KdsError,
    Prioritize,
    Recall,
    Serve,
    Start,
)
from protocol.orders import Priority
from protocol.tickets import (
    ExpoOrder,
    ExpoState,
    LineAction,
    Ticket,
    TicketLine,
    TicketState,
    line_transition,
    ticket_state,
)

log = logging.getLogger(__name__)

KdsReply = KdsAck | KdsError
_LINE_ACTIONS = {Start: LineAction.START, Bump: LineAction.BUMP, Recall: LineAction.RECALL}


@dataclass(frozen=True)
class Station:
    store_id: str
    station_id: str
    expo: bool


class _Refused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def apply_action(ticket: Ticket, action: KdsAction, now: datetime) -> Ticket:
    """The ticket after ``action`` (pure); ``TransitionError`` when nothing may change."""
    lines = [ln.model_copy(update={"change": None}) for ln in ticket.lines]
    priority = ticket.priority
    if isinstance(action, Prioritize):
        priority = Priority.NORMAL if priority is Priority.RUSH else Priority.RUSH
    elif isinstance(action, BumpLine):
        n = next((i for i, ln in enumerate(lines) if ln.line_id == action.line_id), None)
        if n is None:
            raise _Refused(ErrorCode.NOT_FOUND, f"no line {action.line_id!r} on this ticket")
        lines[n] = _move(lines[n], LineAction.BUMP)
    else:
        lines = _move_all(lines, _LINE_ACTIONS[type(action)])
    state = ticket_state(lines)
    bumped_at = now if state is TicketState.READY else None
    return ticket.model_copy(
        update={
            "lines": tuple(lines),
            "priority": priority,
            "state": state,
            "version": ticket.version + 1,
            "bumped_at": bumped_at,
        }
    )


def _move(line: TicketLine, action: LineAction) -> TicketLine:
    return line.model_copy(update={"state": line_transition(line.state, action)})


def _move_all(lines: list[TicketLine], action: LineAction) -> list[TicketLine]:
    """Apply to every line that allows it; refuse when none does."""
    moved = 0
    out = []
    for line in lines:
        try:
            out.append(_move(line, action))
            moved += 1
        except TransitionError:
            out.append(line)
    if action is not LineAction.VOID and moved == 0:
        states = sorted({ln.state.value for ln in lines})
        raise TransitionError("ticket", "/".join(states), action.value, frozenset())
    return out


class Kitchen:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def act(self, station: Station, action: KdsAction) -> KdsReply:
        try:
            if isinstance(action, Serve):
                return await retrying(lambda: self._serve(station, action))
            return await retrying(lambda: self._ticket_action(station, action))
        except _Refused as exc:
            return KdsError(ref=action.ref, code=exc.code, message=exc.message)
        except StorageError as exc:  # the screen stays connected and may try again
            log.warning("kds action %s not applied: %s", action.ref, exc.detail)
            return KdsError(
                ref=action.ref, code=ErrorCode.INTERNAL, message="storage unavailable: try again"
            )

    async def _ticket_action(self, station: Station, action: KdsAction) -> KdsReply:
        assert not isinstance(action, Serve)
        raw = await self.storage.get(Kind.TICKET, action.ticket_id, station.store_id)
        if raw is None or raw.store_id != station.store_id:
            raise _Refused(ErrorCode.NOT_FOUND, f"no ticket {action.ticket_id!r}")
        rec = TicketRecord.model_validate_json(raw.doc)
        ticket = rec.ticket
        if ticket.station_id != station.station_id and not station.expo:
            raise _Refused(ErrorCode.FORBIDDEN, "this ticket belongs to another station")
        if action.ref in rec.refs:
            return KdsAck(ref=action.ref, ticket=ticket)
        if action.version != ticket.version:
            return _conflict(action.ref, ticket, None)
        now = now_utc()
        try:
            new = apply_action(ticket, action, now)
        except TransitionError as exc:
            return KdsError(
                ref=action.ref, code=ErrorCode.ILLEGAL_TRANSITION, message=str(exc), ticket=ticket
            )
        refs = [*rec.refs, action.ref][-MAX_REFS:]
        puts: list[Put] = [ticket_put(TicketRecord(ticket=new, refs=refs))]
        entries: list[NewEntry] = [ticket_entry(new)]
        await self._roll_up(new, now, puts, entries)
        await self.storage.commit(station.store_id, Tx(puts, entries))
        return KdsAck(ref=action.ref, ticket=new)

    async def _roll_up(
        self, ticket: Ticket, now: datetime, puts: list[Put], entries: list[NewEntry]
    ) -> None:
        raw = await self.storage.get(Kind.EXPO, ticket.order_id, ticket.store_id)
        if raw is None:
            return
        old = ExpoOrder.model_validate_json(raw.doc)
        stations = tuple(
            s.model_copy(update={"state": ticket.state}) if s.ticket_id == ticket.ticket_id else s
            for s in old.stations
        )
        state = old.state
        if state in (ExpoState.OPEN, ExpoState.READY):  # served and cancelled stay so
            state = expo_state(s.state for s in stations)
        new = old.model_copy(
            update={"stations": stations, "state": state, "version": old.version + 1}
        )
        live_order = state in (ExpoState.OPEN, ExpoState.READY)
        puts.append(put(Kind.EXPO, ticket.order_id, new, raw.version + 1, live_order))
        config_raw = await self.storage.get(Kind.CONFIG, ticket.store_id)
        expo_id = _expo_station_id(config_raw.doc if config_raw else "")
        if expo_id is not None:
            entries.append(expo_entry(new, expo_id))

    async def _serve(self, station: Station, action: Serve) -> KdsReply:
        if not station.expo:
            raise _Refused(ErrorCode.FORBIDDEN, "only the expo station serves orders")
        raw = await self.storage.get(Kind.EXPO, action.order_id, station.store_id)
        if raw is None or raw.store_id != station.store_id:
            raise _Refused(ErrorCode.NOT_FOUND, f"no order {action.order_id!r} on expo")
        expo = ExpoOrder.model_validate_json(raw.doc)
        if expo.state is ExpoState.SERVED and action.version in (expo.version, expo.version - 1):
            return KdsAck(ref=action.ref, order=expo)
        if action.version != expo.version:
            return _conflict(action.ref, None, expo)
        if expo.state is not ExpoState.READY:
            return KdsError(
                ref=action.ref,
                code=ErrorCode.ILLEGAL_TRANSITION,
                message=f"order is {expo.state.value}, expected ready",
                order=expo,
            )
        new = expo.model_copy(update={"state": ExpoState.SERVED, "version": expo.version + 1})
        tx = Tx(
            [put(Kind.EXPO, action.order_id, new, raw.version + 1, live=False)],
            [expo_entry(new, station.station_id)],
        )
        await self.storage.commit(station.store_id, tx)
        return KdsAck(ref=action.ref, order=new)


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
