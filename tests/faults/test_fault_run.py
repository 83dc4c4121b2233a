"""Issue 12: a short seeded fault run per storage backend must lose nothing and print
nothing twice.

The two runs split the fault kinds between them, so the suite sees every kind once per
pass; ``bench/faults.py --minutes N`` is the long run with every kind on each backend.
Repeat a failing run with the seed it names: ``PASSLINE_FAULT_SEED=… pytest tests/faults``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.ledger import Category
from tests.faults.result import RunConfig, write_json
from tests.faults.run import fault_run
from tests.faults.schedule import Fault

SEED = int(os.environ.get("PASSLINE_FAULT_SEED", "12"))
KINDS = {
    "sqlite": (
        Fault.BROKER_KILL, Fault.CLIENT_KILL, Fault.LINK_STALL, Fault.DISK_FULL,
        Fault.PAPER_OUT, Fault.POWER_LOSS,
    ),
    "redis": (
        Fault.BROKER_TERM, Fault.CLIENT_TERM, Fault.LINK_CUT, Fault.REDIS_RESTART,
        Fault.CLOCK_SKEW, Fault.COVER_OPEN,
    ),
}  # fmt: skip


@pytest.mark.timeout(480)
@pytest.mark.parametrize("storage", ["sqlite", "redis"])
async def test_short_fault_run_loses_nothing_and_prints_nothing_twice(
    tmp_path: Path, storage: str
) -> None:
    config = RunConfig(
        workdir=tmp_path, seed=SEED, storage=storage, seconds=50, rate=2.0,
        kinds=KINDS[storage], scale=0.5, settle_s=150,
    )  # fmt: skip
    result = await fault_run(config)
    write_json(result, tmp_path / "ledger.json")
    report = result.report()
    counts = result.ledger.counts()
    assert not [e for e in result.executed if e["note"].startswith("harness error")], report
    assert {e.kind for e in result.schedule} == set(KINDS[storage]), report
    assert len(result.executed) == len(result.schedule), report
    assert result.ledger.orders_accepted == result.ledger.orders_submitted > 0, report
    assert counts[Category.LOST] == 0, report
    assert counts[Category.DOUBLED] == 0, report
    assert counts[Category.DOUBLED_UNCERTAIN] == 0, report  # uncertain is never reprinted
