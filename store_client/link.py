"""The store link's state machine, sans I/O (STYLE.md: the asyncio layer only pumps).

Messages in, effects out. The pump (``store_client.daemon``) performs each effect: it
writes stream messages to the spool and only then asks for the ack, so an ack always means
"durable here" (DESIGN.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    StoreBrokerMessage,
    Welcome,
)
from store_client.backoff import Backoff


class Phase(StrEnum):
    DISCONNECTED = "disconnected"
    HELLO_SENT = "hello_sent"
    ONLINE = "online"
    STOPPED = "stopped"  # terminal close: a person must act


@dataclass(frozen=True, slots=True)
class Durable:
    """Write these to the spool in one transaction, then call ``Link.durable``."""

    position: StreamPosition
    jobs: tuple[Job, ...] = ()
    cancels: tuple[str, ...] = ()
    config: VersionedStoreConfig | None = None
    snapshot: bool = False
    """True after ``recovered: false``: the jobs are the broker's full live set."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    delay_s: float


@dataclass(frozen=True, slots=True)
class Stop:
    code: int
    reason: str


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

    def connected(self, position: StreamPosition | None) -> Hello:
        """The socket is open: say hello, resuming from the spool's position."""
        self.phase = Phase.HELLO_SENT
        self.epoch = position.epoch if position else None
        self.resume = position
        return Hello(
            store_id=self.store_id,
            client_version=self.client_version,
            resume=position,
            printers=self.printers,
        )

    def received(self, message: StoreBrokerMessage) -> Durable | None:
        """A decoded broker message; returns what must become durable, if anything."""
        if isinstance(message, Welcome):
            return self._welcome(message)
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
        head = StreamPosition(epoch=message.epoch, offset=message.offset)
        return Durable(head, jobs=message.jobs, config=message.config, snapshot=True)

    def durable(self, batch: Durable) -> Ack | None:
        """The batch is in the spool: acknowledge it (cumulatively)."""
        if self.phase is not Phase.ONLINE:
            return None
        return Ack(offset=batch.position.offset)

    def closed(self, code: int | None, reason: str = "") -> Reconnect | Stop:
        """The socket closed (``code`` None: it never opened or just died)."""
        if code is not None and not is_retryable(code):
            self.phase = Phase.STOPPED
            return Stop(code, reason)
        self.phase = Phase.DISCONNECTED
        if code == CloseCode.SERVER_RESTART:
            # The node drains: another one is ready now, but spread the stampede.
            return Reconnect(self.backoff.rng.uniform(0.05, 1.0))
        return Reconnect(self.backoff.next_delay())
