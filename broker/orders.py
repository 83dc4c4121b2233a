"""Order ingest: submit (idempotent), amend, cancel, reprint, config, lookups.

Each request becomes one storage ``Tx`` (records + stream entries) and is answered only
after it committed. Concurrent writers are caught by optimistic versions and retried.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from broker.clock import Now, system_now
from broker.config_cache import ConfigCache
from broker.errors import Conflict, InvalidRequest, NotFound, VersionConflict
from broker.records import (
    MAX_REFS,
    Held,
    JobProgress,
    JobRecord,
    OrderRecord,
    Scheduled,
    TicketRecord,
)
from broker.storage import EntryKind, Kind, NewEntry, Put, Storage, Tx
from broker.storage.base import ROLLOUT_STORE
from kitchen.amend import amended, plan_amend, plan_cancel, plan_held_amend, plan_reprint
from kitchen.errors import Refused
from kitchen.expo import LISTED_STATES, expo_roll_up, scheduled_roll_up
from kitchen.routing import Plan, plan_submit, submit_result
from kitchen.schedule import held_until, restamped
from protocol.codec import json_with
from protocol.config import StoreConfig, VersionedStoreConfig
from protocol.ids import order_id_for
from protocol.jobs import Job, JobState, JobTransitionRecord
from protocol.orders import Amendment, CancelRequest, Order, ReprintRequest
from protocol.reports import Measure
from protocol.rest import ConfigResult, JobView, OrderView, SubmitResult
from protocol.rollout import Release, compose
from protocol.tickets import ExpoOrder, Ticket, TicketState
from protocol.timezones import DEFAULT_TIMEZONE

#: Told of every order this node holds or holds again (amended): (order_id, store_id,
#: fire_at), after the commit (``broker/scheduler.py``).
HeldListener = Callable[[str, str, datetime], None]

#: Which stores' orders and jobs the caller may see (``Claims.may_read_store``). The others
#: are answered exactly as absent ones, so no token can probe which ids exist elsewhere.
Visible = Callable[[str], bool]


def everything(store_id: str) -> bool:
    return True


log = logging.getLogger(__name__)

MAX_RETRIES = 8
CONFIG_TTL_S = 1.0
T = TypeVar("T")
ACTIVE_TICKET = (TicketState.NEW, TicketState.IN_PROGRESS)


def planned(plan: Callable[[], T]) -> T:
    """The kitchen's plan; its refusals become 422 problem+json here, and only here."""
    try:
        return plan()
    except Refused as exc:
        raise InvalidRequest(exc.detail, exc.errors) from None


def put(kind: Kind, key: str, model: BaseModel, version: int, live: bool = True) -> Put:
    """A write at ``version`` of a record last written at ``version - 1`` (0 = new)."""
    return Put(kind, key, model.model_dump_json(), version, version - 1, live)


def ticket_put(rec: TicketRecord) -> Put:
    t = rec.ticket
    return put(Kind.TICKET, t.ticket_id, rec, t.version, t.state in ACTIVE_TICKET)


def new_job_json(job_json: str, store_id: str, now: datetime) -> str:
    """A ``JobRecord`` in state ``queued`` around an already serialised job."""
    queued = JobTransitionRecord(state=JobState.QUEUED, at=now)
    return json_with(
        JobRecord, {"job": job_json}, store_id=store_id, state=JobState.QUEUED, history=[queued]
    )


def ticket_entry(t: Ticket) -> NewEntry:
    return NewEntry(EntryKind.TICKET, t.model_dump_json(), t.station_id)


def expo_entry(e: ExpoOrder, expo_station: str) -> NewEntry:
    return NewEntry(EntryKind.ORDER, e.model_dump_json(), expo_station)


def job_entry(job: Job) -> NewEntry:
    return NewEntry(EntryKind.JOB, job.model_dump_json(), job.job_id)


