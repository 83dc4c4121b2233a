"""Scale-out: 1, 2 and 3 broker nodes on one Redis (issue #8; results in docs/benchmarks.md).

Starts one ``redis-server`` (AOF, ``appendfsync everysec`` unless ``--fsync always``) and,
for each node count, that many ``passline broker --store redis://…`` processes. N simulated
store clients (``broker_load.py``'s: raw websockets, msgpack, acking every job) are spread
evenly over the nodes' websocket ports; orders are submitted round-robin over the nodes'
REST ports, so with k nodes (k-1)/k of them are submitted on one node and delivered by
another (the sharded pub/sub wake-up, DESIGN.md §5.5).

The offered rate steps up (``--rates``, ``--step`` seconds each); after each step the
generator waits until every accepted order's jobs arrived, then checks that each arrived
exactly once, at its own store's client (a mismatch fails the run: exit status 1). A step
"holds" when nothing was shed or refused, completed orders/s ≥ 95 % of the offered rate
and the p99 submit → delivery stays under ``--p99-limit``; the first step that does not
hold ends the node count. CPU is read from /proc for every broker, redis-server, this
generator and the whole machine (what is left is other people's work on a shared box).

Then a memory probe (one node, its own key prefix): Redis ``used_memory`` and ``MEMORY
USAGE`` per key before and after configuring stores, submitting orders, and filling one
store's stream to its 10,000-entry retention.

    .venv/bin/python bench/cluster_load.py                 # ~3.5 minutes on 2 cores
    .venv/bin/python bench/cluster_load.py --quick         # ~1 minute
    .venv/bin/python bench/cluster_load.py --nodes 1,3 --rates 100,200 --fsync always
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from broker_load import (
    ROOT,
    Stats,
    configure,
    order,
    quiet_gc,
    rss_mb,
    settle,
    store_client,
    submit,
)
from cluster_procs import (
    Node,
    Procs,
    cpu_split,
    git_state,
    log_problems,
    quiet,
    sample,
    start_node,
    start_redis,
)

# Config PUTs and store hellos stay under a node's Redis pool (32 connections by default),
# so that only the measured load meets that limit.
SETUP_CONCURRENCY = 16


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)


# -- load ------------------------------------------------------------------------------------
@dataclass
class Tracker(Stats):
    """Every job frame each client got; the job ids still owed to the clients."""

    got: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def job(self, store: str, job: dict[str, Any]) -> None:
        self.delivered += 1
        seen = self.got.setdefault(job["job_id"], [])
        seen.append((store, time.time()))
        if len(seen) == 1:
            self.missing.discard(job["job_id"])

    def owed(self, job_ids: list[str]) -> None:
        self.missing.update(j for j in job_ids if j not in self.got)


@dataclass
class Accepted:
    store: str
    node: int
    sent: float
    jobs: list[str]


@dataclass
class Step:
    rate: float
    accepted: list[Accepted] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    offered: int = 0
    shed: int = 0

    def reply(self, node: int, body: dict[str, Any], sent: float, status: int, raw: bytes) -> None:
        if status == 202:
            jobs = [j["job_id"] for j in json.loads(raw)["jobs"]]
            self.accepted.append(Accepted(body["store_id"], node, sent, jobs))
        else:
            self.refused[f"{status} {raw[:120].decode(errors='replace')}"] += 1


@dataclass
class Cluster:
    nodes: list[Node]
    redis: aioredis.Redis
    redis_pid: int
    stores: list[str]
    home: dict[str, int]  # store -> the node its client is connected to
    tracker: Tracker
    expected: set[str] = field(default_factory=set)  # job ids of every accepted order
    serial: int = 0

    @property
    def pids(self) -> dict[str, int]:
        out = {f"node{i + 1}": n.proc.pid for i, n in enumerate(self.nodes)}
        return out | {"redis": self.redis_pid, "generator": os.getpid()}

    def make(self, rng: random.Random) -> Callable[[int], dict[str, Any]]:
        def one(_: int) -> dict[str, Any]:
            self.serial += 1
            return order(rng.choice(self.tracker.live), self.serial)

        return one


async def run_step(c: Cluster, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    step = Step(rate)
    rng = random.Random(int(rate) * 7919 + len(c.nodes))

    def reply(node: int, body: dict[str, Any], sent: float, status: int, raw: bytes) -> None:
        step.reply(node, body, sent, status, raw)
        if status == 202:
            c.expected.update(step.accepted[-1].jobs)
            c.tracker.owed(step.accepted[-1].jobs)

    waited, busy = await quiet(args.quiet_wait)
    a = await sample(c.pids, c.redis)
    t0 = time.time()
    step.offered, step.shed = await submit(
        [n.http for n in c.nodes],
        c.make(rng),
        reply,
        rate=rate,
        duration=args.step,
        workers=args.workers,
    )
    deadline = time.monotonic() + args.drain_timeout
    while c.tracker.missing and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    b = await sample(c.pids, c.redis)
    before = {"quiet_wait_s": waited, "machine_busy_before_pct": busy}
    return step_report(c, step, t0, args) | cpu_split(a, b, len(step.accepted)) | before


def step_report(c: Cluster, step: Step, t0: float, args: argparse.Namespace) -> dict[str, Any]:
    lat: dict[bool, list[float]] = {False: [], True: []}
    missing = dup = wrong = 0
    last = t0
    for o in step.accepted:
        cross = o.node != c.home[o.store]
        for j in o.jobs:
            seen = c.tracker.got.get(j, [])
            if not seen:
                missing += 1
                continue
            dup += len(seen) > 1
            wrong += any(s != o.store for s, _ in seen)
            lat[cross].append(seen[0][1] - o.sent)
            last = max(last, seen[0][1])
    every = lat[False] + lat[True]
    n = len(step.accepted)
    done = round(n / (last - t0), 1) if n else 0.0
    p99 = percentile(every, 0.99)
    holds = (
        not step.shed
        and not step.refused
        and not missing
        and done >= 0.95 * step.rate
        and p99 is not None
        and p99 <= args.p99_limit * 1000
    )
    return {
        "offered_per_s": step.rate,
        "offered": step.offered,
        "accepted": n,
        "shed": step.shed,
        "refused": dict(step.refused),
        "completed_per_s": done,
        "jobs_per_s": round(3 * done, 1),
        "p50_ms": percentile(every, 0.5),
        "p99_ms": p99,
        "max_ms": round(max(every) * 1000, 1) if every else None,
        "p50_local_ms": percentile(lat[False], 0.5),
        "p99_local_ms": percentile(lat[False], 0.99),
        "p50_cross_ms": percentile(lat[True], 0.5),
        "p99_cross_ms": percentile(lat[True], 0.99),
        "max_local_ms": round(max(lat[False]) * 1000, 1) if lat[False] else None,
        "max_cross_ms": round(max(lat[True]) * 1000, 1) if lat[True] else None,
        "over_1s_local": sum(x > 1 for x in lat[False]),
        "over_1s_cross": sum(x > 1 for x in lat[True]),
        "cross_pct": round(100 * len(lat[True]) / max(len(every), 1), 1),
        "missing": missing,
        "duplicate": dup,
        "wrong_store": wrong,
        "holds": holds,
    }


async def connect_clients(c: Cluster, stats: Tracker) -> list[asyncio.Task[None]]:
    ready = asyncio.Semaphore(SETUP_CONCURRENCY)
    tasks = [
        asyncio.create_task(store_client(c.nodes[c.home[s]].ws, s, stats, ready)) for s in c.stores
    ]
    async with asyncio.timeout(600):
        await stats.all_connected.wait()
    quiet_gc()
    return tasks


async def used_memory(r: aioredis.Redis) -> int:
    return int((await r.info("memory"))["used_memory"])


async def run_cluster(
    k: int, procs: Procs, r: aioredis.Redis, redis_pid: int, port: int, args: argparse.Namespace
) -> dict[str, Any]:
    url = f"redis://127.0.0.1:{port}/0?prefix=bench{k}{args.redis_query}"
    logs = [args.tmp / f"nodes{k}-{i + 1}.log" for i in range(k)]
    tree = git_state()  # what the nodes run: the working tree as it is now
    nodes = list(await asyncio.gather(*(start_node(procs, url, log) for log in logs)))
    stores = [f"s-{i:05d}" for i in range(args.clients)]
    tracker = Tracker(clients=args.clients)
    c = Cluster(nodes, r, redis_pid, stores, {s: i % k for i, s in enumerate(stores)}, tracker)
    clients: list[asyncio.Task[None]] = []
    try:
        mem0 = await used_memory(r)
        await configure(nodes[0].http, stores, SETUP_CONCURRENCY)
        mem_cfg = await used_memory(r)
        rss0 = [rss_mb(n.proc.pid) for n in nodes]
        clients = await connect_clients(c, tracker)
        await asyncio.gather(*(settle(n.http) for n in nodes))
        rss_idle = [rss_mb(n.proc.pid) for n in nodes]
        a = await sample(c.pids, r)
        await asyncio.sleep(args.idle)
        idle = cpu_split(a, await sample(c.pids, r), 0)["cpu_pct"]
        steps = []
        for rate in args.rates:
            steps.append(await run_step(c, rate, args))
            print_step(k, steps[-1])
            if not steps[-1]["holds"] and not args.all_steps:
                break
        await asyncio.sleep(1.0)  # a late duplicate would arrive now
        accepted = sum(s["accepted"] for s in steps)
        mem_end, keys_end = await used_memory(r), await census(r, f"bench{k}")
        rss_end = [rss_mb(n.proc.pid) for n in nodes]
    finally:
        for t in clients:
            t.cancel()
        codes = await asyncio.gather(*(procs.stop(n.proc) for n in nodes))
    held = [s for s in steps if s["holds"]]
    return {
        "nodes": k,
        "tree": tree,
        "clients": args.clients,
        "connected": tracker.connected,
        "connect_failed": tracker.failed,
        "fsync": args.fsync,
        "best": max(held, key=lambda s: s["offered_per_s"]) if held else None,
        "steps": steps,
        "orders_accepted": accepted,
        "jobs_delivered": tracker.delivered,
        "duplicates_total": sum(len(v) > 1 for v in tracker.got.values()),
        "unexpected_jobs": len(set(tracker.got) - c.expected),
        "client_closes": tracker.closed,
        "exit_codes": codes,
        "log_problems": log_problems(nodes),
        "idle_cpu_pct": idle,
        "rss_mb_0_clients": rss0,
        "rss_mb_idle": rss_idle,
        "rss_mb_end": rss_end,
        "kib_per_connection": [
            round((i - z) * 1024 / max(1, args.clients // k), 1)
            for i, z in zip(rss_idle, rss0, strict=True)
        ],
        "redis_kb_per_store_config": round((mem_cfg - mem0) / 1024 / len(stores), 2),
        "redis_kb_per_order_acked": round((mem_end - mem_cfg) / 1024 / max(accepted, 1), 2),
        "stream_entries_per_order_acked": round(
            (keys_end["stream_entries"] - len(stores)) / max(accepted, 1), 2
        ),
        "census_end": keys_end,
    }


def mismatches(res: dict[str, Any]) -> list[str]:
    bad = [f"{name}={res[name]}" for name in ("duplicates_total", "unexpected_jobs") if res[name]]
    for s in res["steps"]:
        bad += [
            f"{s['offered_per_s']}/s: {name}={s[name]}"
            for name in ("missing", "duplicate", "wrong_store")
            if s[name]
        ]
    return bad


# -- Redis memory ----------------------------------------------------------------------------
def key_class(key: str) -> str:
    if ":loc:" in key:
        return "loc"
    tail = key.rsplit("}", 1)[-1]
    if tail == ":x":
        return "stream"
    if tail == ":m":
        return "stream_meta"
    if tail.startswith(":r:"):
        return "record_" + tail.split(":")[2]
    if tail.startswith((":live:", ":all:")):
        return "index_sets"
    return "other"


async def census(r: aioredis.Redis, prefix: str) -> dict[str, Any]:
    """Keys, bytes (``MEMORY USAGE … SAMPLES 0``) and stream entries, by kind of key."""
    keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    entries = 0
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        pipe = r.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key, samples=0)
        for key, used in zip(chunk, await pipe.execute(), strict=True):
            count[key_class(key)] += 1
            size[key_class(key)] += used or 0
        pipe = r.pipeline(transaction=False)
        streams = [key for key in chunk if key_class(key) == "stream"]
        for key in streams:
            pipe.xlen(key)
        entries += sum(await pipe.execute()) if streams else 0
    return {"keys": dict(count), "bytes": dict(size), "stream_entries": entries}


def keys_bytes(census: dict[str, Any]) -> int:
    return sum(v for k, v in census["bytes"].items() if k != "other")


async def memory_probe(
    procs: Procs, r: aioredis.Redis, port: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One node, prefix ``benchmem``: stores with a config, then orders (no clients, so the
    jobs stay queued), then one store's stream filled past its 10,000-entry retention."""
    prefix = "benchmem"
    node = await start_node(
        procs, f"redis://127.0.0.1:{port}/0?prefix={prefix}", args.tmp / "mem.log"
    )
    n_stores, per_store, long_n = args.mem_stores, args.mem_orders, args.long_orders
    stores = [f"m-{i:05d}" for i in range(n_stores)]
    status: Counter[int] = Counter()

    def reply(_: int, __: dict[str, Any], ___: float, code: int, ____: bytes) -> None:
        status[code] += 1

    try:
        m0 = await used_memory(r)
        await configure(node.http, stores, SETUP_CONCURRENCY)
        m1, c1 = await used_memory(r), await census(r, prefix)
        total = n_stores * per_store
        await submit([node.http], lambda n: order(stores[n % n_stores], n), reply, total=total)
        m2, c2 = await used_memory(r), await census(r, prefix)
        await configure(node.http, ["m-long"])
        await submit([node.http], lambda n: order("m-long", 10**7 + n), reply, total=long_n)
        key = f"{prefix}:{{m-long}}:x"
        long_len, long_bytes = await r.xlen(key), await r.memory_usage(key, samples=0) or 0
        sizes = [len(f["p"]) for _, f in await r.xrevrange(key, count=1000) or () if f]
    finally:
        code = await procs.stop(node.proc)
    kb = 1024
    d_entries = c2["stream_entries"] - c1["stream_entries"]
    return {
        "stores": n_stores,
        "orders": total,
        "long_orders": long_n,
        "replies": dict(status),
        "exit_code": code,
        "log_problems": log_problems([node]),
        "kb_per_store_config": round((m1 - m0) / kb / n_stores, 2),
        "keys_kb_per_store_config": round(keys_bytes(c1) / kb / n_stores, 2),
        "census_after_config": c1,
        "kb_per_order_queued": round((m2 - m1) / kb / total, 2),
        "keys_kb_per_order_queued": round((keys_bytes(c2) - keys_bytes(c1)) / kb / total, 2),
        "census_after_orders": c2,
        "stream_entries_per_order": round(d_entries / total, 2),
        "stream_kb_at_one_entry": round(c1["bytes"]["stream"] / kb / n_stores, 2),
        "stream_kb_per_entry": round(
            (c2["bytes"]["stream"] - c1["bytes"]["stream"]) / kb / max(d_entries, 1), 3
        ),
        "long_stream_entries": long_len,
        "long_stream_mb": round(long_bytes / kb / kb, 2),
        "long_stream_kb_per_entry": round(long_bytes / kb / max(long_len, 1), 3),
        "payload_bytes_mean": round(sum(sizes) / max(len(sizes), 1)),
    }


