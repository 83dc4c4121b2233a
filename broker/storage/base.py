"""The storage seam (DESIGN.md §5.5): one small interface, three backends.

A backend keeps, per store, one ordered **stream** (epoch + monotonic offsets), a set
of **records** (order, ticket, job, expo, config, printer, link) with optimistic versions,
and **tallies**: fields of marks that commits append to (the speed-of-service report,
docs/reports.md). Everything one request changes goes into one ``Tx`` and lands
atomically: the version checks, the record writes, the tally marks and the stream
appends. That is what a Redis backend does in
one Lua script on the store's hash slot, and what SQLite does in one transaction.

Records and stream payloads are JSON text: the broker serialises pydantic models once and
backends never look inside them (Redis stores the same strings).

``Wakeups`` is the "notify the node that holds a store's connection" part: after a commit
the backend calls the listener with the store id, epoch, head offset and, when it has
them, the new entries (in-process backends always do; Redis sends only ``offset:epoch``
and the hub reads the gap from the stream).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from broker.storage.denylist import DenyList
from broker.storage.leases import InProcessLeases, Leases
from broker.storage.outbox import Outbox

log = logging.getLogger(__name__)

#: Records are identified by (kind, key); keys are global within a kind.
DEFAULT_STREAM_MAX_LEN = 10_000


class Kind(StrEnum):
    CONFIG = "config"  # key: store_id
    ORDER = "order"  # key: order_id
    TICKET = "ticket"  # key: ticket_id
    JOB = "job"  # key: job_id
    EXPO = "expo"  # key: order_id (only for stores with an expo station)
    PRINTER = "printer"  # key: store_id/printer_id
    LINK = "link"  # key: store_id
    BASE = "base"  # key: store_id — the config as PUT, before releases (docs/rollout.md)
    RELEASE = "release"  # key: release_id, store ROLLOUT_STORE
    SCHEDULE = "schedule"  # key: order_id; live while the order is held (scheduled)


class EntryKind(StrEnum):
    """What a stream entry carries; see docs/broker.md for who receives which."""

    JOB = "job"  # payload: Job; tag: job_id
    CANCEL = "cancel"  # payload: {"job_id": …}
    CONFIG = "config"  # payload: VersionedStoreConfig
    TICKET = "ticket"  # payload: Ticket; tag: station_id
    ORDER = "order"  # payload: ExpoOrder (expo roll-up); tag: expo station_id


#: Where fleet-wide rollout records live: not a store id (store ids start alphanumeric).
ROLLOUT_STORE = "_rollout"

STORE_LINK_KINDS = frozenset({EntryKind.JOB, EntryKind.CANCEL, EntryKind.CONFIG})


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    key: str
    store_id: str
    version: int
    doc: str
    """JSON text."""
    live: bool
    """Live records are listed by ``scan(live_only=True)``: active tickets, unfinished jobs."""


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``doc`` at ``version`` if the record's current version is ``expect`` (0 = absent)."""

    kind: Kind
    key: str
    doc: str
    version: int
    expect: int
    live: bool = True


@dataclass(frozen=True, slots=True)
class NewEntry:
    kind: EntryKind
    payload: str
    """JSON text of the entry's model."""
    tag: str = ""
    """Routing hint read without parsing the payload (a ticket's station)."""


@dataclass(slots=True)
class Entry:
    """A committed stream entry. Shared by every peer it goes to: never mutate it."""

    offset: int
    kind: EntryKind
    payload: str
    tag: str = ""
    frames: dict[str, bytes | str] = field(default_factory=dict)
    """Encoded frames cached by the websocket layer (encode once, send to many)."""


@dataclass(frozen=True, slots=True)
class Tally:
    """Append ``mark`` to field ``field`` of the store's tally ``key``.

    A field's marks are a multiset: their order means nothing, so appends commute and a
    tally takes no version. Many writers append to one key without conflicting, and each
    append is as small as its mark. It is applied with the rest of its ``Tx`` (a version
    conflict anywhere in the ``Tx`` appends nothing): a mark written in the same ``Tx``
    as the event it records records that event exactly once."""

    key: str
    field: str
    mark: str


@dataclass(frozen=True, slots=True)
class Tx:
    puts: Sequence[Put] = ()
    entries: Sequence[NewEntry] = ()
    tallies: Sequence[Tally] = ()


@dataclass(frozen=True, slots=True)
class Committed:
    epoch: str
    head: int
    offsets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StreamSlice:
    epoch: str
    first: int
    """Oldest offset still held; ``head + 1`` when the stream holds nothing."""
    head: int
    entries: list[Entry]


#: (store_id, epoch, head, entries-or-empty) called in commit order, on the event loop.
Listener = Callable[[str, str, int, Sequence[Entry]], None]


