"""A printer worker against the real emulator over TCP: print, hold, fail over, expire."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import msgpack
import pytest

from printer_drivers.emulator import PrinterEmulator
from protocol import JobState, PrinterStatus, StreamPosition
from protocol.config import PrinterConfig, VersionedStoreConfig
from store_client.errors import SpoolError
from store_client.spool import Spool
from store_client.transport_policy import TransportPolicy
from store_client.worker import PrinterWorker, WorkerSettings
from tests.store_client.factories import NOW, make_job

FAST = WorkerSettings(
    idle_poll_s=0.2, held_poll_s=0.1, heartbeat_s=60, connect_timeout_s=2, barrier_timeout_s=2
)


class Host:
    """The worker's view of the daemon, recording what it was told."""

    def __init__(self, config: VersionedStoreConfig) -> None:
        self._config = config
        self.statuses: list[tuple[str, PrinterStatus]] = []
        self.woken: list[str] = []
        self.workers: dict[str, PrinterWorker] = {}

    def config(self) -> VersionedStoreConfig:
        return self._config

    def printer_status(self, printer_id: str, status: PrinterStatus) -> None:
        self.statuses.append((printer_id, status))

    def reports_pending(self) -> None:
        pass

    def wake(self, printer_id: str) -> None:
        self.woken.append(printer_id)
        if printer_id in self.workers:
            self.workers[printer_id].wake()


def store_config(main_port: int, backup_port: int, failover_s: int = 1) -> VersionedStoreConfig:
    return VersionedStoreConfig(
        store_id="s-1",
        version=1,
        name="Test",
        printers=(
            PrinterConfig(
                printer_id="kitchen",
                name="Hot line",
                transport=f"tcp://127.0.0.1:{main_port}",
                backup="receipt",
            ),
            PrinterConfig(
                printer_id="receipt", name="Front", transport=f"tcp://127.0.0.1:{backup_port}"
            ),
        ),
        failover_after_s=failover_s,
    )


@pytest.fixture
async def emulators() -> AsyncIterator[tuple[PrinterEmulator, PrinterEmulator]]:
    async with PrinterEmulator(name="kitchen") as a, PrinterEmulator(name="receipt") as b:
        yield a, b


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[Spool]:
    s = await Spool.open(tmp_path / "spool.db")
    yield s
    await s.aclose()


async def run_until(worker: PrinterWorker, done: Callable[[], bool], limit: int = 200) -> None:
    """Step the worker until ``done()``; a bound on steps keeps a bug from hanging CI."""
    for _ in range(limit):
        if done():
            return
        delay = await worker.step()
        if delay:
            await asyncio.sleep(min(delay, 0.1))
    raise AssertionError("worker did not get there")


async def steps(worker: PrinterWorker, n: int) -> None:
    for _ in range(n):
        await worker.step()


async def states(spool: Spool, jobs: list) -> list[JobState]:
    return [(await spool.get(j.job_id)).state for j in jobs]  # type: ignore[union-attr]


async def test_prints_in_order_exactly_once(emulators, spool) -> None:
    kitchen, receipt = emulators
    host = Host(store_config(kitchen.port, receipt.port))
    worker = PrinterWorker(host.config().printers[0], spool, host, FAST)
    jobs = [make_job(i) for i in range(5)]
    await spool.apply(position=StreamPosition(epoch="e", offset=5), jobs=jobs)
    async with worker_printer(worker):
        await run_until(worker, lambda: len(kitchen.receipts) >= 5)
        await steps(worker, 3)  # idle steps print nothing more
    assert [f"Burger {i}" in r.text for i, r in enumerate(kitchen.receipts)] == [True] * 5
    assert len(kitchen.receipts) == 5
    assert await states(spool, jobs) == [JobState.PRINTED] * 5
    assert host.statuses and host.statuses[-1][1].state == "ready"