# -- report ----------------------------------------------------------------------------------
def print_step(k: int, s: dict[str, Any]) -> None:
    cpu = s["cpu_pct"]
    nodes = " ".join(f"{v:.0f}" for n, v in cpu.items() if n.startswith("node"))
    print(
        f"{k} node(s) {s['offered_per_s']:>5.0f}/s offered: {s['completed_per_s']:>6.1f}/s done,"
        f" p50 {s['p50_ms']} p99 {s['p99_ms']} ms (cross p99 {s['p99_cross_ms']}),"
        f" max same/cross {s['max_local_ms']}/{s['max_cross_ms']} ms,"
        f" >1 s {s['over_1s_local']}/{s['over_1s_cross']},"
        f" shed {s['shed']} refused {sum(s['refused'].values())} |"
        f" CPU% nodes [{nodes}] redis {cpu['redis']:.0f} gen {cpu['generator']:.0f}"
        f" machine {cpu['machine']:.0f} other {cpu['other']:.0f} |"
        f" ms/order nodes {s['ms_per_order']['nodes']} redis {s['ms_per_order']['redis']}"
        f" {'holds' if s['holds'] else 'DOES NOT HOLD'}",
        flush=True,
    )


def peak(res: dict[str, Any]) -> float:
    return max(s["completed_per_s"] for s in res["steps"])


