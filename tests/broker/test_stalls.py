"""broker/stalls.py: a held event loop is logged with the stack that held it."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import Callable

import pytest

from broker.stalls import StallWatch


def hold_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # what a blocking call in a handler does to every link


async def test_a_blocked_loop_is_logged_once_with_the_blocking_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = StallWatch(asyncio.get_running_loop(), 0.05)
    watch.start()
    try:
        with caplog.at_level(logging.WARNING, logger="broker.stalls"):
            await asyncio.sleep(0.05)  # turning freely: nothing to say
            assert watch.stalls == 0
            hold_the_loop_for(0.3)
            await asyncio.sleep(0.05)
    finally:
        watch.stop()
    held = [r for r in caplog.records if "event loop held" in r.getMessage()]
    assert len(held) == 1, [r.getMessage() for r in held]  # one stall, one line
    assert "hold_the_loop_for" in held[0].getMessage()
    assert watch.stalls == 1


async def test_a_long_collection_is_logged_as_one(caplog: pytest.LogCaptureFixture) -> None:
    watch = StallWatch(asyncio.get_running_loop(), 1e-6)  # any collection is "long" here
    watch.start()
    watch.stop()  # the thread is not needed: collections are reported when they end
    gc.callbacks.append(watch._gc)
    try:
        with caplog.at_level(logging.WARNING, logger="broker.stalls"):
            gc.collect()
    finally:
        gc.callbacks.remove(watch._gc)
    assert any("generation-2 garbage collection" in r.getMessage() for r in caplog.records)


def spin_for_cpu(seconds: float) -> None:
    """Work on this thread until it has had ``seconds`` of CPU (however long that takes)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def ended(records: list[logging.LogRecord]) -> tuple[float, float]:
    """(held ms, ms on a CPU) from the one "stall ended" line."""
    lines = [r.getMessage() for r in records if "stall ended" in r.getMessage()]
    assert len(lines) == 1, lines
    m = re.search(r"held (\d+) ms; the loop thread on a CPU for (\d+) ms of it", lines[0])
    assert m is not None, lines[0]
    assert "stolen by the host meanwhile" in lines[0]  # /proc/stat is there on Linux
    return float(m.group(1)), float(m.group(2))


async def watched(
    caplog: pytest.LogCaptureFixture, hold: Callable[[], None]
) -> tuple[float, float]:
    watch = StallWatch(asyncio.get_running_loop(), 0.05)
    watch.start()
    try:
        with caplog.at_level(logging.WARNING, logger="broker.stalls"):
            await asyncio.sleep(0.05)
            hold()
            await asyncio.sleep(0.1)  # the loop turns: the watcher sees the stall end
    finally:
        watch.stop()
    return ended(caplog.records)


async def test_a_stall_spent_working_shows_the_loop_thread_on_a_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held, on_cpu = await watched(caplog, lambda: spin_for_cpu(0.3))
    assert on_cpu >= 250  # it had 300 ms of CPU during the stall, by construction
    assert held >= on_cpu - 10  # (the two clocks are read a tick apart)


async def test_a_stall_spent_off_cpu_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """Blocked, waiting for the GIL or not scheduled: the stack is not the culprit."""
    held, on_cpu = await watched(caplog, lambda: hold_the_loop_for(0.3))
    assert held >= 250
    assert on_cpu < held / 2  # a sleeping thread burns no CPU
