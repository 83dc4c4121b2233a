"""The store link's per-connection core (sans-I/O): decoded messages in, decisions out.

It never touches a socket, the clock or storage (times, and what storage said, are passed
in). ``ws_store.py`` pumps it.

A link opens (DESIGN.md §4, §8.2) as an ``Opening``: told where the hub attached the link
(epoch, head) and the oldest offset storage still holds, it decides ``Resume.REPLAY`` or
``Resume.SNAPSHOT`` and builds the ``welcome``. Both ways then read the stream with one
kind of ``StreamWalk``: the pump reads a page after ``walk.after`` while that is not None
and tells the walk with ``page_read``. A replay walk goes from the client's offset to the
head, answers each page with the ``Frames`` to send and refuses on a gap; a scan walk reads
the whole retained stream, past the head, for the offsets of the snapshot's jobs.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

import msgpack

from broker.errors import BrokerError
from broker.storage import Entry, EntryKind, StreamSlice
from broker.storage.leases import Holder
from protocol.close_codes import CloseCode
from protocol.compat import config_for, job_for
from protocol.config import VersionedStoreConfig
from protocol.messages.store import Hello, Welcome
from protocol.version import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS

MAX_UNACKED = 10_000  # sent jobs remembered until acked; older ones stay "sent"
FRAME_KEY = "store"
#: A snapshot page stays under the default frame limit (64 KiB) of any peer (§8.2).
SNAPSHOT_PAGE_BYTES = 48 * 1024
#: Live jobs a snapshot leaves out: their bytes may have left for the printer already, so
#: resending them could print twice; the client that printed them reports the outcome.
NOT_RESENT = frozenset({"printing"})


class Resume(Enum):
    REPLAY = "replay"  # recovered: send the entries after the client's offset
    SNAPSHOT = "snapshot"  # not recoverable: live jobs + config


@dataclass(frozen=True)
class Refusal:
    code: CloseCode
    reason: str


def check_hello(hello: Hello, token_store: str | None) -> Refusal | None:
    if hello.protocol not in SUPPORTED_PROTOCOLS:
        return Refusal(CloseCode.PROTOCOL_UNSUPPORTED, f"protocol {hello.protocol} unsupported")
    if token_store != hello.store_id:
        return Refusal(CloseCode.POLICY, "token is not for this store")
    return None


def version_key(version: str) -> tuple[int, ...]:
    """``0.9.1`` (or ``passline-store/0.9.1-rc1``) as (0, 9, 1); () when there is none."""
    found = re.search(r"(\d+(?:\.\d+)*)", version.rsplit("/", 1)[-1])
    return tuple(int(p) for p in found.group(1).split(".")) if found else ()


def too_old(client_version: str, minimum: str) -> Refusal | None:
    """A client older than the store's ``min_client_version`` (docs/rollout.md)."""
    want = version_key(minimum)
    have = version_key(client_version)
    width = max(len(want), len(have))
    if have and have + (0,) * (width - len(have)) >= want + (0,) * (width - len(want)):
        return None
    return Refusal(
        CloseCode.PROTOCOL_UNSUPPORTED,
        f"store client {client_version[:30]} is older than {minimum}, the oldest this store "
        "takes: upgrade it",
    )


def recovery(hello: Hello, stream: StreamSlice) -> Resume:
    """DESIGN.md §4 (Centrifugo rule): replay if same epoch and history is still there."""
    pos = hello.resume
    if pos is None or pos.epoch != stream.epoch:
        return Resume.SNAPSHOT
    if pos.offset > stream.head or pos.offset + 1 < stream.first:
        return Resume.SNAPSHOT
    return Resume.REPLAY