def print_table(results: list[dict[str, Any]], mem: dict[str, Any] | None) -> None:
    head = (
        "| nodes | highest rate held | done orders/s | p50 / p99 ms | p99 same / cross node"
        " | peak done/s (any step)"
        " | CPU % per node | redis CPU % | generator CPU % | machine busy % (of 200) |"
        " CPU ms per order: nodes / redis / gen |"
    )
    print("\n" + head + "\n" + "|---" * 11 + "|")
    for res in results:
        s = res["best"]
        if s is None:
            print(f"| {res['nodes']} | none | | | | {peak(res)} | | | | | |")
            continue
        cpu, ms = s["cpu_pct"], s["ms_per_order"]
        nodes = " / ".join(f"{v:.0f}" for n, v in cpu.items() if n.startswith("node"))
        print(
            f"| {res['nodes']} | {s['offered_per_s']:.0f}/s | {s['completed_per_s']}"
            f" | {s['p50_ms']} / {s['p99_ms']} | {s['p99_local_ms']} / {s['p99_cross_ms']}"
            f" | {peak(res)}"
            f" | {nodes} | {cpu['redis']:.0f} | {cpu['generator']:.0f} | {cpu['machine']:.0f}"
            f" | {ms['nodes']} / {ms['redis']} / {ms['generator']} |"
        )
    for res in results:
        print(
            f"{res['nodes']} node(s): idle CPU % {res['idle_cpu_pct']}; RSS MB 0 clients {res['rss_mb_0_clients']}, idle"
            f" {res['rss_mb_idle']} ({res['kib_per_connection']} KiB/connection), end"
            f" {res['rss_mb_end']}; Redis KB/store config {res['redis_kb_per_store_config']},"
            f" KB/order (acked) {res['redis_kb_per_order_acked']},"
            f" stream entries/order {res['stream_entries_per_order_acked']}"
        )
    for res in [*results, *([mem] if mem else [])]:
        for line, n in res["log_problems"].items():
            print(f"log ({res.get('nodes', 'memory probe')} node(s)): {n} × {line}")
    if mem:
        print(
            f"memory probe: {mem['kb_per_store_config']} KB/store (config + 1-entry stream),"
            f" {mem['kb_per_order_queued']} KB/order ({mem['stream_entries_per_order']} stream"
            f" entries/order, {mem['stream_kb_per_entry']} KB/entry in short streams);"
            f" one stream at {mem['long_stream_entries']} entries: {mem['long_stream_mb']} MB"
            f" ({mem['long_stream_kb_per_entry']} KB/entry, payload {mem['payload_bytes_mean']} B)"
        )


