"""The seeded fault run (issue 12): steady load, a schedule of faults, then the ledger.

    result = await fault_run(RunConfig(tmp, seed=7, storage="redis", seconds=600))
    print(result.report()); assert result.ledger.ok

One store with three printers (kitchen, bar, receipt) behind a ``passline store-client``
whose link to every broker node goes through a ``LinkProxy``; one ``passline broker``
on SQLite, or two on one ``redis-server``. Orders arrive at ``rate`` a second for
``seconds``; the faults of ``make_schedule`` hit meanwhile. Then everything is healed,
the run waits (at most ``settle_s``) until every accepted job is terminal at the broker,
and the ledger compares each job with the paper in the emulators.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx

from broker.auth import issue_token
from tests.faults.ledger import build_ledger
from tests.faults.load import OrderLoad
from tests.faults.parts import (
    ROOT,
    SKEW_ENV,
    BrokerNode,
    PrinterBank,
    SpoolDisk,
    StoreClientProc,
)
from tests.faults.proxy import LinkProxy
from tests.faults.result import RunConfig, RunResult, log_problems
from tests.faults.schedule import (
    PRINTER_FAULTS,
    SYSTEM_FAULTS,
    Fault,
    FaultEvent,
    kinds_for,
    make_schedule,
)
from tests.redis_server import RedisServer

SECRET = "faults-secret-0123456789abcdef-0123456789"
STORE = "s-faults"
PRINTERS = {"kitchen": 80, "bar": 58, "receipt": 80}
TERMINAL = frozenset({"printed", "uncertain", "expired", "failed", "cancelled"})
LATE_PRINT_GRACE_S = 3.0
"""After every job is terminal: time for a late duplicate to reach paper, if one is coming."""
POLL_CONCURRENCY = 8


def clock_skew_supported() -> bool:
    """Whether ``passline store-client`` reads ``PASSLINE_CLOCK_SKEW_S`` yet (another issue
    adds it): the name as a string literal in the CLI or the client's code."""
    literals = (f'"{SKEW_ENV}"', f"'{SKEW_ENV}'")
    files = [ROOT / "passline" / "cmd_store_client.py", *(ROOT / "store_client").rglob("*.py")]
    return any(
        lit in p.read_text(encoding="utf-8") for p in files if p.exists() for lit in literals
    )


async def fault_run(config: RunConfig, progress: Callable[[str], None] | None = None) -> RunResult:
    harness = Harness(config, progress or (lambda _: None))
    try:
        return await harness.run()
    finally:
        await harness.teardown()


