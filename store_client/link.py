"""The store link's state machine, sans I/O (STYLE.md: the asyncio layer only pumps).

Messages in, effects out. The pump (``store_client.daemon``) performs each effect: it
writes stream messages to the spool and only then asks for the ack, so an ack always means
"durable here" (DESIGN.md §4).

A snapshot (``recovered: false``) arrives in pages (DESIGN.md §8.2): each page is spooled
as it comes, without moving the stream position; ``snapshot_end`` carries the position,
and the set of job ids the pages held is the broker's whole live set, so spooled jobs the
broker no longer has live (cancelled during an outage) are dropped instead of printed.

No close code stops the client for good (§8.2): a "terminal" one is logged and retried
slowly; 4503 (another client took this store over) also stops printing until this client
holds the store again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from protocol.base import StreamPosition
from protocol.close_codes import CloseCode, is_retryable
from protocol.config import VersionedStoreConfig
from protocol.jobs import Job
from protocol.messages.store import (
    Ack,
    CancelJob,
    ConfigMessage,
    Error,
    Hello,
    JobMessage,
    ReportsAck,
    SnapshotEnd,
    SnapshotPage,
    StoreBrokerMessage,
    Welcome,
)
from protocol.version import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS
from store_client.backoff import Backoff


class Phase(StrEnum):
    DISCONNECTED = "disconnected"
    HELLO_SENT = "hello_sent"
    SNAPSHOT = "snapshot"  # a paged snapshot is arriving
    ONLINE = "online"
    STANDBY = "standby"  # another client holds the store (4503): do not print


#: Delay before retrying after a close code that reconnecting right away cannot heal
#: (bad token, protocol refused, taken over): someone has to act, but the daemon stays up.
TERMINAL_RETRY_S = 300.0
#: The longest ``Retry-After`` the client honours: a broker asking for more still gets a
#: try every five minutes.
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True, slots=True)
class Durable:
    """Write these to the spool in one transaction, then call ``Link.durable``."""

    position: StreamPosition | None
    """The stream position the batch completes (None: a snapshot page, nothing to ack)."""
    jobs: tuple[Job, ...] = ()
    cancels: tuple[str, ...] = ()
    config: VersionedStoreConfig | None = None
    live: frozenset[str] | None = None
    """A completed snapshot: the broker's whole live set. Spooled jobs not in it and not
    yet printing are dropped (cancelled while this client was away)."""

    @property
    def snapshot(self) -> bool:
        return self.live is not None


@dataclass(frozen=True, slots=True)
class ReportsDone:
    """The broker applied every job report up to ``seq``: drop them from the outbox."""

    seq: int


@dataclass(frozen=True, slots=True)
class Reconnect:
    delay_s: float
    code: int | None = None
    reason: str = ""

    @property
    def standby(self) -> bool:
        """Stop printing until this client holds the store again (4503)."""
        return self.code == CloseCode.TAKEN_OVER


@dataclass
class Link:
    store_id: str
    client_version: str
    printers: tuple[str, ...]
    backoff: Backoff = field(default_factory=Backoff)
    phase: Phase = Phase.DISCONNECTED
    epoch: str | None = None
    resume: StreamPosition | None = None
    last_error: str | None = None
    client_id: str | None = None
    protocol: int = PROTOCOL_VERSION
    """What ``hello`` announces: this build's, or an older one a broker asked for."""
    _snapshot: set[str] = field(default_factory=set)

    def connected(
        self,
        position: StreamPosition | None,
        clock: datetime | None = None,
        offline_orders: int = 0,
    ) -> Hello:
        """The socket is open: say hello, resuming from the spool's position."""
        self.phase = Phase.HELLO_SENT
        self.epoch = position.epoch if position else None
        self.resume = position
        return Hello(
            store_id=self.store_id,
            client_version=self.client_version,
            resume=position,
            printers=self.printers,
            client_id=self.client_id,
            clock=clock,
            offline_orders=offline_orders,
            protocol=self.protocol,
        )

    def received(self, message: StoreBrokerMessage) -> Durable | ReportsDone | None:
        """A decoded broker message; returns what must become durable, if anything."""
        if isinstance(message, Welcome):
            return self._welcome(message)
        if isinstance(message, ReportsAck):
            return ReportsDone(message.seq)
        if self.phase is Phase.SNAPSHOT and isinstance(message, SnapshotPage | SnapshotEnd):
            return self._snapshot_frame(message)
        if self.phase is not Phase.ONLINE or self.epoch is None:
            self.last_error = f"{message.type} before welcome"
            return None
        position = StreamPosition(epoch=self.epoch, offset=getattr(message, "offset", 0))
        if isinstance(message, JobMessage):
            return Durable(position, jobs=(message.job,))
        if isinstance(message, CancelJob):
            return Durable(position, cancels=(message.job_id,))
        if isinstance(message, ConfigMessage):
            return Durable(position, config=message.config)
        if isinstance(message, Error):
            self.last_error = f"{message.code}: {message.message}"
        return None

    def _welcome(self, message: Welcome) -> Durable:
        self.phase = Phase.ONLINE
        self.epoch = message.epoch
        self.backoff.reset()
        if message.recovered and self.resume is not None and self.resume.epoch == message.epoch:
            # The missed messages follow; our position moves only as they are spooled.
            return Durable(self.resume, config=message.config)
        if message.paged:
            self.phase = Phase.SNAPSHOT
            self._snapshot = set()
            return Durable(None, config=message.config)
        head = StreamPosition(epoch=message.epoch, offset=message.offset)
        live = frozenset(job.job_id for job in message.jobs)
        return Durable(head, jobs=message.jobs, config=message.config, live=live)

    def _snapshot_frame(self, message: SnapshotPage | SnapshotEnd) -> Durable | None:
        assert self.epoch is not None
        if isinstance(message, SnapshotPage):
            self._snapshot.update(job.job_id for job in message.jobs)
            return Durable(None, jobs=message.jobs)
        live, self._snapshot = frozenset(self._snapshot), set()
        self.phase = Phase.ONLINE
        if len(live) != message.count:
            # Pages went missing: never drop spooled jobs on an incomplete live set.
            self.last_error = f"snapshot held {len(live)} jobs, broker sent {message.count}"
            return Durable(StreamPosition(epoch=self.epoch, offset=message.offset))
        return Durable(StreamPosition(epoch=self.epoch, offset=message.offset), live=live)

    def durable(self, batch: Durable) -> Ack | None:
        """The batch is in the spool: acknowledge it (cumulatively)."""
        if self.phase is not Phase.ONLINE or batch.position is None:
            return None
        return Ack(offset=batch.position.offset)

    def closed(
        self, code: int | None, reason: str = "", retry_after_s: float | None = None
    ) -> Reconnect:
        """The socket closed (``code`` None: it never opened or just died).

        ``retry_after_s``: the broker refused the handshake with ``Retry-After`` (429 or 503:
        too many hellos, too many connections, draining). The next try waits at least that
        long (at most ``MAX_RETRY_AFTER_S``), plus up to a fifth more so the stores a
        broker turned away together do not come back together."""
        reconnect = self._closed(code, reason)
        if retry_after_s is None or retry_after_s <= 0:
            return reconnect
        wait = min(retry_after_s, MAX_RETRY_AFTER_S)
        wait *= self.backoff.rng.uniform(1.0, 1.2)
        return Reconnect(max(reconnect.delay_s, wait), code, reason)

    def _closed(self, code: int | None, reason: str) -> Reconnect:
        self.phase = Phase.DISCONNECTED
        if code == CloseCode.PROTOCOL_UNSUPPORTED and reason.startswith("protocol "):
            if self.protocol > min(SUPPORTED_PROTOCOLS):
                # a broker not yet upgraded: speak the previous version to it, at once
                self.protocol -= 1
                return Reconnect(self.backoff.rng.uniform(0.05, 0.5), code, reason)
        if code is not None and not is_retryable(code):
            if code == CloseCode.TAKEN_OVER:
                self.phase = Phase.STANDBY
            delay = self.backoff.rng.uniform(0.5, 1.0) * TERMINAL_RETRY_S
            return Reconnect(delay, code, reason)
        if code == CloseCode.SERVER_RESTART:
            # The node drains: another one is ready now, but spread the stampede.
            return Reconnect(self.backoff.rng.uniform(0.05, 1.0), code, reason)
        return Reconnect(self.backoff.next_delay(), code, reason)