def store_frame(
    entry: Entry, default_timezone: str, protocol: int = PROTOCOL_VERSION
) -> bytes | None:
    """The msgpack frame of an entry for a store client speaking ``protocol`` (encoded
    once per entry and protocol). A config names the store's time zone:
    ``default_timezone`` where it names none (as in ``config_cache.zoned``; DESIGN.md §8.7)."""
    if entry.kind not in (EntryKind.JOB, EntryKind.CANCEL, EntryKind.CONFIG):
        return None
    key = FRAME_KEY if protocol >= PROTOCOL_VERSION else f"{FRAME_KEY}/{protocol}"
    cached = entry.frames.get(key)
    if isinstance(cached, bytes):
        return cached
    body = json.loads(entry.payload)
    if entry.kind is EntryKind.JOB:
        msg = {"type": "job", "offset": entry.offset, "job": job_for(protocol, body)}
    elif entry.kind is EntryKind.CANCEL:
        msg = {"type": "cancel", "offset": entry.offset, "job_id": body["job_id"]}
    else:
        if body.get("timezone") is None:
            body["timezone"] = default_timezone
        msg = {"type": "config", "offset": entry.offset, "config": config_for(protocol, body)}
    frame: bytes = msgpack.packb(msg, use_bin_type=True)
    entry.frames[key] = frame
    return frame


def welcome_frame(welcome: Welcome, protocol: int) -> bytes:
    """``welcome`` for a client speaking ``protocol`` (``protocol.compat``)."""
    data = welcome.model_dump(mode="json")
    if data.get("config") is not None:
        data["config"] = config_for(protocol, data["config"])
    data["jobs"] = [job_for(protocol, j) for j in data.get("jobs", ())]
    frame: bytes = msgpack.packb(data, use_bin_type=True)
    return frame


@dataclass(frozen=True)
class SnapshotJob:
    """A live job as the snapshot needs it: raw wire dict, no model round trip."""

    job_id: str
    offset: int
    state: str
    job: dict[str, object]


def snapshot_jobs(docs: Iterable[str], offsets: dict[str, int]) -> list[SnapshotJob]:
    """Live job records (JSON docs) in stream order: by the ``offsets`` the stream holds.
    A job it does not hold is either older (trimmed from it: those go first) or newer
    (committed while it was read: those go last), told apart by ``created_at``."""
    found: list[SnapshotJob] = []
    missing: list[SnapshotJob] = []
    for doc in docs:
        rec = json.loads(doc)
        job = rec["job"]
        offset = offsets.get(job["job_id"], 0)
        (found if offset else missing).append(SnapshotJob(job["job_id"], offset, rec["state"], job))
    found.sort(key=lambda j: j.offset)
    missing.sort(key=lambda j: (_created(j), j.job_id))
    oldest = min((_created(j) for j in found), default=None)
    older = [j for j in missing if oldest is None or _created(j) < oldest]
    newer = [j for j in missing if oldest is not None and _created(j) >= oldest]
    return [*older, *found, *newer]


def _created(job: SnapshotJob) -> datetime:
    return datetime.fromisoformat(str(job.job["created_at"]))


def snapshot_pages(
    jobs: Iterable[SnapshotJob],
    page_bytes: int = SNAPSHOT_PAGE_BYTES,
    protocol: int = PROTOCOL_VERSION,
) -> Iterator[tuple[bytes, list[str]]]:
    """``snapshot`` frames of at most ``page_bytes`` each (one job per page at least),
    with the job ids each holds."""
    packer = msgpack.Packer(use_bin_type=True)
    head = packer.pack("type") + packer.pack("snapshot") + packer.pack("jobs")
    page: list[bytes] = []
    ids: list[str] = []
    size = len(head) + 16
    for job in jobs:
        packed = packer.pack(job_for(protocol, job.job))
        if page and size + len(packed) > page_bytes:
            yield _page(packer, head, page), ids
            page, ids, size = [], [], len(head) + 16
        page.append(packed)
        ids.append(job.job_id)
        size += len(packed)
    if page:
        yield _page(packer, head, page), ids


def _page(packer: msgpack.Packer, head: bytes, jobs: list[bytes]) -> bytes:
    return packer.pack_map_header(2) + head + packer.pack_array_header(len(jobs)) + b"".join(jobs)


# -- the opening: hello → recovery → welcome → replay or snapshot -----------------------

#: A replay found the history it was sending no longer all there (trimmed, or the stream
#: was recreated, while the link opened): the client reconnects and recovers anew.
HISTORY_MOVED = Refusal(CloseCode.TRY_AGAIN_LATER, "history moved: reconnect")


@dataclass(frozen=True, slots=True)
class Frames:
    """Replayed frames to send in stream order, each with the entry it encodes: once one
    is sent, ``StoreSession.sent`` is told (with the time it went)."""

    sends: tuple[tuple[Entry, bytes], ...] = ()


