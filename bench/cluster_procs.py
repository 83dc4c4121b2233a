"""The processes of ``cluster_load.py`` — one ``redis-server``, ``passline broker`` nodes —
and what they cost: CPU from /proc per process and for the whole machine, Redis command
counts from ``INFO commandstats``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from broker_load import HTTP, LISTEN, ROOT, SECRET, start

HZ = os.sysconf("SC_CLK_TCK")
STOP_S = 30.0  # a broker drains for up to 20 s (drain_timeout) before it exits


# -- processes -------------------------------------------------------------------------------
class Procs:
    """Every process this bench started; ``stop_all`` ends each one, by its own pid."""

    def __init__(self) -> None:
        self.running: list[asyncio.subprocess.Process] = []

    def add(self, proc: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
        self.running.append(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process) -> int:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                async with asyncio.timeout(STOP_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(ValueError):
            self.running.remove(proc)
        return proc.returncode or 0

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(p) for p in list(self.running)))


async def start_redis(procs: Procs, workdir: Path, fsync: str) -> tuple[int, aioredis.Redis]:
    port = free_port()
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    args += ["--save", "", "--appendonly", "yes", "--appendfsync", fsync]
    args += ["--logfile", str(workdir / "redis.log")]
    procs.add(await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL))
    r = aioredis.Redis(port=port, decode_responses=True)
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(OSError, aioredis.ConnectionError):
                if await r.ping():
                    return port, r
            await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    proc: asyncio.subprocess.Process
    http: str
    ws: str
    log: Path


async def start_node(procs: Procs, store_url: str, log: Path) -> Node:
    env = {
        **os.environ,
        "PASSLINE_SECRET": SECRET,
        "PASSLINE_INGEST_RATE": "0",
        "PASSLINE_HELLO_RATE": "0",
        "PASSLINE_WS_MAX_PER_ADDRESS": "0",  # every simulated store is on 127.0.0.1
        "PASSLINE_PING_INTERVAL": "60",
        "PASSLINE_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "passline", "broker", "--store", store_url]
    cmd += ["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]
    with log.open("ab") as err:
        proc, line = await start(cmd, env, stderr=err)
    procs.add(proc)
    http = "http://127.0.0.1:" + HTTP.search(line).group(2)  # type: ignore[union-attr]
    ws = "ws://127.0.0.1:" + LISTEN.search(line).group(2) + "/v1/ws/store"  # type: ignore[union-attr]
    return Node(proc, http, ws, log)


def log_problems(nodes: list[Node]) -> dict[str, int]:
    """Warnings and errors in the nodes' logs, counted by message (ids masked)."""
    out: Counter[str] = Counter()
    for i, n in enumerate(nodes):
        for line in n.log.read_text(errors="replace").splitlines():
            if any(w in line for w in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
                text = re.sub(r"^[\d-]+ [\d:,]+ ", "", line)
                text = re.sub(r"\b[sotj]-[0-9a-f]+\b|\('127.0.0.1', \d+\)", "*", text)
                out[f"node{i + 1}: " + re.sub(r"\b\d+\b", "N", text)[:200]] += 1
    return dict(out)


# -- CPU -------------------------------------------------------------------------------------
@dataclass
class Sample:
    wall: float
    procs: dict[str, float]
    machine_busy: float
    steal: float
    redis: dict[str, Any]


def proc_cpu_s(pid: int, children: bool) -> float:
    """utime + stime; with ``children``, also of the children it waited for (redis-server's
    AOF rewrite is a fork)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11 : 15 if children else 13]) / HZ


def machine_cpu_s() -> tuple[float, float]:
    """Busy (user, nice, system, irq, softirq) and steal seconds of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / HZ, f[7] / HZ


async def sample(pids: dict[str, int], r: aioredis.Redis) -> Sample:
    info = await r.info("all")
    keep = {k: v for k, v in info.items() if k.startswith("cmdstat_")}
    procs = {name: proc_cpu_s(pid, name == "redis") for name, pid in pids.items()}
    return Sample(time.monotonic(), procs, *machine_cpu_s(), keep)


def cpu_split(a: Sample, b: Sample, orders: int) -> dict[str, Any]:
    wall = b.wall - a.wall
    used = {k: b.procs[k] - a.procs[k] for k in a.procs}
    nodes = sum(v for k, v in used.items() if k.startswith("node"))
    machine = b.machine_busy - a.machine_busy
    per = max(orders, 1)
    return {
        "cpu_pct": {k: round(100 * v / wall, 1) for k, v in used.items()}
        | {
            "machine": round(100 * machine / wall, 1),
            "other": round(100 * (machine - sum(used.values())) / wall, 1),
            "steal": round(100 * (b.steal - a.steal) / wall, 1),
        },
        "ms_per_order": {
            "nodes": round(1000 * nodes / per, 2),
            "redis": round(1000 * used["redis"] / per, 2),
            "generator": round(1000 * used["generator"] / per, 2),
        },
    } | redis_split(a.redis, b.redis, per)


def redis_split(a: dict[str, Any], b: dict[str, Any], per: int) -> dict[str, Any]:
    """Commands per order by name (``INFO commandstats`` also counts the commands that the
    commit script runs), and the script's own time per call."""
    calls: Counter[str] = Counter()
    for k, v in b.items():
        calls[k.removeprefix("cmdstat_")] = v["calls"] - a.get(k, {"calls": 0})["calls"]
    ev_usec = b.get("cmdstat_evalsha", {}).get("usec", 0) - a.get("cmdstat_evalsha", {}).get(
        "usec", 0
    )
    return {
        "redis_calls_per_order": {k: round(n / per, 2) for k, n in calls.most_common(8) if n},
        "evalsha_per_order": round(calls["evalsha"] / per, 2),
        "evalsha_usec_per_call": round(ev_usec / max(calls["evalsha"], 1), 1),
    }


async def quiet(limit_s: float, busy_pct: float = 30.0) -> tuple[float, float]:
    """Wait (at most ``limit_s``) for a second in which the whole machine is under
    ``busy_pct`` % busy (of 100 × cores): other people's test runs share this box."""
    t0 = time.monotonic()
    while True:
        b0 = machine_cpu_s()[0]
        await asyncio.sleep(1.0)
        busy = 100 * (machine_cpu_s()[0] - b0)
        if busy < busy_pct or time.monotonic() - t0 >= limit_s:
            return round(time.monotonic() - t0, 1), round(busy, 1)


def git_state() -> str:
    """HEAD, and the broker files that differ from it: what was measured."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout

    status = git("status", "--porcelain", "--", "broker", "protocol", "passline")
    dirty = [line[3:] for line in status.splitlines()]
    return git("rev-parse", "--short", "HEAD").strip() + (f" + {dirty}" if dirty else "")