async def test_paper_out_holds_then_prints_in_order(emulators, spool) -> None:
    kitchen, receipt = emulators
    host = Host(store_config(kitchen.port, receipt.port, failover_s=3600))
    worker = PrinterWorker(host.config().printers[0], spool, host, FAST)
    await kitchen.set_state(paper="out")
    jobs = [make_job(i) for i in range(3)]
    await spool.apply(position=StreamPosition(epoch="e", offset=3), jobs=jobs)
    async with worker_printer(worker):
        await worker.step()
        assert await states(spool, jobs) == [JobState.HELD] * 3
        assert host.statuses[-1][1].paper == "out" and kitchen.receipts == []
        await kitchen.set_state(paper="ok")
        await run_until(worker, lambda: len(kitchen.receipts) >= 3)
    assert len(kitchen.receipts) == 3
    assert all(f"Burger {i}" in r.text for i, r in enumerate(kitchen.receipts))
    assert await states(spool, jobs) == [JobState.PRINTED] * 3


async def test_failover_to_backup_with_header(emulators, spool) -> None:
    kitchen, receipt = emulators
    host = Host(store_config(kitchen.port, receipt.port, failover_s=1))
    main = PrinterWorker(host.config().printers[0], spool, host, FAST, clock=lambda: clock[0])
    backup = PrinterWorker(host.config().printers[1], spool, host, FAST, clock=lambda: clock[0])
    host.workers = {"kitchen": main, "receipt": backup}
    clock = [NOW]
    await kitchen.set_state(cover_open=True)
    jobs = [make_job(i) for i in range(2)]
    await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=jobs)
    async with worker_printer(main), worker_printer(backup):
        await main.step()
        assert await states(spool, jobs) == [JobState.HELD] * 2
        clock[0] = NOW + timedelta(seconds=2)
        await main.step()
        assert await states(spool, jobs) == [JobState.REROUTED] * 2 and host.woken == ["receipt"]
        await run_until(backup, lambda: len(receipt.receipts) >= 2)
    assert all("REROUTED" in r.text and "Hot line" in r.text for r in receipt.receipts)
    assert kitchen.receipts == []
    assert await states(spool, jobs) == [JobState.PRINTED] * 2


async def test_expired_jobs_are_not_printed(emulators, spool) -> None:
    kitchen, receipt = emulators
    host = Host(store_config(kitchen.port, receipt.port, failover_s=3600))
    clock = [NOW]
    worker = PrinterWorker(host.config().printers[0], spool, host, FAST, clock=lambda: clock[0])
    await kitchen.set_state(offline=True)
    old, fresh = make_job(1, ttl_s=60), make_job(2, ttl_s=3600)
    await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[old, fresh])
    async with worker_printer(worker):
        await worker.step()
        clock[0] = NOW + timedelta(seconds=120)  # the printer comes back after old's TTL
        await kitchen.set_state(offline=False)
        await run_until(worker, lambda: len(kitchen.receipts) >= 1)
        await steps(worker, 3)
    assert await states(spool, [old, fresh]) == [JobState.EXPIRED, JobState.PRINTED]
    assert len(kitchen.receipts) == 1 and "Burger 2" in kitchen.receipts[0].text


async def test_hang_mid_job_gives_uncertain_and_worker_recovers(spool) -> None:
    # A slow printer (chars/s) so the hang can start while the job is on its way.
    async with PrinterEmulator(name="kitchen", cps=400) as kitchen:
        host = Host(store_config(kitchen.port, kitchen.port, failover_s=3600))
        worker = PrinterWorker(host.config().printers[0], spool, host, FAST)
        a, b = make_job(1), make_job(2)
        async with worker_printer(worker):
            await worker.step()  # idle poll: ready
            await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[a])
            before = kitchen.engine.bytes_in
            printing = asyncio.create_task(worker.step())
            for _ in range(1000):  # until the job's bytes are arriving
                if kitchen.engine.bytes_in > before + 64:
                    break
                await asyncio.sleep(0.005)
            await kitchen.set_state(hang=True)
            await asyncio.wait_for(printing, 30)  # never hangs its caller
            assert (await spool.get(a.job_id)).state is JobState.UNCERTAIN  # type: ignore[union-attr]
            await kitchen.set_state(hang=False)
            await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[b])
            await run_until(worker, lambda: any("Burger 2" in r.text for r in kitchen.receipts))
        assert (await spool.get(b.job_id)).state is JobState.PRINTED  # type: ignore[union-attr]
        assert (await spool.get(a.job_id)).state is JobState.UNCERTAIN  # never auto-reprinted  # type: ignore[union-attr]


