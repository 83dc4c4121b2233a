"""What an idle store link costs the broker, by allocation site (issue 13, done-when 4).

The broker runs in this process (memory storage, rate limits off) under ``tracemalloc``;
``--clients`` simulated store clients connect from a child process (``broker_load.py``'s,
idle after their welcome). Between a snapshot taken after a warm-up batch of links and one
after all of them, the growth per link is printed in total and by the source lines that
allocated it — what to slim. The RSS figure per connection at 10,000 stores is
``broker_load.py``'s (docs/benchmarks.md); this one is Python heap only.

    .venv/bin/python bench/link_memory.py --clients 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tracemalloc
from pathlib import Path

from broker_load import SECRET, Stats, configure, store_client

from broker.app import start_broker
from broker.config import Settings

HERE = Path(__file__).resolve().parent


async def hold(url: str, stores: list[str]) -> None:
    """The child: connect every store, say so on stdout, keep the links until stdin closes."""
    stats, ready = Stats(), asyncio.Semaphore(200)
    stats.clients = len(stores)
    tasks = [asyncio.create_task(store_client(url, s, stats, ready)) for s in stores]
    while stats.connected + stats.failed < len(stores):
        await asyncio.sleep(0.1)
    print(f"connected {stats.connected} failed {stats.failed}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for t in tasks:
        t.cancel()


async def connect(url: str, stores: list[str]) -> asyncio.subprocess.Process:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__)), "--child", url, *stores,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=HERE.parent,
    )  # fmt: skip
    assert child.stdout is not None
    line = (await child.stdout.readline()).decode().strip()
    print(f"  {len(stores)} links: {line}")
    return child


async def main(clients: int, warm: int, top: int) -> None:
    settings = Settings(
        http="127.0.0.1:0", ws="127.0.0.1:0", store="memory://", secret=SECRET,
        hello_rate=0.0, ingest_rate=0.0, ws_max_per_address=0, log_level="warning",
    )  # fmt: skip
    tracemalloc.start(12)
    async with start_broker(settings) as b:
        http, ws = f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}/v1/ws/store"
        stores = [f"s-{i:05d}" for i in range(warm + clients)]
        await configure(http, stores, 8)
        first = await connect(ws, stores[:warm])
        await asyncio.sleep(2)
        gc.collect()
        before = tracemalloc.take_snapshot()
        rest = await connect(ws, stores[warm:])
        await asyncio.sleep(2)
        gc.collect()
        after = tracemalloc.take_snapshot()
        diff = after.compare_to(before, "lineno")
        total = sum(d.size_diff for d in diff)
        print(f"python heap per idle link: {total / clients / 1024:.1f} KiB")
        for d in diff[:top]:
            frame = d.traceback[0]
            name = frame.filename.split("site-packages/")[-1]
            per, blocks = d.size_diff / clients, d.count_diff / clients
            print(f"  {per:8.0f} B  {blocks:5.1f} blocks  {name}:{frame.lineno}")
        for child in (first, rest):
            assert child.stdin is not None
            child.stdin.close()
            await child.wait()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        asyncio.run(hold(sys.argv[2], sys.argv[3:]))
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=2000)
    p.add_argument("--warm", type=int, default=200, help="links before the first snapshot")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    asyncio.run(main(a.clients, a.warm, a.top))
