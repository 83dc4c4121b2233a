"""Speed of service in the broker (docs/reports.md, DESIGN.md §8.4).

A KDS action that ends a timing (a ticket's first start or bump, an order's serve)
appends its marks to the store's tallies in the action's own commit (``Tx.tallies``):
recorded once, with the action, and surviving a crash as the action does. The report
reads back only the tallies of the days asked for, never tickets: one key per day of
the store, whatever the fleet's size. Prometheus gets the same timings, by measure and
station, after the commit.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from broker.errors import InvalidRequest, NotFound
from broker.metrics import Metrics
from broker.orders import Orders
from broker.records import TicketRecord
from broker.storage import Storage, Tally
from kitchen.sos import Sample, day_keys, serve_sample, sos_report, tally_mark, ticket_samples
from protocol.config import VersionedStoreConfig
from protocol.reports import Measure, SosReport
from protocol.tickets import ExpoOrder, Ticket
from protocol.timezones import zone

#: The longest report one request may ask for.
MAX_REPORT_DAYS = 31
#: Distinct station ids the histograms label (per process); later ones count as "other",
#: so a fleet with free-form station ids cannot grow the metrics without bound.
MAX_STATION_LABELS = 32
OTHER_STATION = "other"
#: Up to this many bytes of marks (~4 a ticket) a report is made on the event loop (a
#: few ms); more, in a thread.
INLINE_BYTES = 8_000
_UNENCODED_PLUS = re.compile(r" (\d{2}:?\d{2})$")


@dataclass(frozen=True, slots=True)
class Measured:
    """What one action measured and the tally marks that record it."""

    samples: list[Sample]
    tallies: list[Tally]


NOTHING = Measured([], [])


class SpeedOfService:
    def __init__(self, storage: Storage, orders: Orders, metrics: Metrics | None = None) -> None:
        self.storage = storage
        self.orders = orders
        self.metrics = metrics
        self._stations: set[str] = set()

    # -- measuring (kds_actions) -----------------------------------------------------------
    async def ticket(self, rec: TicketRecord, new: Ticket, now: datetime) -> Measured:
        """What a KDS action turning ``rec.ticket`` into ``new`` measures."""
        config = await self.orders.config(new.store_id)
        target = _target(config, new.station_id)
        samples = ticket_samples(rec.ticket, new, now, rec.measured, target)
        return self._measured(samples, config)

    async def serve(self, order: ExpoOrder, expo_station: str, now: datetime) -> Measured:
        config = await self.orders.config(order.store_id)
        sample = serve_sample(order, expo_station, now, _target(config, expo_station))
        return self._measured([sample], config)

    def _measured(self, samples: list[Sample], config: VersionedStoreConfig | None) -> Measured:
        if not samples:
            return NOTHING
        tz = self._zone(config)
        tallies = [Tally(*tally_mark(s, tz)) for s in samples]
        return Measured(samples, tallies)

    def observe(self, measured: Measured) -> None:
        """The committed samples into the Prometheus histograms."""
        if self.metrics is None:
            return
        for s in measured.samples:
            self.metrics.sos.labels(s.measure.value, self._label(s.station_id)).observe(s.seconds)

    def _label(self, station_id: str) -> str:
        if station_id in self._stations:
            return station_id
        if len(self._stations) < MAX_STATION_LABELS:
            self._stations.add(station_id)
            return station_id
        return OTHER_STATION

    def _zone(self, config: VersionedStoreConfig | None) -> str:
        if config is not None and config.timezone is not None:
            return config.timezone
        return self.orders.configs.default_timezone

    # -- the report (GET /v1/reports/sos) --------------------------------------------------
    async def report(self, store_id: str, since: str, until: str) -> SosReport:
        """The store's report over the hours starting in the asked range; ``NotFound``
        for a store without a config, ``InvalidRequest`` naming a bad bound."""
        config = await self.orders.config(store_id)
        if config is None:
            raise NotFound(f"no store {store_id!r}")
        tz = self._zone(config)
        start = parse_bound(since, tz, "from", end=False)
        stop = parse_bound(until, tz, "to", end=True)
        check_range(start, stop)
        keys = day_keys(start, stop, tz)
        found = dict(zip(keys, await self.storage.tallies(store_id, keys), strict=True))
        targets = {s.station_id: s.late_after_s for s in config.stations}
        if sum(len(marks) for f in found.values() for marks in f.values()) < INLINE_BYTES:
            return sos_report(store_id, tz, start, stop, found, targets)
        # a busy store's week is ~10⁵ marks, a few hundred ms of Python: in a thread, so
        # the event loop (every socket of this node) keeps turning meanwhile
        return await asyncio.to_thread(sos_report, store_id, tz, start, stop, found, targets)


def _target(config: VersionedStoreConfig | None, station_id: str) -> int | None:
    station = config.station(station_id) if config is not None else None
    return station.late_after_s if station is not None else None


def parse_bound(text: str, zone_name: str, param: str, *, end: bool) -> datetime:
    """A report bound: an ISO 8601 time with an offset, or a date (``2026-11-21``) on
    the store's wall clock: as ``from``, that day's start; as ``to``, the next day's
    start, so ``from=2026-11-15&to=2026-11-21`` is those seven whole days."""
    # a "+" left unencoded in a query string arrives as a space: "…T12:00:00 08:00"
    value = _UNENCODED_PLUS.sub(r"+\1", text.strip())
    try:
        if len(value) == len("2026-11-21"):
            day = date.fromisoformat(value)
            return _local_midnight(day + timedelta(days=1) if end else day, zone_name)
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _bad(param, f"expected a date (2026-11-21) or a time with an offset, got {text!r}")
    return moment


def check_range(since: datetime, until: datetime) -> None:
    if until <= since:
        raise _bad("to", "must be after from")
    if until - since > timedelta(days=MAX_REPORT_DAYS):
        raise _bad("to", f"a report covers at most {MAX_REPORT_DAYS} days")


def _local_midnight(day: date, zone_name: str) -> datetime:
    """Midnight starting ``day`` in the zone (UTC where this machine cannot load it)."""
    return datetime.combine(day, time(0), tzinfo=zone(zone_name) or UTC)


def _bad(param: str, msg: str) -> InvalidRequest:
    errors: list[dict[str, Any]] = [{"loc": ["query", param], "msg": msg}]
    return InvalidRequest(f"query.{param}: {msg}", errors)


CSV_TIMING = ("count", "mean_s", "p50_s", "p90_s", "p95_s", "max_s")


def report_csv(report: SosReport) -> str:
    """The report's rows (station, hour, channel) as CSV with a header row: one column
    per figure (``bump_p90_s``); an empty cell where a timing has no tickets."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    measures = [m.value for m in Measure]
    w.writerow(
        [
            "store_id",
            "station_id",
            "hour",
            "channel",
            *(f"{m}_{f}" for m in measures for f in CSV_TIMING),
            "over_target",
        ]
    )
    for row in report.rows:
        timings = (row.start, row.bump, row.serve)
        w.writerow(
            [
                report.store_id,
                row.station_id,
                row.hour.isoformat() if row.hour else "",
                row.channel or "",
                *(_cell(getattr(t, f)) for t in timings for f in CSV_TIMING),
                row.over_target,
            ]
        )
    return out.getvalue()


def _cell(value: float | int | None) -> str:
    return "" if value is None else str(value)
