"""Scheduled orders: when an order with ``due_at`` goes to its stations (docs/kds.md).

An order fires at ``due_at`` minus the longest prep time among its lines, so its slowest
dish can be ready on time. One fire time per order, not one per station: the expo lists
one time per order, "fire now" fires one thing, and the order's tickets and chits still
land together in one commit, exactly as an order without ``due_at`` does at submit.

A line's prep time is ``prep_s_by_sku[sku]``, else ``prep_s_by_category[category]``, else
its station's ``prep_s``. A line with none of them makes the order fire at submit: a
store that configured no prep times behaves exactly as before they existed.

Held tickets and jobs are planned at submit (so a bad order is refused then, with its
422) and stamped again when they fire: their ``created_at`` is the fire time (station
timers count from when the ticket reached the station) and a job's ``expires_at`` keeps
its ``job_ttl_s`` from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from kitchen.errors import Refused
from protocol.config import StoreConfig
from protocol.jobs import Job
from protocol.orders import Item, Order
from protocol.tickets import Ticket

#: The furthest ahead an order may be held. The redis backend forgets records
#: ``record_ttl_s`` (7 days by default) after their last write; a channel sends orders
#: for later days closer to the day.
MAX_HOLD = timedelta(days=3)


class TooFarAhead(Refused):
    """A scheduled order whose fire time is further ahead than ``MAX_HOLD``."""


def line_prep_s(item: Item, station_id: str, config: StoreConfig) -> int | None:
    """The line's prep time in seconds, or None when the config names none."""
    prep = config.prep_s_by_sku.get(item.sku)
    if prep is None:
        prep = config.prep_s_by_category.get(item.category)
    if prep is None:
        station = config.station(station_id)
        prep = station.prep_s if station is not None else None
    return prep


def fire_time(
    order: Order, line_station: Mapping[str, str], config: StoreConfig
) -> datetime | None:
    """``due_at`` minus the longest line's prep time; None (fire at once) without
    ``due_at`` or when a line has no prep time."""
    if order.due_at is None:
        return None
    longest = 0
    for item in order.items:
        prep = line_prep_s(item, line_station[item.line_id], config)
        if prep is None:
            return None
        longest = max(longest, prep)
    return order.due_at - timedelta(seconds=longest)


def held_until(
    order: Order, line_station: Mapping[str, str], config: StoreConfig, now: datetime
) -> datetime | None:
    """The time the order must be held until, or None when it fires now (no fire time,
    or one that has passed). ``TooFarAhead`` past ``MAX_HOLD``."""
    at = fire_time(order, line_station, config)
    if at is None or at <= now:
        return None
    if at - now > MAX_HOLD:
        days = MAX_HOLD.days
        msg = f"due_at: the order would fire more than {days} days from now; send it later"
        raise TooFarAhead(msg, [{"loc": ["due_at"], "msg": msg}])
    return at


def restamped(
    tickets: Sequence[Ticket], jobs: Sequence[Job], now: datetime
) -> tuple[list[Ticket], list[Job]]:
    """Held tickets and jobs as they fire at ``now``: created then, each job's time to
    live counted from then."""
    fired_tickets = [t.model_copy(update={"created_at": now}) for t in tickets]
    fired_jobs = [
        j.model_copy(update={"created_at": now, "expires_at": now + (j.expires_at - j.created_at)})
        for j in jobs
    ]
    return fired_tickets, fired_jobs
