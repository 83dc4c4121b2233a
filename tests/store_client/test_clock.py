"""The broker's time on a PC with a wrong clock: measured, kept, used for expiry and reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgpack
import pytest

from printer_drivers.emulator import PrinterEmulator
from protocol import JobState, StreamPosition
from protocol.config import PrinterConfig, VersionedStoreConfig
from store_client.clock import NEVER, ClockReading, SkewedClock, shifted, system_clock
from store_client.spool import Spool
from store_client.worker import PrinterWorker
from tests.store_client.factories import NOW, make_job
from tests.store_client.test_worker import FAST, Host, run_until, steps, worker_printer

TWO_HOURS = timedelta(hours=2)


def test_observe_measures_broker_minus_local_and_corrects_now() -> None:
    local = [NOW + TWO_HOURS]  # this PC runs two hours ahead
    ticks = [50.0]
    clock = SkewedClock(local=lambda: local[0], mono=lambda: ticks[0], boot="b")
    assert clock.now() == NOW + TWO_HOURS and not clock.skewed  # nothing measured yet
    reading = clock.observe(broker_now=NOW)
    assert reading == ClockReading(-7200.0, NOW, 50.0, "b") and clock.offset_s == -7200.0
    local[0] += timedelta(seconds=10)
    ticks[0] += 10.0
    assert clock.now() == NOW + timedelta(seconds=10)
    assert clock.local_now() == NOW + TWO_HOURS + timedelta(seconds=10)
    assert clock.skewed and clock.describe() == "this PC's clock is 2h 0m ahead of the broker"


@pytest.mark.parametrize(
    ("offset_s", "text"),
    [
        (0.2, "this PC's clock is in step with the broker"),
        (-30, "this PC's clock is 30s ahead of the broker"),
        (95 * 60, "this PC's clock is 1h 35m behind the broker"),
    ],
)
def test_describe(offset_s: float, text: str) -> None:
    clock = SkewedClock(reading=ClockReading(offset_s, NOW))
    assert clock.describe() == text
    assert clock.skewed is (abs(offset_s) > 60)


def test_shifted_runs_ahead_or_behind() -> None:
    fixed = shifted(lambda: NOW, 7200)
    assert fixed() == NOW + TWO_HOURS
    assert shifted(lambda: NOW, -7200)() == NOW - TWO_HOURS
    assert shifted(system_clock, 0) is system_clock


async def test_reading_survives_a_restart(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "spool.db")
    assert await spool.clock_reading() is None
    await spool.save_clock_reading(ClockReading(-7200.5, NOW))
    await spool.aclose()
    spool = await Spool.open(tmp_path / "spool.db")
    assert await spool.clock_reading() == ClockReading(-7200.5, NOW)
    await spool.aclose()


@pytest.fixture
async def kitchen() -> AsyncIterator[PrinterEmulator]:
    async with PrinterEmulator(name="kitchen") as emulator:
        yield emulator


def kitchen_only(port: int) -> VersionedStoreConfig:
    printer = PrinterConfig(
        printer_id="kitchen", name="Hot line", transport=f"tcp://127.0.0.1:{port}"
    )
    return VersionedStoreConfig(store_id="s-1", version=1, name="Test", printers=(printer,))


@pytest.mark.parametrize("skew", [TWO_HOURS, -TWO_HOURS], ids=["ahead", "behind"])
async def test_skewed_pc_expires_only_jobs_past_their_ttl(
    tmp_path: Path, kitchen: PrinterEmulator, skew: timedelta
) -> None:
    """Expiry and report times follow the broker's clock, not the PC's own."""
    clock = SkewedClock(local=shifted(system_clock, skew.total_seconds()))
    clock.observe(broker_now=datetime.now(UTC))  # the welcome
    spool = await Spool.open(tmp_path / "spool.db", clock=clock.now)
    host = Host(kitchen_only(kitchen.port))
    worker = PrinterWorker(host.config().printers[0], spool, host, FAST, clock=clock.now)
    fresh, stale = make_job(1, ttl_s=1800), make_job(2, ttl_s=-60)  # stale: expired a minute ago
    try:
        await spool.apply(position=StreamPosition(epoch="e", offset=2), jobs=[fresh, stale])
        async with worker_printer(worker):
            await run_until(worker, lambda: len(kitchen.receipts) >= 1)
            await steps(worker, 2)
        assert [(await spool.get(j.job_id)).state for j in (fresh, stale)] == [  # type: ignore[union-attr]
            JobState.PRINTED,
            JobState.EXPIRED,
        ]
        assert len(kitchen.receipts) == 1 and "Burger 1" in kitchen.receipts[0].text
        reports = [msgpack.unpackb(frame) for _, frame in await spool.outbox()]
        for report in reports:  # stamped with the broker's time
            at = datetime.fromisoformat(report["at"])
            assert abs(at - datetime.now(UTC)) < timedelta(minutes=1), report
        assert all(
            abs(s.since - datetime.now(UTC)) < timedelta(minutes=1) for _, s in host.statuses
        )
    finally:
        await spool.aclose()


@pytest.mark.parametrize("jump_h", [4, -4])
def test_a_wall_clock_set_after_the_reading_does_not_move_expiry(jump_h: int) -> None:
    """Found by the fault run: restarted with its wall clock hours ahead, a PC expired every
    held job, since the offset it restored was measured before the clock was set."""
    true = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    ticks = [100.0]
    before = SkewedClock(local=lambda: true, mono=lambda: ticks[0], boot="b1")
    saved = before.observe(true, true)  # in step when measured
    ticks[0] += 60.0  # a minute later the process restarts, the wall clock set wrong
    after = SkewedClock(local=lambda: true + timedelta(hours=jump_h), mono=lambda: ticks[0],
                        boot="b1")  # fmt: skip
    after.restore(saved)
    assert not after.verified
    assert after.expiry_now() == true + timedelta(minutes=1)  # the broker's time, all the same
    assert after.now() == true + timedelta(minutes=1)


def test_after_a_reboot_nothing_expires_until_the_broker_is_heard() -> None:
    true = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    saved = SkewedClock(local=lambda: true, mono=lambda: 5.0, boot="b1").observe(true, true)
    rebooted = SkewedClock(local=lambda: true + timedelta(hours=9), mono=lambda: 1.0, boot="b2")
    rebooted.restore(saved)
    assert rebooted.expiry_now() == NEVER  # the wall clock may be anything after a reboot
    rebooted.observe(true, true + timedelta(hours=9))
    assert rebooted.expiry_now() == true
