"""In-process cost of the broker's submit and ack, without sockets (issue 13).

Orders (the compare bench's order, 1,000 stores configured as ``compare.py`` does) go
through ``Orders.submit`` 50 at a time, then each job's ack through ``FleetState.acked``,
on sqlite with fsync. Prints CPU µs per submit and per ack (the process: the commit
thread's CPU included), and the bytes it wrote per order (the WAL and the checkpoint).
What the loop spends beyond these on a real run is HTTP and websockets.

    .venv/bin/python bench/hot_path.py --orders 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime

from broker_load import order
from commit_cost import io_counters
from compare_systems import CONFIGS

from broker.fleet import FleetState
from broker.orders import Orders
from broker.storage import open_storage
from protocol.config import StoreConfig
from protocol.orders import Order

CONCURRENCY = 50


async def main(n: int, stores: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        storage = await open_storage(f"sqlite:///{tmp}/hot.db")
        orders = Orders(storage)
        fleet = FleetState(storage, lambda message: None)
        ids = [f"s-{i:05d}" for i in range(stores)]
        config = StoreConfig.model_validate(CONFIGS[1])
        for sid in ids:
            await orders.put_config(sid, config)
        bodies = [json.dumps(order(ids[i % stores], i)).encode() for i in range(n)]
        io0 = io_counters()
        t0 = time.process_time()
        results = []
        for c in range(0, n, CONCURRENCY):
            chunk = bodies[c : c + CONCURRENCY]
            results += await asyncio.gather(
                *(orders.submit(Order.model_validate_json(b)) for b in chunk)
            )
        t1 = time.process_time()
        now = datetime.now(UTC)
        for c in range(0, n, CONCURRENCY):
            await asyncio.gather(
                *(
                    fleet.acked(ids[i % stores], [(results[i][1].jobs[0].job_id, now)])
                    for i in range(c, min(n, c + CONCURRENCY))
                )
            )
        t2 = time.process_time()
        await storage.aclose()  # its last checkpoint counts
        io1 = io_counters()
    print(f"submit {1e6 * (t1 - t0) / n:.0f} µs/order (validation included)")
    print(f"ack    {1e6 * (t2 - t1) / n:.0f} µs/job")
    written, calls = (io1[0] - io0[0]) / n / 1024, (io1[1] - io0[1]) / n
    print(f"written {written:.1f} KiB in {calls:.1f} write calls per order and its ack")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--stores", type=int, default=1000)
    a = p.parse_args()
    asyncio.run(main(a.orders, a.stores))
