"""Debug aid: dump every asyncio task's stack if an e2e test runs too long."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

DUMP_AFTER_S = float(os.environ.get("PASSLINE_E2E_DUMP_AFTER_S", "0"))


@pytest.fixture(autouse=True)
async def dump_tasks_when_stuck() -> AsyncIterator[None]:
    if not DUMP_AFTER_S:
        yield
        return

    async def watchdog() -> None:
        await asyncio.sleep(DUMP_AFTER_S)
        for task in asyncio.all_tasks():
            print(f"--- {task.get_name()} {task.get_coro()}", file=sys.stderr)
            coro: object = task.get_coro()
            while coro is not None:
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is not None:
                    print(f"    {frame.f_code.co_filename}:{frame.f_lineno}", file=sys.stderr)
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)

    dog = asyncio.create_task(watchdog())
    yield
    dog.cancel()
