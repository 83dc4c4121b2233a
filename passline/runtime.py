"""Shared plumbing for long-running commands: logging, event loop, signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # some dependencies configure the root logger when imported
    )


def run_until_signal(main: Coroutine[Any, Any, None], *, use_uvloop: bool = True) -> None:
    """Run ``main`` on uvloop (if installed and wanted); SIGINT/SIGTERM cancel it for a
    clean stop."""

    async def wrapper() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await main
        except asyncio.CancelledError:
            pass

    if not use_uvloop:
        asyncio.run(wrapper())
        return
    try:
        import uvloop
    except ImportError:  # Windows
        asyncio.run(wrapper())
    else:
        uvloop.run(wrapper())


def host_timezone() -> str | None:
    """This machine's IANA zone name where it can be told (``TZ``, the ``/etc/localtime``
    link, ``/etc/timezone``); None elsewhere (Windows, a container without one)."""
    from protocol.timezones import check_zone  # pydantic: only for the commands that ask

    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    try:
        candidates.append(os.readlink("/etc/localtime").rpartition("zoneinfo/")[2])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    for name in candidates:
        try:
            return check_zone(name)
        except ValueError:
            continue
    return None
