"""The speed-of-service report: ``GET /v1/reports/sos`` (DESIGN.md §8.4, docs/reports.md).

Three timings, each measured once per ticket or order when the KDS action that ends it
is applied, in whole seconds:

- ``start``: a ticket reaching its station (its ``created_at``) → first started;
- ``bump``: a ticket reaching its station → first ready (bumped);
- ``serve``: an order reaching the kitchen (its expo roll-up's ``created_at``) → served
  on expo; reported on the expo station's rows.

Figures are grouped by store, station, hour (on the store's wall clock, the hour the
ticket or order reached the kitchen) and channel.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from protocol.base import Frozen, Ident, Timestamp
from protocol.orders import ChannelName
from protocol.timezones import ZoneName


class Measure(StrEnum):
    START = "start"
    BUMP = "bump"
    SERVE = "serve"


#: The percentiles every timing reports, by nearest rank (docs/reports.md#definitions).
PERCENTILES = (50, 90, 95)


class Timing(Frozen):
    """One timing over a group of tickets (or orders): whole seconds; percentiles by
    nearest rank: ``pN`` is the smallest duration that at least N % of them do not
    exceed. Every figure but ``count`` is null when ``count`` is 0."""

    count: int = Field(ge=0)
    mean_s: float | None = None
    """Mean of the whole-second durations, rounded to 0.1 s."""
    p50_s: int | None = None
    p90_s: int | None = None
    p95_s: int | None = None
    max_s: int | None = None


class SosFigures(Frozen):
    """The timings of one station, for one hour and channel, or summed over them."""

    station_id: Ident
    hour: Timestamp | None = None
    """Start of the hour on the store's wall clock, with its offset
    (``2026-11-21T12:00:00+08:00``): the hour the tickets reached the station. null: every
    hour of the report."""
    channel: ChannelName | None = None
    """null: every channel."""
    start: Timing
    bump: Timing
    serve: Timing
    """Only on the expo station's figures: the store's orders, served on expo."""
    over_target: int = Field(ge=0)
    """Tickets bumped (on the expo station: orders served) more than the station's
    ``late_after_s`` after they reached it, by the target in force at the time."""


class SosReport(Frozen):
    """``GET /v1/reports/sos``: a store's speed of service over the hours that start in
    ``[since, until)``."""

    store_id: Ident
    timezone: ZoneName
    """The store's zone: what ``hour`` is on the wall clock of."""
    since: Timestamp
    """The report's first hour may start here (``from``, a date read as its midnight)."""
    until: Timestamp
    """No hour starting here or later is in (``to``; a date: the next day's midnight)."""
    targets: dict[Ident, int] = Field(default_factory=dict)
    """Each station's ``late_after_s`` in the store's config now."""
    rows: tuple[SosFigures, ...] = ()
    """Per station, hour and channel (the CSV's rows), by station, hour, channel."""
    hours: tuple[SosFigures, ...] = ()
    """Per station and hour, every channel together."""
    stations: tuple[SosFigures, ...] = ()
    """Per station over the whole report."""