async def bytes_arrive(emulator: PrinterEmulator, beyond: int) -> None:
    """Wait until a job's bytes are on their way to ``emulator`` (bounded)."""
    for _ in range(2000):
        if emulator.engine.bytes_in > beyond:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("no bytes reached the printer")


# -- issue 12: a job left in ``printing`` is uncertain, never printed or held again ---------


async def test_worker_stopped_mid_print_leaves_uncertain_and_the_next_job_prints(spool) -> None:
    """A config change cancels the worker while print_job awaits; a new worker takes over."""
    async with PrinterEmulator(name="kitchen", cps=400) as kitchen:  # slow: stopped mid-job
        host = Host(store_config(kitchen.port, kitchen.port, failover_s=3600))
        printer = host.config().printers[0]
        a, b = make_job(1), make_job(2)
        await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[a])
        old = PrinterWorker(printer, spool, host, FAST)
        before = kitchen.engine.bytes_in
        running = asyncio.create_task(old.run())
        await bytes_arrive(kitchen, before + 64)
        running.cancel()  # what StoreClient._apply_config does to a changed printer
        with pytest.raises(asyncio.CancelledError):
            await running
        renamed = printer.model_copy(update={"name": "Hot line 2"})
        new = PrinterWorker(renamed, spool, host, FAST)
        await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[b])
        async with worker_printer(new):
            await run_until(new, lambda: any("Burger 2" in r.text for r in kitchen.receipts))
            await steps(new, 3)
        assert await states(spool, [a, b]) == [JobState.UNCERTAIN, JobState.PRINTED]
        assert sum("Burger 1" in r.text for r in kitchen.receipts) <= 1
        assert "interrupted" in ((await spool.get(a.job_id)).reason or "")  # type: ignore[union-attr]


async def test_job_found_printing_is_uncertain_even_while_the_printer_is_down(
    emulators, spool
) -> None:
    """A ``printing`` row this worker is not printing is never held (then printed) again."""
    kitchen, receipt = emulators
    host = Host(store_config(kitchen.port, receipt.port, failover_s=3600))
    worker = PrinterWorker(host.config().printers[0], spool, host, FAST)
    a, b = make_job(1), make_job(2)
    await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[a, b])
    await spool.transition(a.job_id, JobState.PRINTING)  # an attempt that never finished
    await kitchen.set_state(paper="out")
    async with worker_printer(worker):
        await worker.step()
        assert await states(spool, [a, b]) == [JobState.UNCERTAIN, JobState.HELD]
        await kitchen.set_state(paper="ok")
        await run_until(worker, lambda: len(kitchen.receipts) >= 1)
        await steps(worker, 3)
    assert len(kitchen.receipts) == 1 and "Burger 2" in kitchen.receipts[0].text
    assert await states(spool, [a, b]) == [JobState.UNCERTAIN, JobState.PRINTED]


class refuse_states:
    """Fault injection at the SQLite level: updates of a job to these states fail, as on a
    full or broken disk, until the context ends. A trigger on a second connection."""

    def __init__(self, db: Path, *states: str) -> None:
        self.db, self.states = db, states

    def __enter__(self) -> None:
        marks = ", ".join(f"'{s}'" for s in self.states)
        with sqlite3.connect(self.db) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE UPDATE OF state ON jobs "
                f"WHEN NEW.state IN ({marks}) BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )

    def __exit__(self, *exc: object) -> None:
        with sqlite3.connect(self.db) as conn:
            conn.execute("DROP TRIGGER refuse")


