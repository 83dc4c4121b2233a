"""The store client daemon: pumps the link, runs the workers, serves local status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from protocol.close_codes import CloseCode
from protocol.codec import MAX_FRAME_BYTES, decode_msgpack, encode_msgpack
from protocol.config import PrinterConfig, VersionedStoreConfig
from protocol.errors import ProtocolError
from protocol.jobs import Job
from protocol.messages.store import STORE_BROKER, PrinterStatusReport, Welcome
from protocol.status import PrinterStatus
from protocol.version import PROTOCOL_VERSION, __version__
from store_client.clock import SkewedClock, shifted, system_clock
from store_client.edge_settings import EdgeSettings
from store_client.errors import SpoolError
from store_client.lean import proxy_setting
from store_client.link import TERMINAL_RETRY_S, Durable, Link, Phase, Reconnect, ReportsDone
from store_client.spool import Spool
from store_client.worker import PrinterWorker, WorkerSettings

log = logging.getLogger(__name__)

SUBPROTOCOL = "passline.v1.msgpack"
REPORT_RESEND_S = 10.0
REPORT_WINDOW = 200
STORE_PATH = "/v1/ws/store"


@dataclass
class ClientSettings:
    broker: str
    """``ws://host:port`` or ``wss://…``; ``/v1/ws/store`` is added when no path is given.
    Several broker nodes, comma-separated, are tried in turn: after a link ends (a node
    draining with 1012, a node gone) the next one is used."""
    store_id: str
    token: str
    spool_dir: Path = Path("./passline-spool")
    ca_file: Path | None = None
    status_port: int | None = 9180
    """Local status page on 127.0.0.1; None turns it off."""
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    open_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    clock_skew_s: float = 0.0
    """Test aid: this PC's clock runs this many seconds ahead (negative: behind)."""
    lan: EdgeSettings | None = None
    """``--lan HOST:PORT``: the store edge's LAN ingest (store_client/edge.py)."""
    protocol: int = PROTOCOL_VERSION
    """The store-link protocol to announce (an older one for a broker not yet upgraded;
    the client also steps down by itself when a broker refuses its version)."""

    def urls(self) -> list[str]:
        return [_with_path(u) for u in self.broker.split(",") if u.strip()]

    def url(self, attempt: int = 0) -> str:
        urls = self.urls()
        return urls[attempt % len(urls)]


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delay-seconds; an HTTP date is not honoured)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _with_path(url: str) -> str:
    base = url.strip().rstrip("/")
    scheme_end = base.find("://") + 3
    return base if "/" in base[scheme_end:] else base + STORE_PATH


