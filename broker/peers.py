"""A peer's outgoing side: direct writes, a bounded backlog while the socket is busy
(DESIGN.md §5.3).

Producers (the hub, replies) never wait: ``offer`` writes a ready-made frame or queues it
or, when the backlog is full, closes the peer with 4001 (slow consumer) and drops what it
held — the client resumes from its offset, and the broker's memory never grows with one
slow peer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from dataclasses import dataclass

import msgpack
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import OPEN

from broker.auth import Claims
from broker.clock import Now, system_now
from broker.metrics import Metrics
from broker.session_board import BoardSession
from broker.session_kds import KdsSession
from broker.session_store import StoreSession, store_frame
from broker.storage import Entry, EntryKind
from protocol.close_codes import CloseCode
from protocol.codec import truncate_reason
from protocol.timezones import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

Frame = bytes | str


@dataclass(frozen=True)
class PeerOptions:
    queue_size: int
    close_timeout: float
    metrics: Metrics
    now: Now = system_now
    """When an entry went out (jobs become ``sent`` at that time on their ack)."""
    default_timezone: str = DEFAULT_TIMEZONE
    """Filled into configs sent to store clients that name no zone (DESIGN.md §8.7)."""


class Peer:
    """A peer's outgoing side. While the socket takes data, a frame is written at once
    (``offer`` → the websockets protocol → the transport): no queue, no task, no
    coroutine per frame. A queue and a sender task exist only while the socket is busy
    (its buffer above ``write_limit``) or before ``start``; an idle link holds neither,
    which is most of what a link cost beside the websockets connection itself."""

    def __init__(
        self, conn: ServerConnection, tasks: asyncio.TaskGroup, opts: PeerOptions, label: str
    ) -> None:
        self.conn = conn
        self.tasks = tasks
        self.queue: deque[tuple[Frame, Entry | None]] | None = None  # only while busy
        self.queue_size = opts.queue_size
        self.close_timeout = opts.close_timeout
        self.metrics = opts.metrics
        self.label = label
        self.sent_count = opts.metrics.sent.labels(label.partition(" ")[0])
        self.closing = False
        self.started = False
        self.high_water = 0
        self.sender: asyncio.Task[None] | None = None
        self.claims: Claims | None = None
        """The token the peer showed: checked again while the socket is open (4501)."""

    def offer(self, frame: Frame, entry: Entry | None = None) -> None:
        if self.closing:
            return
        if self.started and not self.queue and self._write_now(frame):
            self.sent_count.inc()
            if entry is not None:
                self.sent(entry)
            return
        if self.queue is None:
            self.queue = deque()
        elif len(self.queue) >= self.queue_size:
            log.warning("slow consumer %s: queue of %d full", self.label, self.queue_size)
            self.metrics.slow.inc()
            self.close_soon(CloseCode.SLOW_CONSUMER, "slow consumer: resume from your offset")
            return
        self.queue.append((frame, entry))
        self.high_water = max(self.high_water, len(self.queue))
        if self.started and self.sender is None:
            self.sender = self.tasks.create_task(self._send_loop())

    def _write_now(self, frame: Frame) -> bool:
        """Write ``frame`` without waiting if the socket takes it now (what
        ``ServerConnection.send`` does when it need not wait: frame it, hand the bytes to
        the transport); False when it must wait (buffer over the high-water mark, a
        fragmented send under way) or the connection is not open."""
        conn = self.conn
        if conn.paused or conn.send_in_progress is not None or conn.protocol.state is not OPEN:
            return False
        try:
            if isinstance(frame, str):
                conn.protocol.send_text(frame.encode())
            else:
                conn.protocol.send_binary(frame)
            conn.send_data()
        except (OSError, RuntimeError) as exc:  # the transport went away under us
            log.info("write failed %s: %s", self.label, exc)
            self.closing = True
            conn.transport.abort()  # the handler sees the connection closed; the client resumes
        return True

    def backlog(self) -> int:
        """Frames waiting for the socket."""
        return len(self.queue) if self.queue else 0

    def close_soon(self, code: CloseCode, reason: str) -> None:
        """Close from synchronous code (the hub's dispatch): drop the queue, close in a task."""
        if self.closing:
            return
        self.closing = True
        self.queue = None
        if self.sender is not None:
            self.sender.cancel()
        self.tasks.create_task(self.close(code, reason))

    async def close(self, code: CloseCode, reason: str) -> None:
        self.closing = True
        self.metrics.closes.labels(str(int(code))).inc()
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.conn.close(int(code), truncate_reason(reason))
        except TimeoutError:
            # The peer reads nothing, so it cannot even read the close frame.
            log.info("close timed out %s: aborting the connection", self.label)
            self.conn.transport.abort()

    def start(self) -> None:
        """Live frames may flow: what was queued meanwhile (after the welcome) goes first."""
        self.started = True
        if self.queue and self.sender is None:
            self.sender = self.tasks.create_task(self._send_loop())

    def stop(self) -> None:
        self.closing = True
        if self.sender is not None:
            self.sender.cancel()

    async def _send_loop(self) -> None:
        """Drain the queue at the socket's pace, then end (the next backlog starts one)."""
        try:
            while self.queue and not self.closing:
                frame, entry = self.queue.popleft()
                await self.conn.send(frame)
                self.sent_count.inc()
                if entry is not None:
                    self.sent(entry)
        except ConnectionClosed:
            return
        finally:
            self.sender = None
            if not self.queue:
                self.queue = None  # an empty deque holds 0.7 KiB

    def sent(self, entry: Entry) -> None:
        """Called after an entry's frame was written (store links track jobs)."""


class StorePeer(Peer):
    def __init__(
        self,
        session: StoreSession,
        conn: ServerConnection,
        tasks: asyncio.TaskGroup,
        opts: PeerOptions,
        label: str,
    ) -> None:
        super().__init__(conn, tasks, opts, label)
        self.session = session
        self.store_id = session.store_id
        self.link_id = secrets.token_hex(8)
        self.now = opts.now
        self.default_timezone = opts.default_timezone
        self._report_ack_due = False

    def deliver(self, entry: Entry) -> None:
        frame = store_frame(entry, self.default_timezone, self.session.protocol)
        if frame is not None:
            self.offer(frame, entry)

    def ack_reports(self) -> None:
        """Acknowledge the job reports applied so far: one ``reports_ack`` per loop turn,
        however many reports that turn applied."""
        if not self._report_ack_due:
            self._report_ack_due = True
            asyncio.get_running_loop().call_soon(self._send_report_ack)

    def _send_report_ack(self) -> None:
        self._report_ack_due = False
        seq = self.session.reports_applied
        self.offer(msgpack.packb({"type": "reports_ack", "seq": seq}, use_bin_type=True))

    def reset(self) -> None:
        self.close_soon(CloseCode.TRY_AGAIN_LATER, "stream reset: reconnect")

    def sent(self, entry: Entry) -> None:
        self.session.sent(entry, self.now())


class KdsPeer(Peer):
    def __init__(
        self,
        session: KdsSession,
        conn: ServerConnection,
        tasks: asyncio.TaskGroup,
        opts: PeerOptions,
        label: str,
    ) -> None:
        super().__init__(conn, tasks, opts, label)
        self.session = session
        self.store_id = session.store_id

    def deliver(self, entry: Entry) -> None:
        if entry.tag != self.session.station.station_id or self.closing:
            return
        for frame in self.session.frames(entry):
            self.offer(frame)

    def reset(self) -> None:
        self.close_soon(CloseCode.TRY_AGAIN_LATER, "stream reset: reconnect")


class HqPeer(Peer):
    def deliver_hq(self, frame: str) -> None:
        self.offer(frame)


class BoardPeer(Peer):
    """A pickup board (``ws_board.py``). Entries that come before its snapshot went out
    are kept (as entries: what they mean depends on the snapshot's state) and applied
    right after it; more than ``queue_size`` of them close the link (4001)."""

    def __init__(
        self,
        session: BoardSession,
        conn: ServerConnection,
        tasks: asyncio.TaskGroup,
        opts: PeerOptions,
        label: str,
    ) -> None:
        super().__init__(conn, tasks, opts, label)
        self.session = session
        self.store_id = session.store_id
        self.now = opts.now
        self.kinds = frozenset(
            {EntryKind.CONFIG, EntryKind.ORDER if session.expo else EntryKind.TICKET}
        )
        self.early: list[Entry] | None = []

    def deliver(self, entry: Entry) -> None:
        if self.closing or entry.kind not in self.kinds:
            return
        if self.early is None:
            self._take(entry)
        elif len(self.early) < self.queue_size:
            self.early.append(entry)
        else:
            self.close_soon(CloseCode.SLOW_CONSUMER, "too much came in before the snapshot")

    def begin(self) -> None:
        """The snapshot went out: what came meanwhile follows, then live entries."""
        early, self.early = self.early or [], None
        for entry in early:
            self._take(entry)
        self.start()

    def _take(self, entry: Entry) -> None:
        if self.session.outdated_by(entry):
            self.close_soon(CloseCode.TRY_AGAIN_LATER, "the store's config changed: reconnect")
            return
        for frame in self.session.frames(entry, self.now()):
            self.offer(frame)

    def reset(self) -> None:
        self.close_soon(CloseCode.TRY_AGAIN_LATER, "stream reset: reconnect")