@pytest.mark.parametrize("refused", [("printed",), ("printed", "uncertain")])
async def test_print_not_recorded_is_uncertain_and_never_printed_again(
    emulators, spool, tmp_path: Path, refused: tuple[str, ...]
) -> None:
    kitchen, receipt = emulators
    host = Host(store_config(kitchen.port, receipt.port, failover_s=3600))
    worker = PrinterWorker(host.config().printers[0], spool, host, FAST)
    a, b = make_job(1), make_job(2)
    async with worker_printer(worker):
        await worker.step()  # idle: the printer is ready
        await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[a])
        with refuse_states(tmp_path / "spool.db", *refused):
            try:
                await worker.step()  # prints a; recording it fails
            except SpoolError:
                assert "uncertain" in refused  # only when even uncertain cannot be written
        assert len(kitchen.receipts) == 1
        await kitchen.set_state(paper="out")  # the next step sees a printer in error
        await worker.step()
        assert await states(spool, [a]) == [JobState.UNCERTAIN]
        await kitchen.set_state(paper="ok")
        await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[b])
        await run_until(worker, lambda: len(kitchen.receipts) >= 2)
        await steps(worker, 3)
    assert [("Burger 1" in r.text, "Burger 2" in r.text) for r in kitchen.receipts] == [
        (True, False),
        (False, True),
    ]
    assert await states(spool, [a, b]) == [JobState.UNCERTAIN, JobState.PRINTED]


# -- issue 12: an unusable printer config fails its job with a short reason ----------------


@pytest.mark.parametrize(
    "bad", [{"profile": "Bogus-" + "x" * 58}, {"encoding": "koi8_r"}], ids=["profile", "encoding"]
)
async def test_unusable_printer_config_fails_the_job_and_others_print(
    emulators, spool, bad: dict[str, str]
) -> None:
    kitchen, receipt = emulators
    config = store_config(kitchen.port, receipt.port, failover_s=3600)
    host = Host(config)
    broken_config = PrinterConfig.model_validate({**config.printers[0].model_dump(), **bad})
    broken = PrinterWorker(broken_config, spool, host, FAST)
    good = PrinterWorker(config.printers[1], spool, host, FAST)
    a, b = make_job(1), make_job(2, printer_id="receipt")
    await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[a, b])
    async with worker_printer(broken), worker_printer(good):
        await steps(broken, 3)
        await run_until(good, lambda: len(receipt.receipts) >= 1)
    failed = await spool.get(a.job_id)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.reason is not None and len(failed.reason) <= 200
    assert next(iter(bad.values()))[:20] in failed.reason
    assert kitchen.receipts == [] and "Burger 2" in receipt.receipts[0].text
    assert await states(spool, [b]) == [JobState.PRINTED]
    reports = [msgpack.unpackb(frame) for _, frame in await spool.outbox()]
    assert {"job_id": a.job_id, "state": "failed"}.items() <= reports[0].items()


class worker_printer:
    """Open the worker's printer connection for direct ``step()`` calls."""

    def __init__(self, worker: PrinterWorker) -> None:
        self.worker = worker

    async def __aenter__(self) -> PrinterWorker:
        await self.worker.open()
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.close()


async def test_a_transport_this_pc_refuses_is_never_opened(emulators, spool, tmp_path) -> None:
    """DESIGN.md §8.3: a config naming file:///… is a config error, not a file write."""
    kitchen, receipt = emulators
    target = tmp_path / "crontab"
    config = store_config(kitchen.port, receipt.port).model_copy(
        update={
            "printers": (PrinterConfig(printer_id="x", name="X", transport=f"file://{target}"),)
        }
    )
    host = Host(config)
    worker = PrinterWorker(config.printers[0], spool, host, FAST)
    job = make_job(1, printer_id="x")
    await spool.apply(position=StreamPosition(epoch="e", offset=1), jobs=[job])
    async with worker_printer(worker):
        await steps(worker, 3)
    assert not target.exists()
    done = await spool.get(job.job_id)
    assert done is not None and done.state is JobState.FAILED
    assert (
        done.reason
        == f"transport not allowed on this PC: file://{target} (see store-client --allow-transport)"
    )
    printer_id, status = host.statuses[-1]
    assert (printer_id, status.state, status.detail) == ("x", "offline", done.reason)
    # allowed on this PC by its own settings, the same config prints there
    allowed = WorkerSettings(transports=TransportPolicy.with_extra([f"file://{tmp_path}/"]))
    again = PrinterWorker(config.printers[0], spool, host, allowed)
    await spool.apply(
        position=StreamPosition(epoch="e", offset=2), jobs=[make_job(2, printer_id="x")]
    )
    async with worker_printer(again):
        await steps(again, 2)
    assert b"Burger 2" in target.read_bytes()


_ = datetime