class Storage(Protocol):
    async def commit(self, store_id: str, tx: Tx) -> Committed:
        """Apply ``tx`` atomically once durable; ``VersionConflict`` changes nothing."""
        ...

    async def get(self, kind: Kind, key: str, store_id: str | None = None) -> Record | None:
        """One record; ``store_id``, when the caller knows it, saves redis an id lookup (a
        record of another store is then not found)."""
        ...

    async def get_many(
        self, kind: Kind, keys: Sequence[str], store_id: str | None = None
    ) -> list[Record | None]:
        """Several records of one kind at once (one round trip on redis)."""
        ...

    async def scan(self, store_id: str | None, kind: Kind, live_only: bool = True) -> list[Record]:
        """Records of one store (or every store when ``store_id`` is None)."""
        ...

    async def store_ids(self) -> list[str]:
        """Every store that may have a config, sorted (at least those that have one): the
        fleet views page through it instead of reading every store's records at once."""
        ...

    async def printer_keys_in_state(self, state: str) -> list[str] | None:
        """The keys (``store/printer``) of the printer records whose status is ``state``,
        in no order; None when this backend keeps no such index (then callers read every
        store's printers)."""
        ...

    async def read(self, store_id: str, after: int, limit: int) -> StreamSlice:
        """Entries with ``offset > after`` in order, at most ``limit``."""
        ...

    async def tallies(self, store_id: str, keys: Sequence[str]) -> list[dict[str, str]]:
        """Each of the store's tally ``keys`` as field -> its marks, concatenated (``{}``
        for a key never written, or expired), in ``keys`` order; one round trip on redis."""
        ...

    async def aclose(self) -> None:
        """Flush and close; later calls fail with ``StorageError``."""
        ...


class Wakeups(Protocol):
    def listen(self, listener: Listener) -> None:
        """Set the one function told about every commit to a watched store."""
        ...

    async def watch(self, store_id: str) -> None:
        """This node holds a connection for the store: wake it on commits."""
        ...

    async def unwatch(self, store_id: str) -> None: ...

    async def ping(self) -> None:
        """Readiness: raise ``StorageError`` when the backend is unreachable."""
        ...

    # HQ deltas go to the HQ screens of every node sharing the storage.
    def listen_hq(self, listener: Callable[[str], None]) -> None: ...

    def watch_hq(self, on: bool) -> None:
        """Whether this node has HQ screens (only then does it read the deltas)."""
        ...

    def publish_hq(self, frame: str) -> None: ...

    async def claim_dead_nodes(self) -> list[str]:
        """Broker nodes that stopped without draining; each is claimed by one node."""
        ...


class Backend(Storage, Wakeups, Leases, Protocol):
    """What ``open_storage`` returns: both seams, one object."""

    shared: bool
    """Other broker nodes use the same data (redis): presence is not this node's alone."""
    node_id: str
    denylist: DenyList
    outbox: Outbox
    """Webhook subscriptions and deliveries (``storage.outbox``)."""
    """Revoked token ids, shared by every node on the same data (``storage.denylist``)."""


def of_store(record: Record | None, store_id: str | None) -> Record | None:
    """``record`` unless a store was named and the record belongs to another one."""
    if record is None or store_id is None or record.store_id == store_id:
        return record
    return None


def notify(
    listener: Listener | None, store_id: str, c: Committed, entries: Sequence[Entry]
) -> None:
    """Tell the listener about a commit; its failure is logged, never the committer's."""
    if not entries or listener is None:
        return
    try:
        listener(store_id, c.epoch, c.head, entries)
    except Exception:
        log.exception("storage listener failed store=%s", store_id)


GROUP_WAIT_S = 0.002  # under load, how long a group of commits gathers before it is written
BUSY_GAP_S = 0.010  # "under load": the previous group started less than this ago


class Gathering:
    """A writer's pause before it takes the waiting commits as one group: under load (the
    previous group began less than ``BUSY_GAP_S`` ago) it waits ``wait_s`` so the group
    fills; a lone commit after a quiet spell goes at once. A group has a cost of its own
    whatever its size (docs/broker.md, "Under load a group gathers first")."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = max(0.0, wait_s)
        self.last = -math.inf

    async def pause(self, closing: bool) -> None:
        loop = asyncio.get_running_loop()
        if self.wait_s and not closing and loop.time() - self.last < BUSY_GAP_S:
            await asyncio.sleep(self.wait_s)
        self.last = loop.time()


def settle(future: asyncio.Future[Committed], outcome: Committed | BaseException) -> None:
    """Answer a waiting committer (unless it already gave up)."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class InProcess(InProcessLeases):
    """What the in-process backends share: one node, so every commit reaches the listener
    directly (nothing to subscribe to) and HQ deltas stay in the process."""

    shared = False
    node_id = "local"
    _listener: Listener | None = None
    _hq_listener: Callable[[str], None] | None = None

    async def get(self, kind: Kind, key: str, store_id: str | None = None) -> Record | None:
        raise NotImplementedError

    async def get_many(
        self, kind: Kind, keys: Sequence[str], store_id: str | None = None
    ) -> list[Record | None]:
        """Point reads are in-process and cheap: one at a time."""
        return [await self.get(kind, key, store_id) for key in keys]

    async def printer_keys_in_state(self, state: str) -> list[str] | None:
        return None  # the memory backend reads every store's printers

    def listen(self, listener: Listener) -> None:
        self._listener = listener

    async def watch(self, store_id: str) -> None:
        """Every commit already reaches the listener: nothing to subscribe to."""

    async def unwatch(self, store_id: str) -> None:
        """See ``watch``."""

    def listen_hq(self, listener: Callable[[str], None]) -> None:
        self._hq_listener = listener

    def watch_hq(self, on: bool) -> None:
        """Deltas are handed over directly: nothing to read."""

    def publish_hq(self, frame: str) -> None:
        if self._hq_listener is not None:
            self._hq_listener(frame)

    async def claim_dead_nodes(self) -> list[str]:
        return []