class Walk(Enum):
    REPLAY = "replay"  # from the client's offset to the head: frames; a gap refuses
    SCAN = "scan"  # the whole retained stream, past the head: where each job is


@dataclass
class StreamWalk:
    """One read of a store's stream, a page at a time: the pump reads the entries after
    ``after`` (a page of ``REPLAY_BATCH``) while it is not None and hands each page to
    ``page_read``. Make one with ``StreamWalk.replay`` or ``StreamWalk.scan``."""

    kind: Walk
    head: int
    """The welcome's offset: where the hub attached the link."""
    after: int | None
    """The offset to read after next; None when the walk is done."""
    timezone: str = "UTC"
    protocol: int = PROTOCOL_VERSION
    job_offsets: dict[str, int] = field(default_factory=dict)
    """What a scan found: each job's offset in the stream (for ``snapshot_jobs``)."""

    @classmethod
    def replay(
        cls, after: int, head: int, timezone: str, protocol: int = PROTOCOL_VERSION
    ) -> StreamWalk:
        """The entries after the client's ``after`` up to ``head``, as frames for a client
        speaking ``protocol`` (``timezone``: see ``store_frame``). Entries past the head
        are not its to send: the hub sends them, after the opening."""
        return cls(Walk.REPLAY, head, after if after < head else None, timezone, protocol)

    @classmethod
    def scan(cls, head: int, wanted: int) -> StreamWalk:
        """Where the stream holds each of the ``wanted`` live jobs (none wanted: nothing to
        read). From the oldest entry still held to the end, past ``head``: jobs committed
        since the attach are in the record scan as well."""
        return cls(Walk.SCAN, head, 0 if wanted else None)

    def page_read(self, entries: Sequence[Entry]) -> Frames | Refusal:
        """The page read after ``after``: the frames to send now (a scan sends none), or the
        refusal that ends the link. ``after`` then says what to read next."""
        if self.after is None:
            raise BrokerError("expected no more pages: the stream walk is done")
        if self.kind is Walk.SCAN:
            return self._scanned(entries)
        return self._replayed(self.after, entries)

    def _replayed(self, after: int, entries: Sequence[Entry]) -> Frames | Refusal:
        if not entries or entries[0].offset != after + 1:
            self.after = None
            return HISTORY_MOVED
        sends: list[tuple[Entry, bytes]] = []
        for entry in entries:
            if entry.offset > self.head:  # committed since the attach: the hub sends it
                self.after = None
                return Frames(tuple(sends))
            frame = store_frame(entry, self.timezone, self.protocol)
            if frame is not None:
                sends.append((entry, frame))
            after = entry.offset
        self.after = after if after < self.head else None
        return Frames(tuple(sends))

    def _scanned(self, entries: Sequence[Entry]) -> Frames:
        if not entries:
            self.after = None
            return Frames()
        for entry in entries:
            if entry.kind is EntryKind.JOB:
                self.job_offsets[entry.tag] = entry.offset  # a job entry's tag: its id
        self.after = entries[-1].offset
        return Frames()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a snapshot sends (live jobs in stream order, none ``NOT_RESENT``), and the
    jobs to report ``uncertain`` before it: a client with an empty spool (new PC, wiped
    disk) cannot say how the jobs it was printing ended, and they are never reprinted by
    themselves."""

    jobs: list[SnapshotJob]
    lost: list[SnapshotJob]


@dataclass
class Opening:
    """A store link's opening (DESIGN.md §4, §8.2): it decides, the pump performs. Tell it
    where the hub attached the link (``attached``); send the ``welcome`` it builds; then
    walk the stream with its ``replay``, or ``scan`` for the ``snapshot``."""

    hello: Hello
    foreign: bool = False
    """Another client held the store last: it gets a snapshot, whatever its resume says
    (a replay from another PC's old position would resend what the first one printed)."""
    mode: Resume = Resume.SNAPSHOT
    epoch: str = ""
    head: int = 0

    @classmethod
    def after_takeover(cls, hello: Hello, previous: Holder | None) -> Opening:
        """The opening of ``hello``'s link, which took the store from ``previous`` (None:
        no link held it before)."""
        return cls(hello, previous is not None and not previous.same_client(hello.client_id))

    def attached(self, epoch: str, head: int, first: int) -> Resume:
        """The hub attached the link at ``head`` of ``epoch`` (it sends what follows);
        storage holds the stream from ``first``. Replay or snapshot (``recovery``)?"""
        self.epoch, self.head = epoch, head
        stream = StreamSlice(epoch, min(first, head + 1), head, [])
        replay = not self.foreign and recovery(self.hello, stream) is Resume.REPLAY
        self.mode = Resume.REPLAY if replay else Resume.SNAPSHOT
        return self.mode

    @property
    def recovered(self) -> bool:
        return self.mode is Resume.REPLAY

    def welcome(self, config: VersionedStoreConfig | None, now: datetime) -> Welcome:
        """Recovered: the missed entries follow; else the live jobs follow in pages."""
        return Welcome(
            epoch=self.epoch,
            offset=self.head,
            recovered=self.recovered,
            config=config,
            paged=not self.recovered,
            now=now,
        )

    def replay(self, timezone: str) -> StreamWalk:
        """The walk that sends what the client missed, after the welcome."""
        resume = self.hello.resume
        if not self.recovered or resume is None:
            raise BrokerError(f"expected a recovered opening, got {self.mode.value}")
        return StreamWalk.replay(resume.offset, self.head, timezone, self.hello.protocol)

    def scan(self, wanted: int) -> StreamWalk:
        """The walk that finds the stream order of the snapshot's ``wanted`` live jobs."""
        return StreamWalk.scan(self.head, wanted)

    def snapshot(self, docs: Iterable[str], scan: StreamWalk) -> Snapshot:
        """The live job records (JSON docs) as the snapshot sends them, once ``scan`` is
        done."""
        if scan.kind is not Walk.SCAN or scan.after is not None:
            raise BrokerError("expected a finished scan")
        jobs = snapshot_jobs(docs, scan.job_offsets)
        printing = [j for j in jobs if j.state in NOT_RESENT]
        lost = printing if self.hello.resume is None else []
        return Snapshot([j for j in jobs if j.state not in NOT_RESENT], lost)


class StoreSession:
    """What the broker remembers about one store link between messages."""

    def __init__(self, store_id: str, protocol: int = PROTOCOL_VERSION) -> None:
        self.store_id = store_id
        self.protocol = protocol
        """The protocol the client announced: what it is sent (``protocol.compat``)."""
        self.unacked: deque[tuple[int, str, datetime]] | None = None  # while jobs are unacked
        self.acked = 0
        self.last_sent = 0
        self.reports_applied = 0
        """The highest job report ``seq`` applied on this link (0: none yet)."""

    def report_order(self, seq: int) -> bool | None:
        """Reports apply in ``seq`` order (go-back-N, DESIGN.md §8.2): True to apply this
        one, False for a repeat (acknowledge again, apply nothing), None for one after a
        gap (an earlier report failed: drop it, the client sends it all again)."""
        if seq <= self.reports_applied:
            return False
        if self.reports_applied and seq != self.reports_applied + 1:
            return None
        return True

    def sent(self, entry: Entry, at: datetime) -> None:
        """An entry went out on the socket (jobs become ``sent`` on their ack)."""
        self.last_sent = max(self.last_sent, entry.offset)
        if entry.kind is EntryKind.JOB:
            self.sent_job(entry.offset, entry.tag, at)  # a job entry's tag: its id

    def sent_job(self, offset: int, job_id: str, at: datetime) -> None:
        if self.unacked is None:
            self.unacked = deque(maxlen=MAX_UNACKED)
        self.unacked.append((offset, job_id, at))

    def ack(self, offset: int) -> list[tuple[str, datetime]]:
        """Cumulative ack: the jobs it covers, each with when it was sent."""
        if offset <= self.acked:
            return []
        self.acked = offset
        done = []
        unacked = self.unacked
        while unacked and unacked[0][0] <= offset:
            _, job_id, at = unacked.popleft()
            done.append((job_id, at))
        if not unacked:
            self.unacked = None  # an idle link keeps no empty deque (0.7 KiB)
        return done
