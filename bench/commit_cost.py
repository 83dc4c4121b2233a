"""What one storage commit costs, by backend and by how many commits share a group (issue 13).

Each commit is what an order's submit makes at its smallest: one record (1 KiB of JSON)
and one stream entry (1 KiB), for one of 100 stores. ``--concurrency`` commits are in
flight at once, so the writer groups up to that many (sqlite: one transaction, one
fsync). Prints, per commit: the process's CPU (the commit and checkpoint threads
included), the event loop thread's CPU, wall time, and the bytes and write calls the
process made (the WAL, and the checkpoint copying it into the database).

    .venv/bin/python bench/commit_cost.py
    .venv/bin/python bench/commit_cost.py --urls 'sqlite:///{tmp}/a.db?synchronous=normal&group_wait_ms=0'
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import uvloop

from broker.storage import open_storage
from broker.storage.base import EntryKind, Kind, NewEntry, Put, Tx

DOC = '{"x":"' + "a" * 1000 + '"}'
DEFAULT_URLS = "sqlite:///{tmp}/full.db,sqlite:///{tmp}/normal.db?synchronous=normal,memory://"


def io_counters() -> tuple[int, int]:
    """(bytes written by write calls, write calls) of this process so far."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"]), int(fields["syscw"])


async def measure(url: str, n: int, concurrency: int) -> dict[str, float]:
    storage = await open_storage(url)

    async def one(i: int) -> None:
        tx = Tx([Put(Kind.JOB, f"j{i}", DOC, 1, 0)], [NewEntry(EntryKind.JOB, DOC, f"j{i}")])
        await storage.commit(f"s-{i % 100}", tx)

    for i in range(200):  # warm: tables, statement cache, the writer's pace
        await one(10_000_000 + i)
    io0, cpu0, loop0, wall0 = (
        io_counters(),
        time.process_time(),
        time.thread_time(),
        time.perf_counter(),
    )
    for start in range(0, n, concurrency):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + concurrency))))
    cpu1, loop1, wall1 = time.process_time(), time.thread_time(), time.perf_counter()
    await storage.aclose()  # its last checkpoint counts: the bytes are the commits'
    io1 = io_counters()
    return {
        "process_us": 1e6 * (cpu1 - cpu0) / n,
        "loop_us": 1e6 * (loop1 - loop0) / n,
        "wall_us": 1e6 * (wall1 - wall0) / n,
        "kib_written": (io1[0] - io0[0]) / n / 1024,
        "write_calls": (io1[1] - io0[1]) / n,
    }


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'backend':48s} {'conc':>4s} {'CPU µs':>8s} {'loop µs':>8s} {'wall µs':>8s} "
              f"{'KiB written':>11s} {'writes':>6s}")  # fmt: skip
        for concurrency in args.concurrency:
            for i, template in enumerate(args.urls):
                url = template.replace("{tmp}", f"{tmp}/{concurrency}-{i}")
                r = await measure(url, args.commits, concurrency)
                label = template.replace("{tmp}/", "")
                print(f"{label:48s} {concurrency:4d} {r['process_us']:8.1f} {r['loop_us']:8.1f} "
                      f"{r['wall_us']:8.1f} {r['kib_written']:11.1f} {r['write_calls']:6.1f}")  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--commits", type=int, default=3000)
    p.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 10, 50]
    )
    p.add_argument("--urls", type=lambda s: s.split(","), default=DEFAULT_URLS.split(","))
    uvloop.run(main(p.parse_args()))
