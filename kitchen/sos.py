"""Speed of service (docs/reports.md): what a KDS action measures, how a measurement is
recorded, and the report made from the records. No storage: the broker appends the marks
to the store's tallies in the action's own commit and reads them back.

Tally layout, one place for both directions: per store and local date one tally
(``sos/2026-11-21``), with one field per ``<hour>/<station>/<channel>/<measure>`` whose
marks are the durations measured there, in whole seconds, each ended by a comma:
``312,95,560+,`` (``+``: over the station's target). Every duration is kept, so every
percentile is exact; a mark costs about 4 bytes, and a field per row, not per ticket.

``<hour>`` is the local hour the ticket reached the station, as ``12:00+08:00`` (the
offset keeps the two 01:00 hours of an autumn DST change apart). ``/`` is in no id.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from protocol.reports import PERCENTILES, Measure, SosFigures, SosReport, Timing
from protocol.tickets import ExpoOrder, Ticket, TicketState
from protocol.timezones import local_time

SEP = "/"
END = ","  # ends every mark
OVER = "+"  # after the seconds: over target
DAY_PREFIX = "sos/"
#: Days read either side of the asked range: hours are filed under the local date of the
#: zone the store had then, which may differ from today's by a day.
DAY_MARGIN = 1


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured timing."""

    measure: Measure
    station_id: str
    channel: str
    began: datetime
    """When the ticket (order) reached the station (kitchen): what its hour is."""
    seconds: int
    target_s: int | None = None
    """The station's ``late_after_s`` then (bump and serve only)."""

    @property
    def over_target(self) -> bool:
        return self.target_s is not None and self.seconds > self.target_s


def whole_seconds(began: datetime, ended: datetime) -> int:
    """Whole seconds from ``began`` to ``ended`` (rounded down; never negative: the
    clocks of two broker nodes may disagree by a little)."""
    return max(0, math.floor((ended - began).total_seconds()))


def ticket_samples(
    before: Ticket,
    after: Ticket,
    now: datetime,
    measured: Collection[Measure],
    target_s: int | None,
) -> list[Sample]:
    """What a KDS action that turned ``before`` into ``after`` at ``now`` measures, given
    what was ``measured`` of this ticket already. A ticket is started once: its first
    move from ``new`` to ``in_progress`` (start, or one line bumped), unless it was bumped
    before; and bumped once: the first time it is ``ready``. A recall and the bump after
    it measure nothing."""
    out = []
    began, station, channel = after.created_at, after.station_id, after.order.channel
    if not measured and before.state is TicketState.NEW and after.state is TicketState.IN_PROGRESS:
        out.append(Sample(Measure.START, station, channel, began, whole_seconds(began, now)))
    if Measure.BUMP not in measured and after.state is TicketState.READY:
        seconds = whole_seconds(began, now)
        out.append(Sample(Measure.BUMP, station, channel, began, seconds, target_s))
    return out


def serve_sample(
    order: ExpoOrder, expo_station: str, now: datetime, target_s: int | None
) -> Sample:
    """An order served on expo at ``now``: served once (served is final)."""
    return Sample(
        Measure.SERVE,
        expo_station,
        order.order.channel,
        order.created_at,
        whole_seconds(order.created_at, now),
        target_s,
    )


def tally_mark(sample: Sample, zone: str | None) -> tuple[str, str, str]:
    """The tally key, field and mark that record a sample."""
    local = local_time(sample.began, zone)
    hour = local.replace(minute=0, second=0, microsecond=0).isoformat(timespec="minutes")
    name = SEP.join((hour[11:], sample.station_id, sample.channel, sample.measure.value))
    mark = f"{sample.seconds}{OVER if sample.over_target else ''}{END}"
    return DAY_PREFIX + local.date().isoformat(), name, mark


# -- the report ---------------------------------------------------------------------------


