"""Speed-of-service rules as pure functions (kitchen/sos.py): what an action measures,
where it is counted, and the figures read back. The whole story through the broker is
tests/broker/test_sos.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kitchen.actions import apply_action
from kitchen.routing import plan_submit
from kitchen.sos import (
    Sample,
    day_keys,
    sos_report,
    tally_mark,
    ticket_samples,
    timing,
    whole_seconds,
)
from protocol.config import StoreConfig
from protocol.messages.kds import Bump, BumpLine, Recall, Start
from protocol.orders import Order
from protocol.reports import Measure, Timing
from protocol.tickets import Ticket
from tests.broker.helpers import order, store_config

T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def grill_ticket() -> Ticket:
    cfg = StoreConfig.model_validate(store_config())
    plan = plan_submit(Order.model_validate(order()), "o-1", cfg, T0)
    return next(t for t in plan.tickets if t.station_id == "grill")


def step(
    ticket: Ticket, kind: type, after_s: float, measured: list[Measure]
) -> tuple[Ticket, list[Sample]]:
    now = T0 + timedelta(seconds=after_s)
    extra = {"line_id": ticket.lines[0].line_id} if kind is BumpLine else {}
    new = apply_action(
        ticket, kind(ref="r", ticket_id=ticket.ticket_id, version=ticket.version, **extra), now
    )
    samples = ticket_samples(ticket, new, now, measured, 480)
    measured.extend(s.measure for s in samples)
    return new, samples


def test_a_ticket_is_started_once_and_bumped_once() -> None:
    measured: list[Measure] = []
    t, got = step(grill_ticket(), Start, 61.9, measured)
    assert [(s.measure, s.seconds, s.over_target) for s in got] == [(Measure.START, 61, False)]
    t, got = step(t, Bump, 481, measured)
    assert [(s.measure, s.seconds, s.over_target) for s in got] == [(Measure.BUMP, 481, True)]
    t, got = step(t, Recall, 500, measured)
    assert got == []
    t, got = step(t, Bump, 600, measured)
    assert got == [] and measured == [Measure.START, Measure.BUMP]


def test_bumped_straight_from_new_has_no_start_and_is_never_started_later() -> None:
    measured: list[Measure] = []
    t, got = step(grill_ticket(), Bump, 480, measured)
    assert [(s.measure, s.over_target) for s in got] == [(Measure.BUMP, False)]  # 480: on target
    t, got = step(t, Recall, 500, measured)
    assert got == []  # back in progress, but it was never "started"


def test_bumping_one_line_starts_the_ticket() -> None:
    measured: list[Measure] = []
    _, got = step(grill_ticket(), BumpLine, 30, measured)
    assert [(s.measure, s.seconds) for s in got] == [(Measure.START, 30)]


def test_whole_seconds_round_down_and_never_go_negative() -> None:
    assert whole_seconds(T0, T0 + timedelta(seconds=299.999)) == 299
    assert whole_seconds(T0, T0 - timedelta(seconds=2)) == 0


def test_recorded_under_the_local_hour_and_date_the_ticket_arrived() -> None:
    late = Sample(Measure.BUMP, "grill", "pos", T0 + timedelta(minutes=59), 500, 480)
    assert tally_mark(late, "Asia/Shanghai") == (
        "sos/2026-11-21",
        "11:00+08:00/grill/pos/bump",
        "500+,",
    )
    # 16:30 UTC is 00:30 the next day in Shanghai
    night = Sample(Measure.START, "grill", "pos", datetime(2026, 11, 21, 16, 30, tzinfo=UTC), 5)
    assert tally_mark(night, "Asia/Shanghai") == (
        "sos/2026-11-22",
        "00:00+08:00/grill/pos/start",
        "5,",
    )


def test_the_two_one_oclock_hours_of_a_dst_change_stay_apart() -> None:
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = first + timedelta(hours=1)  # 01:30 EST
    marks = [
        tally_mark(Sample(Measure.BUMP, "grill", "pos", t, 60), "America/New_York")
        for t in (first, second)
    ]
    assert marks == [
        ("sos/2026-11-01", "01:00-04:00/grill/pos/bump", "60,"),
        ("sos/2026-11-01", "01:00-05:00/grill/pos/bump", "60,"),
    ]
    report = sos_report(
        "s-1", "America/New_York", first - timedelta(hours=2), second + timedelta(hours=2),
        {"sos/2026-11-01": {f: m for _, f, m in marks}}, {"grill": 600},
    )  # fmt: skip
    assert [h.hour.isoformat() if h.hour else None for h in report.hours] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
    ]


def test_percentiles_are_nearest_rank_on_whole_seconds() -> None:
    assert timing({}) == Timing(count=0)
    assert timing({7: 1}) == Timing(count=1, mean_s=7.0, p50_s=7, p90_s=7, p95_s=7, max_s=7)
    # 1..10: p50 is the 5th, p90 the 9th, p95 the 10th (ceil(9.5))
    ten = timing({s: 1 for s in range(1, 11)})
    assert (ten.p50_s, ten.p90_s, ten.p95_s, ten.max_s, ten.mean_s) == (5, 9, 10, 10, 5.5)
    # 20 tickets: 19 at 100 s, one at 900 s: p95 is the 19th (100), the max 900
    skewed = timing({100: 19, 900: 1})
    assert (skewed.p50_s, skewed.p90_s, skewed.p95_s, skewed.max_s, skewed.mean_s) == (
        100, 100, 100, 900, 140.0,
    )  # fmt: skip


def test_the_report_keeps_the_asked_hours_and_skips_what_it_cannot_read() -> None:
    tallies = {
        "sos/2026-11-21": {
            "10:00+08:00/grill/pos/bump": "60,",  # before the range
            "11:00+08:00/grill/pos/bump": "60,90+,x,60,7q,",  # "x", "7q": skipped
            "11:00+08:00/gone/pos/bump": "30,",  # a station removed from the config
            "11:00+08:00/grill/pos/newmeasure": "5,",  # a newer broker's: skipped
            "11:00/grill/pos/bump": "5,",  # no offset: not ours
            "nonsense": "1,",
        }
    }
    since = datetime(2026, 11, 21, 3, tzinfo=UTC)
    report = sos_report(
        "s-1", "Asia/Shanghai", since, since + timedelta(hours=1), tallies, {"grill": 480}
    )
    assert [(r.station_id, r.bump.count, r.bump.p90_s, r.over_target) for r in report.rows] == [
        ("grill", 3, 90, 1),
        ("gone", 1, 30, 0),
    ]


def test_day_keys_cover_the_range_on_the_stores_calendar_with_a_day_either_side() -> None:
    since = datetime(2026, 11, 20, 16, tzinfo=UTC)  # 21 Nov 00:00 in Shanghai
    assert day_keys(since, since + timedelta(days=1), "Asia/Shanghai") == [
        "sos/2026-11-20",
        "sos/2026-11-21",
        "sos/2026-11-22",
    ]
    assert len(day_keys(since, since + timedelta(days=7), "Asia/Shanghai")) == 9
