"""Prometheus metrics, one registry per broker (tests run several in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from broker.gc_tuning import PAUSE_BUCKETS

#: Speed-of-service buckets (seconds): around the usual 5–10 minute station targets.
SOS_BUCKETS = (30, 60, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.orders = Counter(
            "passline_orders_total", "Order submits by outcome", ["outcome"], registry=r
        )
        self.requests = Counter(
            "passline_http_errors_total", "REST errors by status", ["status"], registry=r
        )
        self.connections = Gauge(
            "passline_ws_connections", "Open websocket connections", ["path"], registry=r
        )
        self.closes = Counter(
            "passline_ws_closes_total", "Websocket closes sent by code", ["code"], registry=r
        )
        self.sent = Counter(
            "passline_ws_messages_sent_total", "Messages written to peers", ["path"], registry=r
        )
        self.refused = Counter(
            "passline_ws_refused_total",
            "Websocket connections refused by a limit (node, address, address_rate, store, token)",
            ["limit"],
            registry=r,
        )
        self.slow = Counter(
            "passline_ws_slow_consumers_total", "Peers closed with 4001", registry=r
        )
        self.storage = Gauge(
            "passline_storage_writer",
            "Storage writer totals (sqlite: groups, commits, busy_s, sync_s)",
            ["what"],
            registry=r,
        )

        self.webhooks = Counter(
            "passline_webhook_attempts_total",
            "Webhook delivery attempts by outcome (delivered, failed, dead)",
            ["outcome"],
            registry=r,
        )
        self.gc_pauses = Histogram(
            "passline_gc_pause_seconds",
            "Pauses of the cyclic garbage collector by generation (the loop waits meanwhile)",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=r,
        )

        self.sos = Histogram(
            "passline_sos_seconds",
            "Speed of service (docs/reports.md): time to start, bump and serve, by measure "
            "and station id (station ids past the first 32 seen count as 'other')",
            ["measure", "station"],
            buckets=SOS_BUCKETS,
            registry=r,
        )

    def watch_storage(self, stats: dict[str, float]) -> None:
        for key in stats:
            self.storage.labels(key).set_function(lambda key=key: stats[key])  # type: ignore[misc]
