"""The spool: durable, deduplicated, with an outbox of state reports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import pytest

from protocol import JobState, StreamPosition, TransitionError
from protocol.config import PrinterConfig, VersionedStoreConfig
from protocol.jobs import Job
from protocol.orders import Order
from protocol.rest import JobRef, SubmitResult
from store_client.spool import Spool
from tests.store_client.factories import make_job


async def test_apply_dedupes_and_keeps_order(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    jobs = [make_job(i) for i in range(5)]
    fresh = await spool.apply(position=StreamPosition(epoch="e1", offset=5), jobs=jobs)
    assert fresh == jobs
    again = await spool.apply(position=StreamPosition(epoch="e1", offset=6), jobs=jobs[2:])
    assert again == []
    pending = await spool.pending("kitchen")
    assert [p.job.job_id for p in pending] == [j.job_id for j in jobs]
    assert all(p.state is JobState.SPOOLED for p in pending)
    assert await spool.position() == StreamPosition(epoch="e1", offset=6)
    await spool.aclose()


async def test_transition_writes_outbox_and_refuses_illegal(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    job = make_job(1)
    await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[job])
    await spool.transition(job.job_id, JobState.PRINTING)
    await spool.transition(job.job_id, JobState.PRINTED)
    with pytest.raises(TransitionError):
        await spool.transition(job.job_id, JobState.PRINTING)
    frames = await spool.outbox()
    states = [msgpack.unpackb(f)["state"] for _, f in frames]
    assert states == ["printing", "printed"]
    await spool.outbox_done(frames[0][0])
    assert [msgpack.unpackb(f)["state"] for _, f in await spool.outbox()] == ["printed"]
    assert await spool.pending("kitchen") == []
    await spool.aclose()


async def test_reroute_moves_job_to_backup_queue(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    job = make_job(1)
    await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[job])
    await spool.transition(job.job_id, JobState.HELD, reason="paper out")
    await spool.transition(job.job_id, JobState.REROUTED, printer_id="receipt")
    assert await spool.pending("kitchen") == []
    [moved] = await spool.pending("receipt")
    assert moved.job.printer_id == "kitchen" and moved.printer_id == "receipt"
    await spool.aclose()


async def test_cancel_only_before_printing(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    a, b = make_job(1), make_job(2)
    await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[a, b])
    await spool.transition(b.job_id, JobState.PRINTING)
    await spool.apply(position=StreamPosition(epoch="e", offset=4), cancels=[a.job_id, b.job_id])
    assert (await spool.get(a.job_id)).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert (await spool.get(b.job_id)).state is JobState.PRINTING  # type: ignore[union-attr]
    await spool.aclose()


async def test_interrupted_print_becomes_uncertain(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    job = make_job(1)
    await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[job])
    await spool.transition(job.job_id, JobState.PRINTING)
    await spool.aclose()
    spool = await Spool.open(tmp_path / "spool.db")
    assert await spool.recover_interrupted() == [job.job_id]
    assert (await spool.get(job.job_id)).state is JobState.UNCERTAIN  # type: ignore[union-attr]
    await spool.aclose()


async def test_prune_keeps_live_and_newest_history(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    jobs = [make_job(i) for i in range(10)]
    await spool.apply(position=StreamPosition(epoch="e", offset=10), jobs=jobs)
    for job in jobs[:8]:
        await spool.transition(job.job_id, JobState.EXPIRED)
    assert await spool.prune(keep=3) == 5
    assert [p.job.job_id for p in await spool.pending("kitchen")] == [j.job_id for j in jobs[8:]]
    assert (await spool.get(jobs[7].job_id)) is not None
    assert (await spool.get(jobs[0].job_id)) is None
    await spool.aclose()


def test_survives_kill_9(tmp_path: Path) -> None:
    """A child spools jobs, prints a line after each commit, and is killed with -9."""
    db = tmp_path / "spool.db"
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from protocol import StreamPosition
        from store_client.spool import Spool
        from tests.store_client.factories import make_job
        async def main():
            spool = await Spool.open(__import__("pathlib").Path({str(db)!r}))
            for i in range(10_000):
                await spool.apply(position=StreamPosition(epoch="e", offset=i + 1), jobs=[make_job(i)])
                print(i, flush=True)
        asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert proc.stdout is not None
    committed = -1
    for line in proc.stdout:
        committed = int(line)
        if committed >= 200:
            proc.kill()
            break
    proc.wait(timeout=30)

    async def check() -> None:
        spool = await Spool.open(db)
        ids = {p.job.job_id for p in await spool.pending("kitchen")}
        assert {make_job(i).job_id for i in range(committed + 1)} <= ids
        position = await spool.position()
        assert position is not None and position.offset >= committed + 1
        await spool.aclose()

    import asyncio

    asyncio.run(check())


def versioned(version: int) -> VersionedStoreConfig:
    printer = PrinterConfig(printer_id="kitchen", name=f"v{version}", transport="tcp://127.0.0.1:9")
    return VersionedStoreConfig(
        store_id="s-1", version=version, name=f"v{version}", printers=(printer,)
    )


async def test_an_older_config_is_never_stored_over_a_newer_one(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    await spool.apply(position=StreamPosition(epoch="e", offset=1), config=versioned(3))
    await spool.apply(position=StreamPosition(epoch="e", offset=2), config=versioned(2))
    config = await spool.config()
    assert config is not None and config.version == 3 and config.name == "v3"
    assert await spool.position() == StreamPosition(epoch="e", offset=2)  # still taken
    await spool.apply(position=StreamPosition(epoch="e", offset=3), config=versioned(4))
    config = await spool.config()
    assert config is not None and config.version == 4
    await spool.aclose()


def _lan_order(n: int) -> Order:
    return Order.model_validate(
        {"store_id": "s-1", "channel": "pos", "external_id": f"L-{n}", "service": "takeout",
         "placed_at": "2026-11-29T12:00:00+00:00",
         "items": [{"line_id": "1", "sku": "B", "name": "Burger", "qty": 1, "category": "mains"}]}
    )  # fmt: skip


def _result(order_id: str, jobs: list[Job]) -> SubmitResult:
    refs = tuple(
        JobRef(job_id=j.job_id, printer_id=j.printer_id, template=j.template, state="queued")
        for j in jobs
    )
    return SubmitResult(order_id=order_id, revision=1, tickets=(), jobs=refs)


async def test_a_lan_order_spools_its_jobs_and_its_forward_in_one_go(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    first = make_job(1)
    await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[first])
    await spool.transition(first.job_id, JobState.PRINTING)  # a report before the order
    jobs = [make_job(2), make_job(2, printer_id="bar")]
    taken, answer, fresh = await spool.take_lan_order(_lan_order(2), _result("o-2", jobs), jobs)
    assert (taken, answer.duplicate, fresh) == (True, False, jobs)
    assert [p.job.job_id for p in await spool.pending("bar")] == [jobs[1].job_id]
    await spool.transition(jobs[0].job_id, JobState.PRINTING)
    frames = [msgpack.unpackb(f) for _, f in await spool.outbox()]
    assert [(f["type"], f["seq"]) for f in frames] == [
        ("job_state", 1),
        ("lan_order", 2),  # in the sequence, before the reports of its own jobs
        ("job_state", 3),
    ]
    assert frames[1]["order"]["external_id"] == "L-2"
    assert await spool.lan_orders() == 1 and await spool.outbox_size() == 3

    again = await spool.take_lan_order(_lan_order(2), _result("o-2", jobs), jobs)
    assert again[0] is False and again[1].duplicate and again[2] == []
    assert await spool.outbox_size() == 3  # a repeat forwards nothing
    await spool.aclose()


async def test_a_lan_order_whose_jobs_came_from_the_broker_first_is_a_duplicate(
    tmp_path: Path,
) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    jobs = [make_job(3)]
    await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=jobs)
    taken, answer, fresh = await spool.take_lan_order(_lan_order(3), _result("o-3", jobs), jobs)
    assert (taken, answer.duplicate, fresh) == (True, True, [])
    assert len(await spool.pending("kitchen")) == 1  # still one job: it prints once
    assert await spool.outbox_size() == 1  # forwarded all the same: the broker dedupes
    await spool.aclose()


async def test_orders_taken_offline_are_counted_until_a_broker_is_told(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    for n, offline in ((1, False), (2, True), (3, True)):
        jobs = [make_job(n)]
        await spool.take_lan_order(_lan_order(n), _result(f"o-{n}", jobs), jobs, offline=offline)
    count, upto = await spool.offline_orders()
    assert count == 2
    jobs = [make_job(4)]
    await spool.take_lan_order(_lan_order(4), _result("o-4", jobs), jobs, offline=True)
    await spool.offline_orders_told(upto)  # the hello that said 2 was welcomed
    assert (await spool.offline_orders())[0] == 1  # the one taken after that hello
    await spool.aclose()
