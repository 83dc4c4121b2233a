"""Hypothesis strategies for every protocol model and message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from protocol import base, config, jobs, orders, status, tickets
from protocol.messages import common, hq, kds, store

ident = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
text = st.text(min_size=1, max_size=24)
short = st.text(min_size=1, max_size=12)
maybe = st.none().__or__
offsets = st.integers(min_value=0, max_value=2**53)
versions = st.integers(min_value=0, max_value=10**9)
channels = st.sampled_from([*sorted(orders.KNOWN_CHANNELS), "x-kiosk-2"])
zones = st.integers(min_value=-14 * 4, max_value=14 * 4).map(
    lambda q: timezone(timedelta(minutes=15 * q))
)
timestamps = st.builds(
    lambda dt, tz: dt.replace(tzinfo=UTC).astimezone(tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    zones,
)
small_tuple = lambda s: st.lists(s, max_size=3).map(tuple)  # noqa: E731


def positions() -> st.SearchStrategy[base.StreamPosition]:
    return st.builds(base.StreamPosition, epoch=short, offset=offsets)


def items() -> st.SearchStrategy[orders.Item]:
    return st.builds(
        orders.Item,
        line_id=ident,
        sku=ident,
        name=text,
        qty=st.integers(1, orders.MAX_QTY),
        modifiers=small_tuple(text),
        note=maybe(text),
        category=ident,
        station=maybe(ident),
        course=st.integers(1, 9),
        allergens=small_tuple(short),
    )


def orders_() -> st.SearchStrategy[orders.Order]:
    return st.builds(
        orders.Order,
        store_id=ident,
        channel=channels,
        external_id=ident,
        service=st.sampled_from(orders.Service),
        placed_at=timestamps,
        priority=st.sampled_from(orders.Priority),
        items=st.lists(items(), min_size=1, max_size=3, unique_by=lambda i: i.line_id).map(tuple),
    )


def printer_statuses() -> st.SearchStrategy[status.PrinterStatus]:
    flag = st.booleans()
    return st.builds(
        status.PrinterStatus,
        reachable=flag,
        online=flag,
        paper=st.sampled_from(status.Paper),
        cover_open=flag,
        cutter_error=flag,
        mechanical_error=flag,
        unrecoverable_error=flag,
        auto_recoverable_error=flag,
        drawer_open=flag,
        feed_button=flag,
        source=st.sampled_from(status.StatusSource),
        since=timestamps,
    )


prep_seconds = st.integers(0, config.MAX_PREP_S)


def store_configs() -> st.SearchStrategy[config.VersionedStoreConfig]:
    def build(n_printers: int, n_stations: int, data: Any) -> config.VersionedStoreConfig:
        printers = [
            config.PrinterConfig(
                printer_id=f"p{i}",
                name=data["names"][i % len(data["names"])],
                transport=f"tcp://127.0.0.1:{9100 + i}",
                width_mm=data["width"],
                backup=f"p{(i + 1) % n_printers}" if n_printers > 1 and i == 0 else None,
            )
            for i in range(n_printers)
        ]
        stations = [
            config.StationConfig(
                station_id=f"s{i}",
                name=data["names"][i % len(data["names"])],
                categories=(f"cat{i}",),
                printer=f"p{i % n_printers}" if n_printers else None,
                warn_after_s=60,
                late_after_s=120,
                prep_s=data["prep_s"],
            )
            for i in range(n_stations)
        ]
        return config.VersionedStoreConfig(
            store_id=data["store_id"],
            version=data["version"],
            name=data["names"][0],
            timezone=data["timezone"],
            printers=tuple(printers),
            stations=tuple(stations),
            receipt_printer="p0" if n_printers else None,
            default_station="s0" if n_stations else None,
            prep_s_by_category=data["prep_by_category"],
            prep_s_by_sku=data["prep_by_sku"],
        )

    return st.builds(
        build,
        st.integers(0, 3),
        st.integers(0, 3),
        st.fixed_dictionaries(
            {
                "names": st.lists(text, min_size=1, max_size=3),
                "width": st.sampled_from([58, 80]),
                "store_id": ident,
                "version": versions,
                "timezone": st.sampled_from(
                    [None, "UTC", "Asia/Shanghai", "America/Port-au-Prince"]
                ),
                "prep_s": maybe(prep_seconds),
                "prep_by_category": st.dictionaries(ident, prep_seconds, max_size=3),
                "prep_by_sku": st.dictionaries(ident, prep_seconds, max_size=3),
            }
        ),
    )


def ticket_orders() -> st.SearchStrategy[tickets.TicketOrder]:
    return st.builds(
        tickets.TicketOrder,
        channel=channels,
        service=st.sampled_from(orders.Service),
        external_id=maybe(short),
        pickup_code=maybe(short),
        table=maybe(short),
        customer=maybe(text),
        note=maybe(text),
        placed_at=timestamps,
        due_at=maybe(timestamps),
    )


def ticket_lines() -> st.SearchStrategy[tickets.TicketLine]:
    return st.builds(
        tickets.TicketLine,
        line_id=ident,
        name=text,
        qty=st.integers(1, 99),
        modifiers=small_tuple(text),
        note=maybe(text),
        allergens=small_tuple(short),
        course=st.integers(1, 9),
        state=st.sampled_from(tickets.LineState),
        change=maybe(st.sampled_from(tickets.LineChangeKind)),
    )


def tickets_() -> st.SearchStrategy[tickets.Ticket]:
    return st.builds(
        tickets.Ticket,
        ticket_id=ident,
        order_id=ident,
        store_id=ident,
        station_id=ident,
        version=versions,
        state=st.sampled_from(tickets.TicketState),
        priority=st.sampled_from(orders.Priority),
        created_at=timestamps,
        order=ticket_orders(),
        lines=st.lists(ticket_lines(), min_size=1, max_size=3).map(tuple),
        bumped_at=maybe(timestamps),
    )


def expo_orders() -> st.SearchStrategy[tickets.ExpoOrder]:
    return st.builds(
        tickets.ExpoOrder,
        order_id=ident,
        store_id=ident,
        version=versions,
        state=st.sampled_from(tickets.ExpoState),
        created_at=timestamps,
        order=ticket_orders(),
        stations=small_tuple(
            st.builds(
                tickets.ExpoStation,
                station_id=ident,
                ticket_id=ident,
                state=st.sampled_from(tickets.TicketState),
            )
        ),
        fire_at=maybe(timestamps),
    )


def print_jobs() -> st.SearchStrategy[jobs.Job]:
    doc_line = st.builds(
        jobs.DocLine,
        qty=st.integers(0, 99),
        name=text,
        modifiers=small_tuple(text),
        note=maybe(text),
        allergens=small_tuple(short),
        change=maybe(st.sampled_from(tickets.LineChangeKind)),
    )
    doc = st.builds(
        jobs.TicketDoc,
        template=st.sampled_from(orders.Template),
        station=maybe(text),
        order_ref=short,
        channel=channels,
        service=st.sampled_from(orders.Service),
        table=maybe(short),
        placed_at=timestamps,
        priority=st.sampled_from(orders.Priority),
        reprint=st.booleans(),
        rerouted_from=maybe(text),
        pickup_code=maybe(short),
        lines=st.lists(doc_line, min_size=1, max_size=3).map(tuple),
    )
    return st.builds(
        jobs.Job,
        job_id=ident,
        order_id=ident,
        revision=st.integers(1, 50),
        printer_id=ident,
        template=st.sampled_from(orders.Template),
        doc=doc,
        copies=st.integers(1, 3),
        created_at=timestamps,
        expires_at=timestamps,
    )


error_codes = st.sampled_from(common.ErrorCode)
counts = st.dictionaries(text, st.integers(0, 999), max_size=3)

STORE_MESSAGES: dict[str, st.SearchStrategy[Any]] = {
    "hello": st.builds(
        store.Hello,
        store_id=ident,
        client_version=short,
        resume=maybe(positions()),
        printers=small_tuple(ident),
        client_id=maybe(ident),
        clock=maybe(timestamps),
    ),
    "welcome": st.builds(
        store.Welcome,
        epoch=short,
        offset=offsets,
        recovered=st.booleans(),
        config=maybe(store_configs()),
        jobs=small_tuple(print_jobs()),
        paged=st.booleans(),
        now=maybe(timestamps),
    ),
    "snapshot": st.builds(store.SnapshotPage, jobs=small_tuple(print_jobs())),
    "snapshot_end": st.builds(store.SnapshotEnd, offset=offsets, count=st.integers(0, 10_000)),
    "reports_ack": st.builds(store.ReportsAck, seq=st.integers(0, 2**40)),
    "job": st.builds(store.JobMessage, offset=offsets, job=print_jobs()),
    "cancel": st.builds(store.CancelJob, offset=offsets, job_id=ident),
    "config": st.builds(store.ConfigMessage, offset=offsets, config=store_configs()),
    "ack": st.builds(store.Ack, offset=offsets),
    "job_state": st.builds(
        store.JobStateReport,
        job_id=ident,
        state=st.sampled_from(jobs.JobState),
        reason=maybe(text),
        at=timestamps,
        printer_id=maybe(ident),
        status=maybe(printer_statuses()),
        seq=maybe(st.integers(1, 2**40)),
    ),
    "lan_order": st.builds(
        store.LanOrder, order=orders_(), taken_at=timestamps, seq=maybe(st.integers(1, 2**40))
    ),
    "lan_amend": st.builds(
        store.LanAmend,
        order_id=ident,
        amendment=st.builds(
            orders.Amendment, void=st.lists(ident, min_size=1, max_size=3, unique=True).map(tuple)
        ),
        ref=short,
        taken_at=timestamps,
        seq=maybe(st.integers(1, 2**40)),
    ),
    "lan_cancel": st.builds(
        store.LanCancel,
        order_id=ident,
        cancel=st.builds(orders.CancelRequest, reason=maybe(text)),
        taken_at=timestamps,
        seq=maybe(st.integers(1, 2**40)),
    ),
    "kds_action": st.builds(
        store.EdgeKdsAction,
        station_id=ident,
        action=st.builds(kds.Bump, ref=short, ticket_id=ident, version=versions),
        taken_at=timestamps,
        seq=maybe(st.integers(1, 2**40)),
    ),
    "printer_status": st.builds(
        store.PrinterStatusReport, printer_id=ident, status=printer_statuses()
    ),
    "error": st.builds(store.Error, code=error_codes, message=text, ref=maybe(short)),
}

_action = {"ref": short, "ticket_id": ident, "version": versions}
KDS_MESSAGES: dict[str, st.SearchStrategy[Any]] = {
    "hello": st.builds(
        kds.KdsHello, token=text, store=ident, station=ident, resume=maybe(positions())
    ),
    "snapshot": st.builds(
        kds.Snapshot,
        epoch=short,
        offset=offsets,
        station=st.builds(config.StationConfig, station_id=ident, name=text),
        tickets=small_tuple(tickets_()),
        orders=small_tuple(expo_orders()),
        all_day=counts,
        local=st.booleans(),
    ),
    "ticket": st.builds(kds.TicketUpdate, offset=offsets, ticket=tickets_()),
    "ticket_removed": st.builds(kds.TicketRemoved, offset=offsets, ticket_id=ident),
    "all_day": st.builds(kds.AllDay, offset=offsets, counts=counts),
    "order": st.builds(kds.OrderUpdate, offset=offsets, order=expo_orders()),
    "start": st.builds(kds.Start, **_action),
    "bump": st.builds(kds.Bump, **_action),
    "recall": st.builds(kds.Recall, **_action),
    "prioritize": st.builds(kds.Prioritize, **_action),
    "bump_line": st.builds(kds.BumpLine, line_id=ident, **_action),
    "serve": st.builds(kds.Serve, ref=short, order_id=ident, version=versions),
    "fire": st.builds(kds.Fire, ref=short, order_id=ident, version=versions),
    "ack": st.builds(kds.KdsAck, ref=short, ticket=maybe(tickets_()), order=maybe(expo_orders())),
    "error": st.builds(
        kds.KdsError, ref=maybe(short), code=error_codes, message=text, ticket=maybe(tickets_())
    ),
}

HQ_MESSAGES: dict[str, st.SearchStrategy[Any]] = {
    "hello": st.builds(hq.HqHello, token=text),
    "fleet": st.builds(
        hq.Fleet,
        stores=small_tuple(
            st.builds(
                hq.FleetStore,
                store_id=ident,
                name=text,
                link=st.builds(
                    hq.LinkState,
                    online=st.booleans(),
                    since=timestamps,
                    client_version=maybe(short),
                ),
                printers=small_tuple(
                    st.builds(
                        hq.FleetPrinter,
                        printer_id=ident,
                        name=text,
                        status=maybe(printer_statuses()),
                    )
                ),
                queued=st.integers(0, 1000),
                held=st.integers(0, 1000),
            )
        ),
    ),
    "store_link": st.builds(
        hq.StoreLink,
        store_id=ident,
        online=st.booleans(),
        since=timestamps,
        client_version=maybe(short),
    ),
    "printer_status": st.builds(
        hq.HqPrinterStatus, store_id=ident, printer_id=ident, status=printer_statuses()
    ),
    "job_alert": st.builds(
        hq.JobAlert,
        store_id=ident,
        job_id=ident,
        printer_id=ident,
        state=st.sampled_from(jobs.JobState),
        reason=maybe(text),
    ),
    "error": st.builds(hq.HqError, ref=maybe(short), code=error_codes, message=text),
}
