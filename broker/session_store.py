"""The store link's per-connection core (sans-I/O): decoded messages in, decisions out.

It never touches a socket or the clock (times are passed in). ``ws.py`` pumps it.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import msgpack

from broker.storage import Entry, EntryKind, StreamSlice
from protocol.close_codes import CloseCode
from protocol.compat import config_for, job_for
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