# -- main ------------------------------------------------------------------------------------
async def main(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    args.tmp = Path(tempfile.mkdtemp(prefix="passline-cluster-"))
    print(f"tree {git_state()}; {os.cpu_count()} CPUs; logs in {args.tmp}", flush=True)
    procs = Procs()
    results: list[dict[str, Any]] = []
    mem = None
    bad: list[str] = []
    r: aioredis.Redis | None = None
    try:
        port, r = await start_redis(procs, args.tmp, args.fsync)
        redis_pid = procs.running[0].pid
        for k in args.nodes:
            results.append(await run_cluster(k, procs, r, redis_pid, port, args))
            print(json.dumps(results[-1]), flush=True)
            bad += [f"{k} node(s): {m}" for m in mismatches(results[-1])]
            if bad:
                print("!! DELIVERY MISMATCH: " + "; ".join(bad), flush=True)
            if results[-1]["connect_failed"]:
                print(f"!! {results[-1]['connect_failed']} store clients could not connect")
        if not args.no_memory:
            mem = await memory_probe(procs, r, port, args)
            print(json.dumps(mem), flush=True)
    finally:
        if r is not None:
            await r.aclose()
        await procs.stop_all()
        shutil.rmtree(args.tmp / "appendonlydir", ignore_errors=True)  # keep only the logs
    print_table(results, mem)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = f"cluster_load-{args.clients}-{int(time.time())}.json"
    meta = {"argv": sys.argv[1:], "tree": git_state(), "cpus": os.cpu_count()}
    (out / name).write_text(json.dumps({"meta": meta, "runs": results, "memory": mem}, indent=2))
    print(f"results: {out / name}; logs: {args.tmp}")
    if bad:
        print("!! DELIVERY MISMATCH: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    numbers = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    p.add_argument("--nodes", default="1,2,3", help="node counts to run, e.g. 1,2,3")
    p.add_argument("--clients", type=int, default=1000, help="simulated store clients")
    p.add_argument("--rates", type=numbers, default=numbers("100,150,200,250,300,400,500,600,800"))
    p.add_argument("--step", type=float, default=8.0, help="seconds per offered rate")
    p.add_argument("--all-steps", action="store_true", help="go on after a step that fails")
    p.add_argument(
        "--idle", type=float, default=5.0, help="seconds of idle CPU (clients, no orders)"
    )
    p.add_argument("--p99-limit", type=float, default=1.0, help="seconds")
    p.add_argument("--workers", type=int, default=32, help="HTTP connections per node")
    p.add_argument("--drain-timeout", type=float, default=60.0)
    p.add_argument(
        "--quiet-wait", type=float, default=20.0, help="seconds to wait for a quiet machine"
    )
    p.add_argument("--fsync", choices=["everysec", "always"], default="everysec")
    p.add_argument("--mem-stores", type=int, default=1000)
    p.add_argument("--mem-orders", type=int, default=3, help="orders per store, memory probe")
    p.add_argument("--long-orders", type=int, default=2100, help="orders into one stream")
    p.add_argument(
        "--redis-query", default="", help="more redis URL options, e.g. '&max_connections=256'"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the memory probe")
    p.add_argument(
        "--quick", action="store_true", help="~1 minute: fewer clients, steps and seconds"
    )
    args = p.parse_args(argv)
    args.nodes = [int(x) for x in args.nodes.split(",")]
    if args.quick:
        args.clients, args.rates, args.step = min(args.clients, 300), [100.0, 200.0], 3.0
        args.idle, args.mem_stores, args.mem_orders, args.long_orders = 2.0, 100, 2, 200
    return args


if __name__ == "__main__":
    import uvloop

    try:
        sys.exit(uvloop.run(main(parse())))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, SIGTERM
        print("interrupted: the processes this bench started are stopped", file=sys.stderr)
        sys.exit(130)
