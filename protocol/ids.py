"""Deterministic ids (DESIGN.md §3): the same order, ticket or job always gets the same id.

The broker and the store edge compute them alike, so an order taken on the store's LAN and
forwarded to the broker later maps onto the jobs already spooled, and nothing prints twice.
"""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def order_id_for(store_id: str, channel: str, external_id: str) -> str:
    """The identity (store, channel, external_id) is the order's idempotency key."""
    return "o-" + _digest(store_id, channel, external_id)


def ticket_id_for(order_id: str, station_id: str) -> str:
    """One ticket per order and station."""
    return "t-" + _digest(order_id, station_id)


def job_id(order_id: str, revision: int, printer_id: str, template: str, reprint: int = 0) -> str:
    """One job per (order revision, printer, template): a repeat can never print twice.

    ``reprint`` numbers explicit reprints, which are new jobs by design.
    """
    return "j-" + _digest(order_id, str(revision), printer_id, str(template), str(reprint))