def day_keys(since: datetime, until: datetime, zone: str | None) -> list[str]:
    """The tallies that may hold hours starting in ``[since, until)``."""
    first = local_time(since, zone).date() - timedelta(days=DAY_MARGIN)
    last_moment = until - timedelta(microseconds=1)  # ``until`` itself is not in
    last = local_time(last_moment, zone).date() + timedelta(days=DAY_MARGIN)
    return [
        DAY_PREFIX + (first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
    ]


def timing(histogram: Mapping[int, int]) -> Timing:
    """Count, mean, nearest-rank percentiles and maximum of a seconds → count histogram."""
    n = sum(histogram.values())
    if n == 0:
        return Timing(count=0)
    ordered = sorted((s, c) for s, c in histogram.items() if c > 0)
    total = sum(s * c for s, c in ordered)
    pct = {f"p{p}_s": _nearest_rank(ordered, n, p) for p in PERCENTILES}
    return Timing(count=n, mean_s=round(total / n, 1), max_s=ordered[-1][0], **pct)


def _nearest_rank(ordered: Sequence[tuple[int, int]], n: int, p: int) -> int:
    """The ``ceil(p/100 · n)``-th smallest duration (integer arithmetic: exact)."""
    rank = max(1, (p * n + 99) // 100)
    seen = 0
    for seconds, count in ordered:
        seen += count
        if seen >= rank:
            return seconds
    return ordered[-1][0]


_MEASURES = {m.value: m for m in Measure}


@dataclass(slots=True)
class _Group:
    """The durations of one group of figures (per measure, seconds → count) and how many
    of them were over target."""

    histograms: dict[Measure, dict[int, int]] = field(default_factory=dict)
    over: int = 0

    def merge(self, other: _Group) -> None:
        for measure, theirs in other.histograms.items():
            mine = self.histograms.setdefault(measure, {})
            for seconds, n in theirs.items():
                mine[seconds] = mine.get(seconds, 0) + n
        self.over += other.over

    def figures(self, station_id: str, hour: datetime | None, channel: str | None) -> SosFigures:
        t = {m: timing(self.histograms.get(m, {})) for m in Measure}
        return SosFigures(
            station_id=station_id,
            hour=hour,
            channel=channel,
            start=t[Measure.START],
            bump=t[Measure.BUMP],
            serve=t[Measure.SERVE],
            over_target=self.over,
        )


_Row = tuple[str, datetime, str]  # station, hour, channel


class _Reader:
    """Tally fields read back into row groups; each hour label parsed once. A field or a
    mark of a shape this version does not know (a newer broker's) is skipped, never
    misread."""

    def __init__(self, since: datetime, until: datetime) -> None:
        self.since = since
        self.until = until
        self.rows: dict[_Row, _Group] = {}
        self._hours: dict[tuple[str, str], datetime | None] = {}

    def add(self, day: str, name: str, marks: str) -> None:
        parts = name.split(SEP)
        if len(parts) != 4 or parts[3] not in _MEASURES:
            return
        hour = self._hour(day, parts[0])
        if hour is None:
            return
        row = (parts[1], hour, parts[2])
        group = self.rows.get(row)
        if group is None:
            group = self.rows[row] = _Group()
        histogram = group.histograms.setdefault(_MEASURES[parts[3]], {})
        for mark in marks.split(END):
            seconds = mark.removesuffix(OVER)
            if not seconds.isdecimal():
                continue  # the empty string after the last comma, or a mark of the future
            s = int(seconds)
            histogram[s] = histogram.get(s, 0) + 1
            if len(seconds) != len(mark):
                group.over += 1

    def _hour(self, day: str, label: str) -> datetime | None:
        """The hour ``label`` of ``day`` if it starts in the range, else None."""
        key = (day, label)
        if key not in self._hours:
            try:
                hour: datetime | None = datetime.fromisoformat(f"{day}T{label}")
            except ValueError:
                hour = None
            if hour is not None and (hour.tzinfo is None or not self.since <= hour < self.until):
                hour = None
            self._hours[key] = hour
        return self._hours[key]


def sos_report(
    store_id: str,
    zone: str,
    since: datetime,
    until: datetime,
    tallies: Mapping[str, Mapping[str, str]],
    targets: Mapping[str, int],
) -> SosReport:
    """The report over the hours that start in ``[since, until)`` from the store's
    tallies (``day_keys`` → field → marks); stations in ``targets`` order (the
    config's), then any others (removed since) by id."""
    reader = _Reader(since, until)
    for key, fields in tallies.items():
        day = key.removeprefix(DAY_PREFIX)
        for name, marks in fields.items():
            reader.add(day, name, marks)
    order = {s: i for i, s in enumerate(targets)}

    def rank(row: _Row) -> tuple[int, str, datetime, str]:
        station, hour, channel = row
        return (order.get(station, len(order)), station, hour, channel)

    rows = sorted(reader.rows.items(), key=lambda kv: rank(kv[0]))
    hours: dict[tuple[str, datetime], _Group] = {}
    stations: dict[str, _Group] = {}
    for (station, hour, _), g in rows:  # sorted rows: hours and stations come in order
        hours.setdefault((station, hour), _Group()).merge(g)
        stations.setdefault(station, _Group()).merge(g)
    return SosReport(
        store_id=store_id,
        timezone=zone,
        since=since,
        until=until,
        targets=dict(targets),
        rows=tuple(g.figures(s, h, ch) for (s, h, ch), g in rows),
        hours=tuple(g.figures(s, h, None) for (s, h), g in hours.items()),
        stations=tuple(g.figures(s, None, None) for s, g in stations.items()),
    )
