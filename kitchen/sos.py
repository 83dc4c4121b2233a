"""Speed of service (docs/reports.md): what a KDS action measures, how a measurement is
counted, and the report made from the counts. No storage: the broker adds the counts to
tallies in the action's own commit and reads them back.

Tally layout, one place for both directions: per store and local date one tally
(``sos/2026-11-21``), whose counters are

- ``<hour>/<station>/<channel>/<measure>/<seconds>``: how many tickets (orders, for
  ``serve``) took that many whole seconds — a histogram exact to the second, so every
  percentile is exact and a busy hour costs one counter per distinct duration, not one
  per ticket;
- ``<hour>/<station>/<channel>/over``: how many of them were over the station's target.

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
OVER = "over"
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


def tally_fields(sample: Sample, zone: str | None) -> list[tuple[str, str]]:
    """The (tally key, counter) pairs a sample adds one to."""
    local = local_time(sample.began, zone)
    hour = local.replace(minute=0, second=0, microsecond=0).isoformat(timespec="minutes")
    head = SEP.join((hour[11:], sample.station_id, sample.channel))
    key = DAY_PREFIX + local.date().isoformat()
    out = [(key, SEP.join((head, sample.measure.value, str(sample.seconds))))]
    if sample.over_target:
        out.append((key, SEP.join((head, OVER))))
    return out


# -- the report ---------------------------------------------------------------------------


def day_keys(since: datetime, until: datetime, zone: str | None) -> list[str]:
    """The tallies that may hold hours starting in ``[since, until)``."""
    first = local_time(since, zone).date() - timedelta(days=DAY_MARGIN)
    last = local_time(until, zone).date() + timedelta(days=DAY_MARGIN)
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


@dataclass(slots=True)
class _Group:
    histograms: dict[Measure, dict[int, int]] = field(
        default_factory=lambda: {m: {} for m in Measure}
    )
    over: int = 0

    def add(self, measure: Measure, seconds: int, n: int) -> None:
        h = self.histograms[measure]
        h[seconds] = h.get(seconds, 0) + n

    def figures(self, station_id: str, hour: datetime | None, channel: str | None) -> SosFigures:
        t = {m: timing(self.histograms[m]) for m in Measure}
        return SosFigures(
            station_id=station_id,
            hour=hour,
            channel=channel,
            start=t[Measure.START],
            bump=t[Measure.BUMP],
            serve=t[Measure.SERVE],
            over_target=self.over,
        )


@dataclass(frozen=True, slots=True)
class _Counter:
    hour: datetime
    station_id: str
    channel: str
    measure: Measure | None
    """None: the over-target count."""
    seconds: int


def _parse(day: str, name: str) -> _Counter | None:
    """A counter's name read back; None for a shape this version does not know (written
    by a newer broker: skipped, not misread)."""
    parts = name.split(SEP)
    try:
        hour = datetime.fromisoformat(f"{day}T{parts[0]}")
        if len(parts) == 4 and parts[3] == OVER:
            return _Counter(hour, parts[1], parts[2], None, 0)
        if len(parts) == 5:
            return _Counter(hour, parts[1], parts[2], Measure(parts[3]), int(parts[4]))
    except ValueError:
        pass
    return None


def sos_report(
    store_id: str,
    zone: str,
    since: datetime,
    until: datetime,
    tallies: Mapping[str, Mapping[str, int]],
    targets: Mapping[str, int],
) -> SosReport:
    """The report over the hours that start in ``[since, until)`` from the store's
    tallies (``day_keys`` → counters); stations in ``targets`` order (the config's),
    then any others (removed since) by id."""
    rows: dict[tuple[str, datetime, str], _Group] = {}
    hours: dict[tuple[str, datetime], _Group] = {}
    stations: dict[str, _Group] = {}
    for key, counters in tallies.items():
        day = key.removeprefix(DAY_PREFIX)
        for name, n in counters.items():
            c = _parse(day, name)
            if c is None or not since <= c.hour < until:
                continue
            for group in (
                rows.setdefault((c.station_id, c.hour, c.channel), _Group()),
                hours.setdefault((c.station_id, c.hour), _Group()),
                stations.setdefault(c.station_id, _Group()),
            ):
                if c.measure is None:
                    group.over += n
                else:
                    group.add(c.measure, c.seconds, n)
    order = {s: i for i, s in enumerate(targets)}

    def station_rank(station_id: str) -> tuple[int, str]:
        return (order.get(station_id, len(order)), station_id)

    return SosReport(
        store_id=store_id,
        timezone=zone,
        since=since,
        until=until,
        targets=dict(targets),
        rows=tuple(
            g.figures(s, h, ch)
            for (s, h, ch), g in sorted(
                rows.items(), key=lambda kv: (station_rank(kv[0][0]), kv[0][1], kv[0][2])
            )
        ),
        hours=tuple(
            g.figures(s, h, None)
            for (s, h), g in sorted(
                hours.items(), key=lambda kv: (station_rank(kv[0][0]), kv[0][1])
            )
        ),
        stations=tuple(
            stations[s].figures(s, None, None) for s in sorted(stations, key=station_rank)
        ),
    )