class StoreClient:
    """``async with StoreClient(settings) as client: await client.run()``."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.link = Link(settings.store_id, __version__, (), protocol=settings.protocol)
        self._node = 0
        self.workers: dict[str, PrinterWorker] = {}
        self._worker_tasks: dict[str, asyncio.Task[None]] = {}
        self._spool: Spool | None = None
        self._config: VersionedStoreConfig | None = None
        self._statuses: dict[str, PrinterStatus] = {}
        self._status_dirty: set[str] = set()
        self._report_wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self.link_since = datetime.now(UTC)
        self.status_port: int | None = None
        self.clock = SkewedClock(local=shifted(system_clock, settings.clock_skew_s))
        """The broker's time: expiry and report times use it (store_client/clock.py)."""
        self._reports_sent = 0
        """The highest report seq sent on this link (0: none waiting for an ack)."""
        self._reports_progress = 0.0
        self._reports_acked = 0
        """The highest report seq the broker acknowledged on this link."""
        self._offline_upto = 0
        """The last LAN order counted in this link's hello as taken offline."""
        self.lan_port: int | None = None
        """The LAN edge's bound port, once it listens (``settings.lan``)."""

    @property
    def spool(self) -> Spool:
        assert self._spool is not None, "StoreClient.run() has not opened the spool"
        return self._spool

    # -- WorkerHost ------------------------------------------------------------------------

    def config(self) -> VersionedStoreConfig:
        assert self._config is not None
        return self._config

    def printer_status(self, printer_id: str, status: PrinterStatus) -> None:
        self._statuses[printer_id] = status
        self._status_dirty.add(printer_id)
        self._report_wake.set()

    def reports_pending(self) -> None:
        self._report_wake.set()

    def wake(self, printer_id: str) -> None:
        worker = self.workers.get(printer_id)
        if worker is not None:
            worker.wake()

    # -- the LAN edge ------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.link.phase is Phase.ONLINE

    def current_config(self) -> VersionedStoreConfig | None:
        """The config in force (the last the broker sent, kept in the spool), if any."""
        return self._config

    def lan_order_taken(self, fresh: list[Job]) -> None:
        """The edge spooled an order: print its jobs now, and forward it when online."""
        for printer_id in {job.printer_id for job in fresh}:
            self.wake(printer_id)
        self._report_wake.set()

    # -- running -----------------------------------------------------------------------------

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Run until cancelled: no close code ends the daemon (DESIGN.md §8.2)."""
        self._spool = await Spool.open(self.settings.spool_dir / "spool.db", self.clock.now)
        try:
            self.link.client_id = await self.spool.client_id()
            self.clock.restore(await self.spool.clock_reading())  # offline: the last measured
            for job_id in await self.spool.recover_interrupted():
                log.warning("job %s was printing when the client stopped: uncertain", job_id)
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                config = await self.spool.config()
                if config is not None:
                    self._apply_config(config)  # print offline with the last known config
                if self.settings.status_port is not None:
                    server = await self._start_status_server()
                    tg.create_task(self._serve_forever(server))
                if self.settings.lan is not None:
                    from store_client.edge import LanEdge  # the web stack: only with --lan

                    edge = LanEdge(self, self.settings.lan)
                    self.lan_port = edge.port
                    tg.create_task(edge.serve(), name="lan-edge")
                tg.create_task(self._housekeeping())
                if ready is not None:
                    ready.set()
                await self._link_forever()
        finally:
            await self.spool.aclose()

    async def _link_forever(self) -> None:
        while True:
            decision = await self._link_once()
            self._node += 1  # several broker URLs: the next link tries the next node
            if decision.standby and self.workers:
                log.error("another store client took this store over: not printing here")
                self._stop_workers()
            if decision.code is not None and decision.delay_s >= TERMINAL_RETRY_S / 2:
                log.error(
                    "broker closed the link with %d (%s): someone must act; retrying in %.0fs",
                    decision.code,
                    decision.reason or "no reason given",
                    decision.delay_s,
                )
            else:
                log.info("link down; reconnecting in %.1fs", decision.delay_s)
            await asyncio.sleep(decision.delay_s)

    async def _link_once(self) -> Reconnect:
        s = self.settings
        try:
            async with connect(
                s.url(self._node),
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Bearer {s.token}"},
                compression=None,
                open_timeout=s.open_timeout_s,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                max_size=MAX_FRAME_BYTES * 16,
                ssl=self._ssl_context(),
                proxy=proxy_setting(),
            ) as ws:
                await self._session(ws)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            self._set_link_down()
            return self.link.closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
        except InvalidStatus as exc:
            self._set_link_down()
            code = exc.response.status_code
            if code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                return self.link.closed(1008, f"broker answered HTTP {code}: check the token")
            retry_after = _retry_after(exc.response.headers.get("Retry-After"))
            self.link.last_error = f"broker answered HTTP {code}" + (
                f", retry after {retry_after:.0f}s" if retry_after else ""
            )
            return self.link.closed(None, retry_after_s=retry_after)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self._set_link_down()
            self.link.last_error = str(exc) or type(exc).__name__
            return self.link.closed(None)
        except SpoolError as exc:
            # A full disk: nothing it could not write was acknowledged, so the broker sends
            # it again on the next link; the printers go on with what is spooled.
            log.error("spool write failed (%s): the link restarts", exc)
            self._set_link_down()
            self.link.last_error = str(exc)
            return self.link.closed(None)
        self._set_link_down()
        return self.link.closed(None)

    def broker_url(self, path: str) -> str:
        """The broker node this client links to, at another endpoint (``/v1/ws/kds``)."""
        url = self.settings.url(self._node)
        return url[: -len(STORE_PATH)] + path if url.endswith(STORE_PATH) else url

    def ssl_context(self) -> ssl.SSLContext | None:
        return self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.url(self._node).startswith("wss://"):
            return None
        ca = self.settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _set_link_down(self) -> None:
        if self.link.phase is Phase.ONLINE:
            self.link_since = datetime.now(UTC)

    async def _session(self, ws: ClientConnection) -> None:
        offline_orders, self._offline_upto = await self.spool.offline_orders()
        hello = self.link.connected(
            await self.spool.position(), self.clock.local_now(), offline_orders
        )
        await ws.send(encode_msgpack(hello))
        self._reports_sent = 0  # a new link: every unacknowledged report goes again
        closed: ConnectionClosed | SpoolError | None = None
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(self._send_reports(ws))
            try:
                await self._receive(ws)
            except (ConnectionClosed, SpoolError) as exc:
                closed = exc  # raised outside the group, so the caller sees it as it is
            finally:
                sender.cancel()
        if closed is not None:
            raise closed

    async def _receive(self, ws: ClientConnection) -> None:
        async for frame in ws:
            try:
                message = decode_msgpack(frame, STORE_BROKER, MAX_FRAME_BYTES * 16)  # type: ignore[arg-type]
            except ProtocolError as exc:
                log.error("broker sent an invalid frame: %s", exc.reason)
                await ws.close(exc.code, exc.reason)
                return
            was_online = self.link.phase is Phase.ONLINE
            if isinstance(message, Welcome) and message.now is not None:
                await self._observe_clock(message.now)
            batch = self.link.received(message)
            if isinstance(batch, ReportsDone):
                await self._reports_done(batch.seq)
            elif batch is not None:
                await self._make_durable(ws, batch)
            if not was_online and self.link.phase is Phase.ONLINE:
                self.link_since = datetime.now(UTC)
                if self._offline_upto:  # the hello's count reached a broker
                    await self.spool.offline_orders_told(self._offline_upto)
                    self._offline_upto = 0
                self._status_dirty |= set(self._statuses)
                self._report_wake.set()

    async def _observe_clock(self, broker_now: datetime) -> None:
        await self.spool.save_clock_reading(self.clock.observe(broker_now))
        if self.clock.skewed:
            log.warning("%s: expiry and reports use the broker's time", self.clock.describe())

    async def _make_durable(self, ws: ClientConnection, batch: Durable) -> None:
        fresh = await self.spool.apply(
            position=batch.position,
            jobs=batch.jobs,
            cancels=batch.cancels,
            config=batch.config,
            live=batch.live,
        )
        if batch.config is not None:
            self._apply_config(batch.config)
        elif not self.workers and self._config is not None:
            self._apply_config(self._config)  # back from standby: this client serves now
        ack = self.link.durable(batch)
        if ack is not None:
            await ws.send(encode_msgpack(ack))
        for printer_id in {job.printer_id for job in fresh}:
            self.wake(printer_id)

    async def _send_reports(self, ws: ClientConnection) -> None:
        """Job state reports from the outbox, then changed printer statuses, while online."""
        with contextlib.suppress(ConnectionClosed):  # the receiver sees the close too
            try:
                await self._report_loop(ws)
            except SpoolError as exc:
                log.error("spool read failed (%s): the link restarts", exc)
                await ws.close(CloseCode.INTERNAL_ERROR, "store client spool error")

    async def _report_loop(self, ws: ClientConnection) -> None:
        """Job reports stay in the outbox until the broker acknowledges them
        (``reports_ack``, DESIGN.md §8.2); unacknowledged ones are sent again on the
        next link, or on this one after ``REPORT_RESEND_S`` without progress."""
        loop = asyncio.get_running_loop()
        while True:
            # cleared before sending: a wake-up that comes while sending (an ack making
            # room, a status change) is not lost
            self._report_wake.clear()
            if self.link.phase is Phase.ONLINE:
                for printer_id in sorted(self._status_dirty):
                    self._status_dirty.discard(printer_id)
                    report = PrinterStatusReport(
                        printer_id=printer_id, status=self._statuses[printer_id]
                    )
                    await ws.send(encode_msgpack(report))
                if self._reports_sent and loop.time() - self._reports_progress > REPORT_RESEND_S:
                    log.warning("no acknowledgement for job reports: sending them again")
                    self._reports_sent = 0
                while room := self._report_room():
                    frames = await self.spool.outbox(after=self._reports_sent, limit=room)
                    if not frames:
                        break
                    if not self._reports_sent:
                        self._reports_progress = loop.time()
                        self._reports_acked = frames[0][0] - 1
                    for _, frame in frames:
                        await ws.send(frame)
                    self._reports_sent = frames[-1][0]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPORT_RESEND_S / 2 if self._reports_sent else 5.0):
                    await self._report_wake.wait()

    def _report_room(self) -> int:
        """How many more reports may go before an acknowledgement: at most
        ``REPORT_WINDOW`` unacknowledged, so a long outage's backlog (thousands of reports
        and LAN orders) goes up at the pace the broker applies it, never past its per-link
        message rate (4008)."""
        if not self._reports_sent:
            return REPORT_WINDOW
        return max(0, REPORT_WINDOW - (self._reports_sent - self._reports_acked))

    async def _reports_done(self, seq: int) -> None:
        await self.spool.outbox_done(seq)
        self._reports_progress = asyncio.get_running_loop().time()
        self._reports_acked = max(self._reports_acked, seq)
        if seq >= self._reports_sent:
            self._reports_sent = 0  # all sent are acknowledged (and gone from the outbox)
        self._report_wake.set()  # room for more

    # -- workers ------------------------------------------------------------------------------

    def _apply_config(self, config: VersionedStoreConfig) -> None:
        """Start, restart or stop workers so there is one per configured printer.

        Versions only move forward (DESIGN.md §8.2): a config older than the one in force
        (a node whose cache lagged sent it) is ignored; the spool keeps the newer one too."""
        if self._config is not None and config.version < self._config.version:
            log.info(
                "store=%s config version %d ignored: version %d is in force",
                config.store_id,
                config.version,
                self._config.version,
            )
            return
        self._config = config
        self.link.printers = tuple(p.printer_id for p in config.printers)
        wanted = {p.printer_id: p for p in config.printers}
        for printer_id in list(self.workers):
            if wanted.get(printer_id) != self.workers[printer_id].config:
                self._stop_worker(printer_id)
        for printer_id, printer in wanted.items():
            if printer_id not in self.workers:
                self._start_worker(printer)

    def _start_worker(self, printer: PrinterConfig) -> None:
        assert self._tg is not None
        worker = PrinterWorker(
            printer,
            self.spool,
            self,
            self.settings.workers,
            self.clock.now,
            expiry_clock=self.clock.expiry_now,
        )
        self.workers[printer.printer_id] = worker
        self._worker_tasks[printer.printer_id] = self._tg.create_task(
            self._run_worker(worker), name=f"printer-{printer.printer_id}"
        )

    async def _run_worker(self, worker: PrinterWorker) -> None:
        """A worker that crashes is logged and restarted: one printer never stops the rest."""
        while True:
            try:
                await worker.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("printer %s worker failed; restarting in 5s", worker.printer_id)
                await asyncio.sleep(5)

    def _stop_worker(self, printer_id: str) -> None:
        self.workers.pop(printer_id, None)
        task = self._worker_tasks.pop(printer_id, None)
        if task is not None:
            task.cancel()

    def _stop_workers(self) -> None:
        for printer_id in list(self.workers):
            self._stop_worker(printer_id)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(600)
            removed = await self.spool.prune()
            if removed:
                log.info("pruned %d old jobs from the spool", removed)

    # -- local status page --------------------------------------------------------------------

    async def _start_status_server(self) -> asyncio.Server:
        from store_client.status_page import serve_status

        server = await serve_status(self, self.settings.status_port or 0)
        self.status_port = server.sockets[0].getsockname()[1]
        return server

    async def _serve_forever(self, server: asyncio.Server) -> None:
        async with server:
            await server.serve_forever()
