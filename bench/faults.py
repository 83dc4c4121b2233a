"""The seeded fault run, long form (issue 12; results in docs/reliability.md).

Steady order load on a real store — ``passline broker`` (SQLite, or two nodes on one
``redis-server``), ``passline store-client`` behind a cuttable proxy, three emulated
printers — while a seeded schedule of faults hits every part: broker and store-client
kill -9 and SIGTERM, link cuts and stalls, Redis restarts, paper out, cover open, power
loss, a full disk under the spool, a clock hours off. Then the ledger: every accepted
ticket's jobs against the paper. Exit status 1 when a job was lost or printed twice
without an ``uncertain`` mark.

    .venv/bin/python bench/faults.py --minutes 10 --storage redis --seed 12 --out ledger.json

The engine lives in ``tests/faults/run.py``; the test suite runs a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.faults.result import RunConfig, write_json  # noqa: E402
from tests.faults.run import fault_run  # noqa: E402
from tests.faults.schedule import Fault  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of load and faults")
    p.add_argument("--storage", choices=["sqlite", "redis"], default="sqlite")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=2.0, help="orders per second")
    p.add_argument(
        "--kinds",
        help="comma-separated fault kinds (default: all): " + ", ".join(f.value for f in Fault),
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiplies fault durations")
    p.add_argument("--settle", type=float, default=300.0, help="max seconds to wait at the end")
    p.add_argument("--out", type=Path, help="write the ledger as JSON here")
    p.add_argument("--workdir", type=Path, help="logs, databases, spool (default: a temp dir)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"passline-faults-{args.storage}-"))
    kinds = tuple(Fault(k.strip()) for k in args.kinds.split(",")) if args.kinds else None
    config = RunConfig(
        workdir=workdir, seed=args.seed, storage=args.storage, seconds=args.minutes * 60,
        rate=args.rate, kinds=kinds, scale=args.scale, settle_s=args.settle,
    )  # fmt: skip
    result = asyncio.run(fault_run(config, progress=lambda line: print(line, flush=True)))
    print(result.report())
    if args.out:
        write_json(result, args.out)
        print(f"ledger written to {args.out}")
    return 0 if result.ledger.ok else 1


if __name__ == "__main__":
    sys.exit(main())
