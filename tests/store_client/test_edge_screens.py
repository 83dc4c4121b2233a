"""The store edge's local kitchen keeps what it needs and no more (edge_screens.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kitchen.routing import plan_submit
from protocol.config import StoreConfig
from protocol.orders import Order
from protocol.tickets import Ticket, TicketState
from store_client.edge_screens import KEEP_DONE, LocalKitchen
from tests.broker.helpers import order, store_config

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def tickets(n: int) -> list[Ticket]:
    cfg = StoreConfig.model_validate(store_config())
    plan = plan_submit(Order.model_validate(order(external_id=f"E-{n}")), f"o-{n}", cfg, NOW)
    return plan.tickets


def test_done_tickets_are_kept_for_recalls_but_not_forever() -> None:
    local: Any = LocalKitchen.__new__(LocalKitchen)
    LocalKitchen.__init__(local, client=None)  # type: ignore[arg-type]
    live = tickets(0)
    for t in live:
        local._keep(t)
    for n in range(1, KEEP_DONE + 50):
        for t in tickets(n):
            local._keep(t.model_copy(update={"state": TicketState.READY}))
    assert all(t.ticket_id in local.tickets for t in live)  # active ones always stay
    done = [t for t in local.tickets.values() if t.state is TicketState.READY]
    assert len(done) == KEEP_DONE
    older = live[0].model_copy(update={"version": live[0].version - 1, "state": TicketState.READY})
    local._keep(older)  # an older version never replaces a newer one
    assert local.tickets[live[0].ticket_id].state is not TicketState.READY
