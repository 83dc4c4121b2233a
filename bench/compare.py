"""passline beside a bare relay and a python-socketio + Redis app, in one run (issue 13;
results in docs/benchmarks.md).

One load generator (this process), N simulated store clients per system, each acking every
delivery; orders at a fixed rate to random stores, one kitchen job per order by default:

- **passline**: ``passline broker`` (``--store sqlite``: ``synchronous=FULL``, an fsync per
  group commit; or ``redis``/``memory``), rate limits off, each store configured over REST;
  orders by ``POST /v1/orders``; clients are ``broker_load.py``'s (websockets, msgpack, ack
  after each job).
- **relay**: ``relay_baseline.py``: the generator sends each job, JSON, over one websocket
  and the relay forwards it to the store's socket. No HTTP, no storage, no routing.
- **socketio**: ``socketio_peer.py`` (python-socketio ``AsyncServer`` + ``AsyncRedisManager``
  on uvicorn, one ``redis-server`` started here); orders by ``POST /orders``, one ``job``
  event per job to the store's room, acked with a socket.io ack; clients speak Engine.IO 4 /
  Socket.IO 5 over a websocket directly (``python-socketio``'s client is too heavy for
  1,000 clients in one process).

Each system runs the rates ``--rates`` (500 and 2,000 orders/s) and a search for its
maximum: from the first rate up by ``--factor`` while a step holds (down while it does not);
a step holds when nothing is shed or refused, every job arrives, jobs delivered/s ≥ 95 % of
those offered and the p99 submit → delivery is at most ``--p99-limit``. Server CPU per order
is from /proc: the server's process and, where there is one, its redis-server. After its
steps, passline also takes ``POST /v1/orders:batch`` (``--batch`` orders a call) as fast as
it answers.

    .venv/bin/python bench/compare.py                              # the full run, ~7–10 min
    .venv/bin/python bench/compare.py --clients 200 --step 5 --systems passline,socketio
    .venv/bin/python bench/compare.py --jobs-per-order 3 --store redis
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from broker_load import ROOT, rss_mb
from cluster_procs import Procs, git_state, machine_cpu_s, proc_cpu_s, quiet
from compare_systems import (
    CONNECT_CONCURRENCY,
    ROUTES,
    SYSTEMS,
    Offer,
    Passline,
    System,
    pct,
)


# -- steps -----------------------------------------------------------------------------------
def cpu_now(pids: dict[str, int]) -> tuple[float, dict[str, float], float, float]:
    """(wall, CPU seconds by process, the machine's busy CPU seconds, its stolen ones)."""
    own = pids | {"generator": os.getpid()}
    procs = {k: proc_cpu_s(pid, k == "redis") for k, pid in own.items()}
    return time.monotonic(), procs, *machine_cpu_s()


async def run_step(s: System, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    waited, busy = await quiet(args.quiet_wait)
    m = s.meter
    stale0 = m.stale
    a = cpu_now(s.pids)
    m.begin()
    o = await s.offer(rate, args.step)
    jobs = o.accepted * args.jobs_per_order
    m.owe(jobs)
    try:
        async with asyncio.timeout(args.drain_timeout):
            await m.done.wait()
    except TimeoutError:
        pass
    b = cpu_now(s.pids)
    return step_report(s, rate, o, jobs, b[0] - a[0], args) | {
        "cpu": cpu_split(a, b, o.accepted),
        "late_from_before": m.stale - stale0,
        "quiet_wait_s": waited,
        "machine_busy_before_pct": busy,
    }


def step_report(
    s: System, rate: float, o: Offer, jobs: int, wall: float, args: argparse.Namespace
) -> dict[str, Any]:
    m = s.meter
    span = max(m.last - m.t0, args.step) if m.lat else args.step
    per_s = round(len(m.lat) / span, 1)
    p99 = pct(m.lat, 0.99)
    missing = max(jobs - len(m.lat), 0)
    holds = (
        not o.shed
        and not o.refused
        and not missing
        and per_s >= 0.95 * rate * args.jobs_per_order
        and p99 is not None
        and p99 <= args.p99_limit * 1000
    )
    return {
        "rate": rate,
        "offered": o.offered,
        "accepted": o.accepted,
        "shed": o.shed,
        "refused": dict(o.refused),
        "jobs_delivered": len(m.lat),
        "missing": missing,
        "jobs_per_s": per_s,
        "orders_per_s": round(per_s / args.jobs_per_order, 1),
        "p50_ms": pct(m.lat, 0.5),
        "p99_ms": p99,
        "max_ms": round(max(m.lat) * 1000, 1) if m.lat else None,
        "seconds": round(wall, 1),
        "clients_closed": dict(m.closed),
        "holds": holds,
    }


def cpu_split(a: Any, b: Any, orders: int) -> dict[str, Any]:
    wall = b[0] - a[0]
    used = {k: b[1][k] - a[1][k] for k in a[1]}
    server = sum(v for k, v in used.items() if k != "generator")
    machine = b[2] - a[2]
    return {
        "pct": {k: round(100 * v / wall, 1) for k, v in used.items()}
        | {
            "machine": round(100 * machine / wall, 1),
            "other": round(100 * (machine - sum(used.values())) / wall, 1),
            # CPU the hypervisor gave other guests: a step with much of it is not a clean
            # step (its tail especially: docs/operations.md, "Logs")
            "steal": round(100 * (b[3] - a[3]) / wall, 1),
        },
        "server_ms_per_order": round(1000 * server / max(orders, 1), 3),
        "ms_per_order": {k: round(1000 * v / max(orders, 1), 3) for k, v in used.items()},
    }


def next_rates(
    first: float, factor: float, cap: float, floor: float
) -> tuple[list[float], list[float]]:
    up, r = [], first
    while r <= cap:
        up.append(float(round(r)))
        r *= factor
    down, r = [], first / factor
    while r >= floor:
        down.append(float(round(r)))
        r /= factor
    return up, down


async def ladder(s: System, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The fixed rates, then the maximum: up from the first rate by ``factor`` while a step
    holds, or down while it does not."""
    steps: dict[float, dict[str, Any]] = {}

    async def at(rate: float) -> dict[str, Any]:
        if rate not in steps:
            steps[rate] = await run_step(s, rate, args)
            print_step(s.name, steps[rate])
        return steps[rate]

    up, down = next_rates(args.rates[0], args.factor, args.max_rate, args.min_rate)
    if (await at(up[0]))["holds"]:
        for r in up[1:]:
            if not (await at(r))["holds"]:
                break
    else:
        for r in down:
            if (await at(r))["holds"]:
                break
    for r in args.rates[1:]:
        await at(r)
    return [steps[r] for r in sorted(steps)]


def print_step(name: str, s: dict[str, Any]) -> None:
    cpu = " ".join(f"{k} {v:.0f}" for k, v in s["cpu"]["pct"].items())
    print(
        f"{name:>9} {s['rate']:>6.0f}/s: {s['orders_per_s']:>7.1f} orders/s done,"
        f" p50 {s['p50_ms']} p99 {s['p99_ms']} max {s['max_ms']} ms, shed {s['shed']}"
        f" refused {sum(s['refused'].values())} missing {s['missing']} |"
        f" CPU% {cpu} | server {s['cpu']['server_ms_per_order']} ms/order"
        f" | {'holds' if s['holds'] else 'does not hold'}",
        flush=True,
    )


# -- one system, start to stop ---------------------------------------------------------------
async def run_system(name: str, args: argparse.Namespace) -> dict[str, Any]:
    procs = Procs()
    s: Any = SYSTEMS[name](procs, args)
    try:
        t0 = time.monotonic()
        await s.start()
        connect_s = round(time.monotonic() - t0, 1)
        rss_idle = {k: rss_mb(pid) for k, pid in s.pids.items()}
        a = cpu_now(s.pids)
        await asyncio.sleep(args.idle)
        idle = cpu_split(a, cpu_now(s.pids), 0)["pct"]
        steps = await ladder(s, args)
        out: dict[str, Any] = {
            "system": name,
            "connected": s.meter.connected,
            "connect_failed": s.meter.failed,
            "connect_s": connect_s,
            "frame_bytes": s.meter.frame_bytes,
            "rss_idle_mb": rss_idle,
            "idle_cpu_pct": idle,
            "steps": steps,
        }
        if name == "passline" and args.batch:
            out["batch"] = await run_batch(s, args)
        return out
    finally:
        for t in s.meter.tasks:
            t.cancel()
        await procs.stop_all()


async def run_batch(s: Passline, args: argparse.Namespace) -> dict[str, Any]:
    await quiet(args.quiet_wait)
    m = s.meter
    a = cpu_now(s.pids)
    m.begin()
    res = await s.batch(args.batch, args.step, args.batch_concurrency)
    o: Offer = res.pop("offer")
    jobs = o.accepted * args.jobs_per_order
    m.owe(jobs)
    try:
        async with asyncio.timeout(args.drain_timeout):
            await m.done.wait()
    except TimeoutError:
        pass
    b = cpu_now(s.pids)
    out = step_report(s, 0.0, o, jobs, b[0] - a[0], args) | res
    out |= {
        "batch": args.batch,
        "concurrency": args.batch_concurrency,
        "accepted_per_s": round(o.accepted / args.step, 1),
        "cpu": cpu_split(a, b, o.accepted),
    }
    del out["holds"], out["rate"]
    print(
        f"passline batch of {args.batch}: {out['accepted_per_s']} orders/s accepted,"
        f" {out['orders_per_s']} delivered, p50 {out['p50_ms']} p99 {out['p99_ms']} ms,"
        f" call p50/p99 {out['call_p50_ms']}/{out['call_p99_ms']} ms,"
        f" server {out['cpu']['server_ms_per_order']} ms/order",
        flush=True,
    )
    return out


# -- report ----------------------------------------------------------------------------------
def best(res: dict[str, Any]) -> dict[str, Any] | None:
    held = [s for s in res["steps"] if s["holds"]]
    return max(held, key=lambda s: s["rate"]) if held else None


def at_rate(res: dict[str, Any], rate: float) -> dict[str, Any] | None:
    return next((s for s in res["steps"] if s["rate"] == rate), None)


def summary(res: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    top, low, high = best(res), at_rate(res, args.rates[0]), at_rate(res, args.rates[-1])
    return {
        "max_held": top["rate"] if top else None,
        "done_at_max": top["orders_per_s"] if top else None,
        "p99_at_max": top["p99_ms"] if top else None,
        "ms_per_order_low": low["cpu"]["server_ms_per_order"] if low else None,
        "p99_low": low["p99_ms"] if low else None,
        "low_holds": low["holds"] if low else None,
        "done_high": high["orders_per_s"] if high else None,
        "p99_high": high["p99_ms"] if high else None,
    }


def num(x: float | None, unit: str = "") -> str:
    return "–" if x is None else f"{x:,.0f}{unit}" if x >= 100 else f"{x:g}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "–"


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    lo, hi = (f"{r:,.0f}/s" for r in (args.rates[0], args.rates[-1]))
    print(
        f"\n| system | most orders/s held | server CPU per order at {lo} | p99 at {lo}"
        f" | p99 at its max | orders/s done at {hi} (p99) |\n|---|---|---|---|---|---|"
    )
    sums = {r["system"]: summary(r, args) for r in results}
    for name, s in sums.items():
        mark = "" if s["low_holds"] else " (not held)"
        print(
            f"| {name} | {num(s['max_held'])} | {num(s['ms_per_order_low'], ' ms')}{mark}"
            f" | {num(s['p99_low'], ' ms')}{mark} | {num(s['p99_at_max'], ' ms')}"
            f" | {num(s['done_high'])} ({num(s['p99_high'], ' ms')}) |"
        )
    p = sums.get("passline")
    for name, s in sums.items():
        if p is None or name == "passline":
            continue
        print(
            f"| **passline / {name}** | {ratio(p['max_held'], s['max_held'])}"
            f" | {ratio(p['ms_per_order_low'], s['ms_per_order_low'])}"
            f" | {ratio(p['p99_low'], s['p99_low'])} | {ratio(p['p99_at_max'], s['p99_at_max'])}"
            f" | {ratio(p['done_high'], s['done_high'])} |"
        )


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def main(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    args.tmp = Path(tempfile.mkdtemp(prefix="passline-compare-"))
    args.ready = asyncio.Semaphore(CONNECT_CONCURRENCY)
    meta = {
        "argv": sys.argv[1:],
        "tree": git_state(),
        "cpus": os.cpu_count(),
        "loadavg_before": loadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    print(f"tree {meta['tree']}; loadavg {meta['loadavg_before']}; logs in {args.tmp}", flush=True)
    results = []
    for name in args.systems:
        results.append(await run_system(name, args))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "steps"}), flush=True)
    meta["loadavg_after"] = loadavg()
    print(f"loadavg before {meta['loadavg_before']}, after {meta['loadavg_after']}")
    print_table(results, args)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = f"compare-{args.store}-{args.jobs_per_order}j-{args.clients}-{int(time.time())}.json"
    (out / name).write_text(json.dumps({"meta": meta, "runs": results}, indent=2))
    print(f"results: {out / name}")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    numbers = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    p.add_argument("--systems", default="passline,relay,socketio")
    p.add_argument("--clients", type=int, default=1000, help="store connections per system")
    p.add_argument("--jobs-per-order", type=int, choices=sorted(ROUTES), default=1)
    p.add_argument("--store", choices=["sqlite", "redis", "memory"], default="sqlite")
    p.add_argument(
        "--store-query",
        default="",
        help="sqlite URL options, e.g. group_wait_ms=0 (docs/broker.md)",
    )
    p.add_argument(
        "--rates", type=numbers, default=numbers("500,2000"), help="the first starts the search"
    )
    p.add_argument("--factor", type=float, default=1.5, help="rate step of the search")
    p.add_argument("--max-rate", type=float, default=20000)
    p.add_argument("--min-rate", type=float, default=20)
    p.add_argument("--step", type=float, default=10.0, help="seconds per rate")
    p.add_argument("--p99-limit", type=float, default=1.0, help="seconds")
    p.add_argument("--drain-timeout", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=128, help="HTTP connections of the generator")
    p.add_argument("--batch", type=int, default=100, help="orders per batch call; 0: none")
    p.add_argument("--batch-concurrency", type=int, default=4)
    p.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU, no orders")
    p.add_argument("--quiet-wait", type=float, default=20.0, help="max s to wait for a quiet box")
    args = p.parse_args(argv)
    args.systems = args.systems.split(",")
    return args


if __name__ == "__main__":
    import uvloop

    try:
        sys.exit(uvloop.run(main(parse())))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: the processes this bench started are stopped", file=sys.stderr)
        sys.exit(130)