class Harness:
    def __init__(self, config: RunConfig, progress: Callable[[str], None]) -> None:
        self.c = config
        self.progress = progress
        self.t0 = time.monotonic()
        self.journal: list[str] = []
        self.executed: list[dict[str, Any]] = []
        self.skipped: dict[str, str] = {}
        self.redis: RedisServer | None = None
        self.nodes: dict[str, BrokerNode] = {}
        self.proxies: list[LinkProxy] = []
        self.printers = PrinterBank(PRINTERS, config.cps, config.workdir / "paper")
        self.disk: SpoolDisk | None = None
        self.client: StoreClientProc | None = None
        self.hq = {"Authorization": f"Bearer {issue_token(SECRET, 'hq')}"}
        self._tasks: list[asyncio.Task[None]] = []

    def note(self, text: str) -> None:
        line = f"t+{time.monotonic() - self.t0:6.1f}s {text}"
        self.journal.append(line)
        self.progress(line)

    # -- setting up ----------------------------------------------------------------------------

    async def start(self) -> None:
        c = self.c
        c.workdir.mkdir(parents=True, exist_ok=True)
        store_url = f"sqlite:///{c.workdir / 'broker.db'}"
        if c.storage == "redis":
            self.redis = RedisServer(c.workdir / "redis", aof=True)
            await asyncio.to_thread(self.redis.start)
            store_url = self.redis.url + "?prefix=faults"
        for name in c.node_names:
            node = self.nodes[name] = BrokerNode(name, store_url, SECRET, c.workdir)
            if not await node.start():
                raise RuntimeError(f"broker {name} did not start; see {node.proc.log}")
        await self.printers.start()
        await self._put_config()
        spool = c.workdir / "spool"
        if Fault.DISK_FULL in kinds_for(c.storage, c.kinds):
            self.disk = SpoolDisk(c.workdir / "spool-fs")
            why = self.disk.mount()
            if why is None:
                spool = self.disk.path / "spool"
            else:
                self.skipped[Fault.DISK_FULL.value] = why
                self.disk = None
        if Fault.CLOCK_SKEW in kinds_for(c.storage, c.kinds) and not clock_skew_supported():
            self.note(f"clock_skew: the store client does not read {SKEW_ENV} yet: no effect")
        self.proxies = [LinkProxy(n.ws_port) for n in self.nodes.values()]
        brokers = ",".join(f"ws://127.0.0.1:{p.port}" for p in self.proxies)
        token = issue_token(SECRET, "store", store=STORE)
        self.client = StoreClientProc(brokers, STORE, token, spool, c.workdir, self.note)
        self.client.start()
        self._tasks.append(asyncio.create_task(self.client.supervise()))
        if not await self._poll(self._linked, 60):
            raise RuntimeError(f"the store never linked; see {self.client.proc.log}")

    async def _put_config(self) -> None:
        def printer(pid: str, name: str) -> dict[str, Any]:
            transport = f"tcp://127.0.0.1:{self.printers.port(pid)}"
            return {
                "printer_id": pid,
                "name": name,
                "transport": transport,
                "width_mm": PRINTERS[pid],
            }

        config = {
            "name": "Fault House",
            "printers": [printer("kitchen", "Hot line"), printer("bar", "Bar"), printer("receipt", "Front")],
            "stations": [
                {"station_id": "grill", "name": "Grill", "categories": ["burgers"], "printer": "kitchen"},
                {"station_id": "bar", "name": "Bar", "categories": ["drinks"], "printer": "bar"},
            ],
            "receipt_printer": "receipt", "failover_after_s": 3600, "job_ttl_s": 1800,
        }  # fmt: skip
        async with httpx.AsyncClient(headers=self.hq, timeout=10) as http:
            r = await http.put(f"{self.any_node()}/v1/stores/{STORE}/config", json=config)
        r.raise_for_status()

    def any_node(self) -> str:
        up = [n for n in self.nodes.values() if n.proc.running]
        return (up or list(self.nodes.values()))[0].http

    async def _linked(self) -> bool:
        async with httpx.AsyncClient(headers=self.hq, timeout=5) as http:
            r = await http.get(f"{self.any_node()}/v1/stores/{STORE}")
        return r.status_code == 200 and bool(r.json()["link"]["online"])

    async def _poll(self, check: Callable[[], Awaitable[bool]], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if await check():
                    return True
            await asyncio.sleep(0.5)
        return False

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        c = self.c
        schedule = make_schedule(
            c.seed, c.seconds, c.storage, kinds=c.kinds, nodes=c.node_names,
            printers=tuple(PRINTERS), scale=c.scale,
        )  # fmt: skip
        self.progress("schedule:\n" + "\n".join("  " + e.describe() for e in schedule))
        await self.start()
        self.note(f"store linked; load starts at {c.rate:g} orders/s for {c.seconds:.0f} s")
        load = OrderLoad(
            lambda: [n.http for n in self.nodes.values()],
            issue_token(SECRET, "ingest"), STORE, f"FR{c.seed}", c.rate, c.seed,
        )  # fmt: skip
        self.t0 = time.monotonic()
        load_task = asyncio.create_task(load.run())
        lanes = [
            asyncio.create_task(self._lane([e for e in schedule if e.kind in kinds]))
            for kinds in _lanes()
        ]
        await asyncio.sleep(c.seconds)
        load.stop()
        self.note(f"load stopped after {len(load.submissions)} orders; waiting for the last faults")
        await asyncio.wait(lanes, timeout=120)
        for lane in lanes:
            lane.cancel()
        await self.heal()
        try:
            await asyncio.wait_for(asyncio.shield(load_task), c.settle_s)
        except TimeoutError:
            self.note(f"{load.cancel_pending()} submits still unanswered after {c.settle_s:.0f} s")
            await asyncio.gather(load_task, return_exceptions=True)
        quiescent = await self._quiesce([s.order_id for s in load.submissions if s.order_id])
        await asyncio.sleep(LATE_PRINT_GRACE_S)
        views = await self._views([s.order_id for s in load.submissions if s.order_id])
        ledger = build_ledger(load.submissions, views, self.printers.texts())
        return RunResult(
            c, ledger, schedule, self.executed, self.journal, self.skipped,
            log_problems(c.workdir), time.monotonic() - self.t0, quiescent,
        )  # fmt: skip

    async def _lane(self, events: list[FaultEvent]) -> None:
        for ev in events:
            await asyncio.sleep(max(0.0, self.t0 + ev.at_s - time.monotonic()))
            started = time.monotonic() - self.t0
            self.progress(
                f"t+{started:6.1f}s fault {ev.kind.value} {ev.target} for {ev.duration_s}s"
            )
            try:
                note = await self.apply(ev)
            except Exception as exc:  # the run goes on; the error is in the ledger
                note = f"harness error: {exc!r}"
            self.executed.append(
                ev.to_json() | {"started_s": round(started, 1),
                                "ended_s": round(time.monotonic() - self.t0, 1),
                                "line": ev.describe(), "note": note}
            )  # fmt: skip

    # -- the faults ----------------------------------------------------------------------------

    async def apply(self, ev: FaultEvent) -> str:
        if ev.kind.value in self.skipped:
            return "skipped: " + self.skipped[ev.kind.value]
        handler = getattr(self, "_fault_" + ev.kind.value)
        result: str = await handler(ev)
        return result

    async def _fault_broker_kill(self, ev: FaultEvent) -> str:
        return await self._bounce_node(ev, signal.SIGKILL)

    async def _fault_broker_term(self, ev: FaultEvent) -> str:
        return await self._bounce_node(ev, signal.SIGTERM)

    async def _bounce_node(self, ev: FaultEvent, sig: signal.Signals) -> str:
        node = self.nodes[ev.target]
        t = time.monotonic()
        code = await node.proc.stop(sig)
        took = time.monotonic() - t
        if sig is signal.SIGTERM and code != 0:
            self.note(f"broker {node.name} exited with {code} on SIGTERM (expected 0)")
        await asyncio.sleep(ev.duration_s)
        ok = await node.start()
        if not ok:
            self.note(f"broker {node.name} did not become ready again")
        return f"exit {code} after {took:.1f}s; {'ready again' if ok else 'NOT ready'}"

    async def _fault_client_kill(self, ev: FaultEvent) -> str:
        return await self._bounce_client(ev, signal.SIGKILL)

    async def _fault_client_term(self, ev: FaultEvent) -> str:
        return await self._bounce_client(ev, signal.SIGTERM)

    async def _bounce_client(self, ev: FaultEvent, sig: signal.Signals) -> str:
        assert self.client is not None
        uptime = self.client.proc.uptime_s
        code = await self.client.stop(sig)
        if sig is signal.SIGTERM and code != 0:
            self.note(f"store client exited with {code} on SIGTERM {uptime:.1f}s after it started")
        await asyncio.sleep(ev.duration_s)
        self.client.start()
        return f"exit {code}"

    async def _fault_link_cut(self, ev: FaultEvent) -> str:
        return f"{sum(p.cut() for p in self.proxies)} connection(s) cut"

    async def _fault_link_stall(self, ev: FaultEvent) -> str:
        for p in self.proxies:
            p.stall()
        await asyncio.sleep(ev.duration_s)
        for p in self.proxies:
            p.resume()
        return "flowing again"

    async def _fault_redis_restart(self, ev: FaultEvent) -> str:
        assert self.redis is not None
        kill = ev.target.endswith("KILL")
        await asyncio.to_thread(self.redis.stop, kill)
        await asyncio.sleep(ev.duration_s)
        await asyncio.to_thread(self.redis.start)
        return "restarted"

    async def _fault_disk_full(self, ev: FaultEvent) -> str:
        assert self.disk is not None
        written = await asyncio.to_thread(self.disk.fill)
        await asyncio.sleep(ev.duration_s)
        self.disk.drain()
        return f"{written >> 20} MiB ballast, removed"

    async def _fault_clock_skew(self, ev: FaultEvent) -> str:
        assert self.client is not None
        skew = float(ev.target)
        await self._restart_client_with_skew(skew)
        await asyncio.sleep(ev.duration_s)
        await self._restart_client_with_skew(0.0)
        return f"client ran with {SKEW_ENV}={skew:+g}" + (
            "" if clock_skew_supported() else " (not read by the client yet)"
        )

    async def _restart_client_with_skew(self, skew: float) -> None:
        assert self.client is not None
        uptime = self.client.proc.uptime_s
        code = await self.client.stop(signal.SIGTERM)
        if code != 0:
            self.note(f"store client exited with {code} on SIGTERM {uptime:.1f}s after it started")
        self.client.skew_s = skew
        self.client.start()

    async def _fault_paper_out(self, ev: FaultEvent) -> str:
        return await self._printer_fault(ev, {"paper": "out"}, {"paper": "ok"})

    async def _fault_cover_open(self, ev: FaultEvent) -> str:
        return await self._printer_fault(ev, {"cover_open": True}, {"cover_open": False})

    async def _printer_fault(self, ev: FaultEvent, on: dict[str, Any], off: dict[str, Any]) -> str:
        await self.printers.control(ev.target, **on)
        await asyncio.sleep(ev.duration_s)
        await self.printers.control(ev.target, **off)
        return "cleared"

    async def _fault_power_loss(self, ev: FaultEvent) -> str:
        await self.printers.power_off(ev.target)
        await asyncio.sleep(ev.duration_s)
        await self.printers.power_on(ev.target)
        return "powered on"

    # -- healing and the end -------------------------------------------------------------------

    async def heal(self) -> None:
        """Undo whatever a cancelled fault left broken."""
        for p in self.proxies:
            p.resume()
        if self.disk is not None:
            self.disk.drain()
        if self.redis is not None and self.redis.proc is None:
            await asyncio.to_thread(self.redis.start)
        for node in self.nodes.values():
            if not node.proc.running and not await node.start():
                self.note(f"broker {node.name} did not start at the end")
        for name in list(self.printers.off):
            await self.printers.power_on(name)
        for name in PRINTERS:
            await self.printers.control(name, reset=True)
        assert self.client is not None
        if self.client.skew_s:
            await self._restart_client_with_skew(0.0)
        elif not self.client.proc.running:
            self.client.start()
        self.note("everything healed; waiting for every job to be terminal")

    async def _quiesce(self, order_ids: list[str]) -> bool:
        live = set(order_ids)
        deadline = time.monotonic() + self.c.settle_s
        while live and time.monotonic() < deadline:
            views = await self._views(sorted(live))
            live = {o for o, v in views.items() if v is None or not _terminal(v)}
            if live:
                await asyncio.sleep(2.0)
        if live:
            self.note(f"{len(live)} order(s) still have live jobs after {self.c.settle_s:.0f} s")
        else:
            self.note("every accepted job is terminal")
        return not live

    async def _views(self, order_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        gate = asyncio.Semaphore(POLL_CONCURRENCY)
        async with httpx.AsyncClient(headers=self.hq, timeout=10) as http:

            async def one(order_id: str) -> None:
                async with gate:
                    for _ in range(5):
                        try:
                            r = await http.get(f"{self.any_node()}/v1/orders/{order_id}")
                        except httpx.HTTPError:
                            await asyncio.sleep(1.0)
                            continue
                        if r.status_code in (200, 404):
                            out[order_id] = r.json() if r.status_code == 200 else None
                            return
                        await asyncio.sleep(1.0)
                    out[order_id] = None

            await asyncio.gather(*(one(o) for o in order_ids))
        return out

    async def teardown(self) -> None:
        """Stop everything this run started, each step on its own: one failing step
        must not leave processes, ports or a mount behind."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        if self.client is not None:
            steps.append(("store client", partial(self.client.stop, signal.SIGTERM)))
        steps += [
            (f"broker {n.name}", partial(n.proc.stop, signal.SIGTERM)) for n in self.nodes.values()
        ]
        if self.redis is not None:
            steps.append(("redis", partial(asyncio.to_thread, self.redis.stop)))
        steps.append(("printers", self.printers.stop))
        steps += [("proxy", partial(asyncio.to_thread, p.close)) for p in self.proxies]
        if self.disk is not None:
            steps.append(("spool tmpfs", partial(asyncio.to_thread, self.disk.unmount)))
        for what, step in steps:
            try:
                await step()
            except Exception as exc:  # the other steps still run; the journal says why
                self.note(f"teardown of {what} failed: {exc!r}")


def _lanes() -> list[frozenset[Fault]]:
    return [frozenset(SYSTEM_FAULTS), frozenset(PRINTER_FAULTS)]


def _terminal(view: dict[str, Any]) -> bool:
    return all(j["state"] in TERMINAL for j in view["jobs"])