async def retrying(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a read-modify-commit again when another writer got there first."""
    for _ in range(MAX_RETRIES - 1):
        try:
            return await fn()
        except VersionConflict as exc:
            log.debug("retrying after %s", exc)
    return await fn()


def expo_station(config: StoreConfig) -> str | None:
    return next((s.station_id for s in config.stations if s.expo), None)


class Orders:
    def __init__(
        self, storage: Storage, now: Now = system_now, default_timezone: str = DEFAULT_TIMEZONE
    ) -> None:
        self.storage = storage
        self.now = now
        # In-process storage has one writer, this node: every PUT goes through
        # ``put_config`` and refreshes the cache, so a cached config never expires (a read
        # per order cost a tenth of the loop with a thousand stores). Nodes sharing redis
        # see each other's PUTs within the TTL.
        shared = getattr(storage, "shared", True)  # a bare Storage: assume other writers
        self.configs = ConfigCache(
            CONFIG_TTL_S if shared else math.inf, default_timezone=default_timezone
        )
        """Also the hub's ``ConfigWatcher``: see ``broker/config_cache.py``. What it hands
        out names the store's time zone (the default where the config names none)."""
        self._held: HeldListener | None = None

    def listen_held(self, listener: HeldListener) -> None:
        """Set the one function told of every order this node holds (the scheduler)."""
        self._held = listener

    # -- config ----------------------------------------------------------------------------
    async def config(self, store_id: str) -> VersionedStoreConfig | None:
        """The store's config; cached (a PUT on this node refreshes it at once; another
        node's PUT is seen within ``CONFIG_TTL_S``). Never older than a config
        this node wrote or saw go by, nor than the stream head a feed last read."""
        fresh, config = self.configs.fresh(store_id)
        if fresh:
            return config
        sent = self.configs.clock()
        rec = await self.storage.get(Kind.CONFIG, store_id)
        config = VersionedStoreConfig.model_validate_json(rec.doc) if rec is not None else None
        return self.configs.offer(store_id, config, sent)

    async def put_config(self, store_id: str, body: StoreConfig) -> ConfigResult:
        """HQ's config for the store (its base) and the config the store runs: the base
        with the active releases that reach its ring (docs/rollout.md)."""
        releases = await self.releases()

        async def attempt() -> ConfigResult:
            version = await self.write_config(store_id, body, releases, base_too=True)
            assert version is not None
            return ConfigResult(store_id=store_id, version=version)

        return await retrying(attempt)

    async def releases(self) -> list[Release]:
        found = await self.storage.scan(ROLLOUT_STORE, Kind.RELEASE, live_only=False)
        return [Release.model_validate_json(r.doc) for r in found]

    async def base_config(self, store_id: str) -> StoreConfig | None:
        """The config as HQ put it (before releases); a config written before releases
        existed is its own base."""
        raw = await self.storage.get(Kind.BASE, store_id, store_id)
        if raw is not None:
            return StoreConfig.model_validate_json(raw.doc)
        raw = await self.storage.get(Kind.CONFIG, store_id, store_id)
        if raw is None:
            return None
        config = VersionedStoreConfig.model_validate_json(raw.doc)
        return StoreConfig(**config.model_dump(exclude={"store_id", "version", "releases"}))

    async def write_config(
        self, store_id: str, base: StoreConfig, releases: list[Release], base_too: bool
    ) -> int | None:
        """Write the store's config composed from ``base`` and ``releases`` (and ``base``
        itself with ``base_too``); the new version, or None when nothing changed."""
        try:
            composed, applied = compose(base, releases)
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            raise InvalidRequest(
                f"store {store_id!r}: the releases it is in make this config invalid", errors
            ) from None
        rec = await self.storage.get(Kind.CONFIG, store_id)
        version = (rec.version if rec else 0) + 1
        config = VersionedStoreConfig(
            **composed.model_dump(), store_id=store_id, version=version, releases=tuple(applied)
        )
        puts = []
        if base_too:
            old = await self.storage.get(Kind.BASE, store_id, store_id)
            puts.append(put(Kind.BASE, store_id, base, (old.version if old else 0) + 1))
        elif rec is not None:
            current = VersionedStoreConfig.model_validate_json(rec.doc)
            if current.model_dump(exclude={"version"}) == config.model_dump(exclude={"version"}):
                return None
        puts.append(put(Kind.CONFIG, store_id, config, version))
        entry = NewEntry(EntryKind.CONFIG, config.model_dump_json())
        sent = self.configs.clock()
        await self.storage.commit(store_id, Tx(puts, [entry]))
        self.configs.offer(store_id, config, sent)
        log.info("config store=%s version=%d releases=%s", store_id, version, applied)
        return version

    async def require_config(self, store_id: str) -> VersionedStoreConfig:
        config = await self.config(store_id)
        if config is None:
            raise InvalidRequest(
                f"unknown store {store_id!r}: PUT /v1/stores/{store_id}/config first",
                [{"loc": ["store_id"], "msg": f"unknown store {store_id!r}"}],
            )
        return config

    # -- submit ----------------------------------------------------------------------------
    async def submit(self, order: Order, hold: bool = True) -> tuple[bool, SubmitResult]:
        """(created, result): a repeat returns the first result with ``duplicate``.

        An order with ``due_at`` whose fire time is still ahead is held: committed with
        its planned tickets and jobs inside the order record, on no station and in no
        stream until it fires (``fire``). ``hold=False`` fires it at once (an order the
        store's LAN edge printed already)."""
        order_id = order_id_for(order.store_id, order.channel, order.external_id)
        now = self.now()
        fire_at = None
        try:  # optimistic: the order record's create-only put catches repeats
            config = await self.require_config(order.store_id)
            plan = planned(lambda: plan_submit(order, order_id, config, now))
            if hold and order.due_at is not None:
                fire_at = planned(lambda: held_until(order, plan.line_station, config, now))
        except InvalidRequest:
            first = await self._existing(order_id)
            if first is None:
                raise
            return False, first
        result = submit_result(order_id, plan)
        if fire_at is not None:  # (a copy per order only for the held ones: the hot path)
            result = result.model_copy(update={"fire_at": fire_at})
        rec = OrderRecord(
            order_id=order_id,
            store_id=order.store_id,
            revision=1,
            order=order,
            line_station=plan.line_station,
            tickets={t.station_id: t.ticket_id for t in plan.tickets},
            jobs=[j.job_id for j in plan.jobs] if fire_at is None else [],
            result=result,
            created_at=now,
            expo=expo_station(config) is not None,
            held=Held(fire_at=fire_at, tickets=plan.tickets, jobs=plan.jobs) if fire_at else None,
        )
        if fire_at is None:
            tx = self._plan_tx(rec, 1, plan, config, [], now)
        else:
            tx = self._held_tx(rec, 1, config, schedule=0, expo=0)
        try:
            await self.storage.commit(order.store_id, tx)
        except VersionConflict:
            first = await self._existing(order_id)
            if first is None:
                raise
            return False, first
        if fire_at is not None:
            self._tell_held(rec, fire_at)
        return True, result

    def _tell_held(self, rec: OrderRecord, fire_at: datetime) -> None:
        log.info("held order=%s store=%s until=%s", rec.order_id, rec.store_id, fire_at)
        if self._held is not None:
            self._held(rec.order_id, rec.store_id, fire_at)

    async def _existing(self, order_id: str) -> SubmitResult | None:
        rec = await self.storage.get(Kind.ORDER, order_id)
        if rec is None:
            return None
        first = OrderRecord.model_validate_json(rec.doc).result
        return first.model_copy(update={"duplicate": True})

    def _plan_tx(
        self,
        rec: OrderRecord,
        version: int,
        plan: Plan,
        config: StoreConfig | None,
        extra: Sequence[Put],
        now: datetime,
        expo: tuple[ExpoOrder, int] | None = None,
        measured: Mapping[str, list[Measure]] | None = None,
    ) -> Tx:
        """Order + tickets + jobs (+ expo) as one Tx; entries: jobs first, then screens.

        ``config`` None: no expo roll-up (reprints). ``measured``: ticket_id -> the
        speed-of-service timings already counted of an amended ticket (kept)."""
        puts = [put(Kind.ORDER, rec.order_id, rec, version, live=not rec.cancelled), *extra]
        entries = []
        for job in plan.jobs:  # each model is serialised once, for its record and its entry
            job_json = job.model_dump_json()
            entries.append(NewEntry(EntryKind.JOB, job_json, job.job_id))
            puts.append(Put(Kind.JOB, job.job_id, new_job_json(job_json, rec.store_id, now), 1, 0))
        for t in plan.tickets:
            t_json = t.model_dump_json()
            kept = measured.get(t.ticket_id, []) if measured else []
            doc = json_with(TicketRecord, {"ticket": t_json}, measured=kept)
            puts.append(
                Put(
                    Kind.TICKET,
                    t.ticket_id,
                    doc,
                    t.version,
                    t.version - 1,
                    t.state in ACTIVE_TICKET,
                )
            )
            entries.append(NewEntry(EntryKind.TICKET, t_json, t.station_id))
        station = expo_station(config) if config is not None else None
        if station is not None:
            if expo is None:
                roll = expo_roll_up(rec, plan.tickets, 1, False)
                expo = (roll, 1)
            roll, ver = expo
            puts.append(put(Kind.EXPO, rec.order_id, roll, ver, roll.state in LISTED_STATES))
            entries.append(expo_entry(roll, station))
        return Tx(puts, entries)

    def _held_tx(
        self, rec: OrderRecord, version: int, config: StoreConfig, schedule: int, expo: int
    ) -> Tx:
        """A held order: its record, its ``schedule`` index record and the expo's
        "scheduled" card; no ticket, no job, nothing for a station or the store client.
        ``schedule``/``expo``: the versions those records are at now (0: none)."""
        held = rec.held
        assert held is not None
        index = Scheduled(order_id=rec.order_id, store_id=rec.store_id, fire_at=held.fire_at)
        puts = [
            put(Kind.ORDER, rec.order_id, rec, version),
            put(Kind.SCHEDULE, rec.order_id, index, schedule + 1),
        ]
        entries = []
        station = expo_station(config)
        if rec.expo and station is not None:
            roll = scheduled_roll_up(rec, held.tickets, expo + 1, held.fire_at)
            puts.append(put(Kind.EXPO, rec.order_id, roll, expo + 1))
            entries.append(expo_entry(roll, station))
        return Tx(puts, entries)

    async def _version(self, kind: Kind, rec: OrderRecord) -> int:
        raw = await self.storage.get(kind, rec.order_id, rec.store_id)
        return raw.version if raw is not None else 0

    async def _unschedule(self, rec: OrderRecord) -> Put:
        """The write that takes a held order out of the scheduler's index."""
        assert rec.held is not None
        index = Scheduled(order_id=rec.order_id, store_id=rec.store_id, fire_at=rec.held.fire_at)
        version = await self._version(Kind.SCHEDULE, rec)
        return put(Kind.SCHEDULE, rec.order_id, index, version + 1, live=False)

    # -- scheduled orders --------------------------------------------------------------------
    async def fire(
        self, order_id: str, visible: Visible = everything, due_only: bool = False
    ) -> tuple[bool, SubmitResult]:
        """Send a held order to its stations and printers now: its tickets, jobs and
        expo roll-up in one commit, exactly as a submit without ``due_at`` would have.

        (fired, result): an order not held (fired already, by its time, by someone else or
        by another node, or never held) is answered ``duplicate`` with no tickets or jobs.
        ``due_only`` (the scheduler): only once its fire time has come; else the answer's
        ``fire_at`` says when. ``Conflict`` for a cancelled order."""

        async def attempt() -> tuple[bool, SubmitResult]:
            rec, version = await self._load(order_id, visible)
            if rec.cancelled:
                raise Conflict(f"order {order_id!r} is cancelled")
            now = self.now()
            held = rec.held
            if held is None or (due_only and held.fire_at > now):
                fire_at = held.fire_at if held is not None else None
                unchanged = SubmitResult(
                    order_id=order_id, revision=rec.revision, tickets=(), jobs=(), fire_at=fire_at
                )
                return False, unchanged.model_copy(update={"duplicate": True})
            config = await self.require_config(rec.store_id)
            tickets, jobs = restamped(held.tickets, held.jobs, now)
            plan = Plan(rec.order, rec.revision, tickets, jobs, rec.line_station)
            new = rec.model_copy(
                update={
                    "held": None,
                    "fired_at": now,
                    "jobs": [*rec.jobs, *(j.job_id for j in jobs)],
                }
            )
            expo = await self._expo_after(new, {}, plan)
            unschedule = await self._unschedule(rec)
            tx = self._plan_tx(new, version + 1, plan, config, [unschedule], now, expo)
            await self.storage.commit(rec.store_id, tx)
            late = (now - held.fire_at).total_seconds()
            log.info("fired order=%s store=%s late_s=%.0f", order_id, rec.store_id, late)
            return True, submit_result(order_id, plan)

        return await retrying(attempt)

    # -- amend / cancel / reprint ------------------------------------------------------------
    async def _load(self, order_id: str, visible: Visible = everything) -> tuple[OrderRecord, int]:
        raw = await self.storage.get(Kind.ORDER, order_id)
        if raw is not None:
            rec = OrderRecord.model_validate_json(raw.doc)
            if visible(rec.store_id):
                return rec, raw.version
        raise NotFound(f"no order {order_id!r}")

    async def tickets_of(self, rec: OrderRecord) -> dict[str, Ticket]:
        return {s: r.ticket for s, r in (await self.ticket_records_of(rec)).items()}

    async def ticket_records_of(self, rec: OrderRecord) -> dict[str, TicketRecord]:
        """station_id -> the order's ticket record there."""
        out = {}
        ids = list(rec.tickets.items())
        raws = await self.storage.get_many(Kind.TICKET, [t for _, t in ids], rec.store_id)
        for (station_id, _), raw in zip(ids, raws, strict=True):
            if raw is not None:
                out[station_id] = TicketRecord.model_validate_json(raw.doc)
        return out

    async def _expo_after(
        self, rec: OrderRecord, tickets: dict[str, Ticket], plan: Plan
    ) -> tuple[ExpoOrder, int] | None:
        if not rec.expo:
            return None
        raw = await self.storage.get(Kind.EXPO, rec.order_id, rec.store_id)
        old = ExpoOrder.model_validate_json(raw.doc) if raw else None
        merged = {**tickets, **{t.station_id: t for t in plan.tickets}}
        served = old is not None and old.state.value == "served"
        version = (raw.version if raw else 0) + 1
        roll = expo_roll_up(rec, list(merged.values()), version, served, rec.fired_at)
        if served and old is not None:  # an amended served order: still served since then
            roll = roll.model_copy(update={"served_at": old.served_at})
        return roll, version

    async def amend(self, order_id: str, am: Amendment, ref: str | None = None) -> SubmitResult:
        """``ref`` (the store edge's forwards): an amendment with a ``ref`` already applied
        to this order is not applied again; the answer is the order's current revision,
        ``duplicate``."""

        async def attempt() -> SubmitResult:
            rec, version = await self._load(order_id)
            if ref is not None and ref in rec.refs:
                current = SubmitResult(
                    order_id=order_id, revision=rec.revision, tickets=(), jobs=()
                )
                return current.model_copy(update={"duplicate": True})
            if rec.cancelled:
                raise Conflict(f"order {order_id!r} is cancelled")
            config = await self.require_config(rec.store_id)
            now = self.now()
            refs = [*rec.refs, ref][-MAX_REFS:] if ref is not None else rec.refs
            if rec.held is not None:
                return await self._amend_held(rec, version, am, refs, config, now)
            records = await self.ticket_records_of(rec)
            tickets = {s: r.ticket for s, r in records.items()}
            plan = planned(lambda: plan_amend(rec, tickets, am, config, now))
            new = rec.model_copy(
                update={
                    **amended(rec, am, plan),
                    "tickets": {**rec.tickets, **{t.station_id: t.ticket_id for t in plan.tickets}},
                    "refs": refs,
                }
            )
            expo = await self._expo_after(new, tickets, plan)
            # an amended ticket keeps what speed of service measured of it (once each)
            measured = {r.ticket.ticket_id: r.measured for r in records.values() if r.measured}
            tx = self._plan_tx(new, version + 1, plan, config, [], now, expo, measured)
            await self.storage.commit(rec.store_id, tx)
            return submit_result(order_id, plan)

        return await retrying(attempt)

    async def _amend_held(
        self,
        rec: OrderRecord,
        version: int,
        am: Amendment,
        refs: list[str],
        config: StoreConfig,
        now: datetime,
    ) -> SubmitResult:
        """A held order amended: planned afresh at the new revision (no station has seen
        it), and held again until its new fire time, or fired now when that has passed."""
        plan = planned(lambda: plan_held_amend(rec, am, config, now))
        fire_at = planned(lambda: held_until(plan.order, plan.line_station, config, now))
        fields = amended(rec, am, plan)
        fields.update(
            tickets={t.station_id: t.ticket_id for t in plan.tickets},
            refs=refs,
            jobs=rec.jobs,
            held=None,
        )
        if fire_at is not None:
            fields["held"] = Held(fire_at=fire_at, tickets=plan.tickets, jobs=plan.jobs)
            new = rec.model_copy(update=fields)
            schedule = await self._version(Kind.SCHEDULE, rec)
            expo = await self._version(Kind.EXPO, rec) if rec.expo else 0
            await self.storage.commit(
                rec.store_id, self._held_tx(new, version + 1, config, schedule, expo)
            )
            self._tell_held(new, fire_at)
            return submit_result(rec.order_id, plan).model_copy(update={"fire_at": fire_at})
        fields.update(fired_at=now, jobs=[*rec.jobs, *(j.job_id for j in plan.jobs)])
        new = rec.model_copy(update=fields)
        expo_after = await self._expo_after(new, {}, plan)
        unschedule = await self._unschedule(rec)
        tx = self._plan_tx(new, version + 1, plan, config, [unschedule], now, expo_after)
        await self.storage.commit(rec.store_id, tx)
        return submit_result(rec.order_id, plan)

    async def cancel(self, order_id: str, req: CancelRequest) -> tuple[bool, SubmitResult]:
        async def attempt() -> tuple[bool, SubmitResult]:
            rec, version = await self._load(order_id)
            if rec.cancel_result is not None:
                return False, rec.cancel_result.model_copy(update={"duplicate": True})
            config = await self.require_config(rec.store_id)
            tickets = await self.tickets_of(rec)
            now = self.now()
            plan = planned(lambda: plan_cancel(rec, tickets, config, now))
            result = submit_result(order_id, plan)
            new = rec.model_copy(
                update={
                    "revision": plan.revision,
                    "cancelled": True,
                    "cancel_result": result,
                    "jobs": [*rec.jobs, *(j.job_id for j in plan.jobs)],
                    "held": None,  # a held order has no ticket or job: nothing to void
                }
            )
            cancels, extra = await self._cancel_jobs(rec, req, now)
            if rec.held is not None:
                extra.append(await self._unschedule(rec))
            expo = await self._expo_after(new, tickets, plan)
            tx = self._plan_tx(new, version + 1, plan, config, extra, now, expo)
            tx = Tx(tx.puts, [*cancels, *tx.entries])
            await self.storage.commit(rec.store_id, tx)
            return True, result

        return await retrying(attempt)

    async def _cancel_jobs(
        self, rec: OrderRecord, req: CancelRequest, now: datetime
    ) -> tuple[list[NewEntry], list[Put]]:
        """Unprinted jobs become ``cancelled`` and the store client is told to drop them."""
        entries, puts = [], []
        raws = await self.storage.get_many(Kind.JOB, rec.jobs, rec.store_id)
        for jid, raw in zip(rec.jobs, raws, strict=True):
            if raw is None:
                continue
            jr = JobProgress.model_validate_json(raw.doc)
            if JobState.CANCELLED not in _next_states(jr.state):
                continue
            jr.history.append(
                JobTransitionRecord(state=JobState.CANCELLED, at=now, reason=req.reason or None)
            )
            jr.state = JobState.CANCELLED
            puts.append(put(Kind.JOB, jid, jr, raw.version + 1, live=False))
            entries.append(NewEntry(EntryKind.CANCEL, json.dumps({"job_id": jid})))
        return entries, puts

    async def reprint(self, order_id: str, req: ReprintRequest) -> SubmitResult:
        async def attempt() -> SubmitResult:
            rec, version = await self._load(order_id)
            if rec.cancelled:
                raise Conflict(f"order {order_id!r} is cancelled")
            if rec.held is not None:
                raise Conflict(f"order {order_id!r} is scheduled and has printed nothing yet")
            config = await self.require_config(rec.store_id)
            now = self.now()
            plan = planned(lambda: plan_reprint(rec, req, config, now))
            new = rec.model_copy(
                update={
                    "reprints": rec.reprints + 1,
                    "jobs": [*rec.jobs, *(j.job_id for j in plan.jobs)],
                }
            )
            plan.tickets = []  # a reprint changes no ticket and no expo roll-up
            tx = self._plan_tx(new, version + 1, plan, None, [], now)
            await self.storage.commit(rec.store_id, tx)
            return submit_result(order_id, plan, tickets=False)

        return await retrying(attempt)

    # -- lookups ---------------------------------------------------------------------------
    async def order_view(self, order_id: str, visible: Visible = everything) -> OrderView:
        rec, _ = await self._load(order_id, visible)
        tickets = await self.tickets_of(rec)
        raws = await self.storage.get_many(Kind.JOB, rec.jobs, rec.store_id)
        jobs = [_job_view(JobRecord.model_validate_json(r.doc)) for r in raws if r is not None]
        view = OrderView(
            order_id=order_id,
            revision=rec.revision,
            cancelled=rec.cancelled,
            order=rec.order,
            tickets=tuple(tickets.values()),
            jobs=tuple(jobs),
            fire_at=rec.held.fire_at if rec.held is not None else None,
        )
        return view

    async def job_view(self, job_id: str, visible: Visible = everything) -> JobView:
        raw = await self.storage.get(Kind.JOB, job_id)
        if raw is not None:
            jr = JobRecord.model_validate_json(raw.doc)
            if visible(jr.store_id):
                return _job_view(jr)
        raise NotFound(f"no job {job_id!r}")

    async def store_of_order(self, order_id: str, visible: Visible = everything) -> str:
        rec, _ = await self._load(order_id, visible)
        return rec.store_id


def _next_states(state: JobState) -> frozenset[JobState]:
    from protocol.jobs import JOB_TRANSITIONS

    return JOB_TRANSITIONS[state]


def _job_view(jr: JobRecord) -> JobView:
    j = jr.job
    return JobView(
        job_id=j.job_id,
        order_id=j.order_id,
        revision=j.revision,
        printer_id=j.printer_id,
        template=j.template,
        state=jr.state,
        created_at=j.created_at,
        expires_at=j.expires_at,
        history=tuple(jr.history),
    )
