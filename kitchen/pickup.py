"""The pickup board's rules (docs/kds.md#pickup-board): when an order is preparing or
ready for the guest, and the number the guest looks for.

One readiness rule for the board and for the ``order.ready`` webhook (docs/webhooks.md):
with an expo station, an order is ready once expo serves (bumps) it; without one, once
every station's ticket is ready, voided ones aside — the expo roll-up's ``ready``
(``kitchen.expo.expo_state``). Until then a fired order is preparing (a scheduled order
still held is not on the board); a cancelled one is not on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from kitchen.expo import OPEN_STATES, expo_state
from protocol.messages.board import PickupState
from protocol.tickets import ExpoState, TicketOrder, TicketState

#: Characters of the channel's order id a number shows when there is no pickup code.
NUMBER_TAIL = 6


def pickup_state(rolled: ExpoState, expo: bool) -> PickupState | None:
    """The guest's view of an order whose roll-up is ``rolled``, in a store with
    (``expo``) or without an expo station; None: not on the board."""
    if rolled is ExpoState.SERVED or (rolled is ExpoState.READY and not expo):
        return PickupState.READY
    if rolled in OPEN_STATES:
        return PickupState.PREPARING
    return None


def stations_pickup_state(station_states: Iterable[TicketState]) -> PickupState | None:
    """``pickup_state`` of an order in a store without an expo station, from its
    tickets' states (every ticket of the order: a missing one could be the one not
    ready)."""
    return pickup_state(expo_state(station_states), expo=False)


def pickup_number(order: TicketOrder, order_id: str) -> str:
    """What the board shows, as the kitchen screens do (without their ``#``): the pickup
    code, else ``T`` + table, else the tail of the channel's order id, else of ours."""
    if order.pickup_code:
        return order.pickup_code
    if order.table:
        return f"T{order.table}"
    return (order.external_id or order_id)[-NUMBER_TAIL:]
