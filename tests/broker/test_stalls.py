"""broker/stalls.py: a held event loop is logged with the stack that held it."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

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
