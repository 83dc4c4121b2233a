"""Real stores for the HQ tests: printer emulators and store clients on one background loop.

The tests drive Chromium with the sync Playwright API, so everything asynchronous that a
store needs (a ``PrinterEmulator`` per printer, a ``StoreClient`` per store) runs on an
event loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from printer_drivers.emulator.server import PrinterEmulator
from store_client.daemon import ClientSettings, StoreClient
from store_client.edge_settings import EdgeSettings
from store_client.worker import WorkerSettings

T = TypeVar("T")
CALL_TIMEOUT_S = 15.0


class Site:
    def __init__(self, spool_root: Path) -> None:
        self.spool_root = spool_root
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="site", daemon=True)
        self.thread.start()
        self.printers: list[PrinterEmulator] = []
        self.clients: list[asyncio.Task[None]] = []

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(CALL_TIMEOUT_S)

    def printer(self, name: str) -> PrinterEmulator:
        async def start() -> PrinterEmulator:
            emu = PrinterEmulator(name=name, port=0, control_port=None)
            await emu.start()
            return emu

        emu = self.call(start())
        self.printers.append(emu)
        return emu

    def set_state(self, emu: PrinterEmulator, **changes: Any) -> None:
        self.call(emu.set_state(**changes))

    def store_client(
        self, broker_ws: str, store_id: str, token: str, *, lan: bool = False
    ) -> StoreClient:
        """A linked store client; with ``lan``, its store edge on a free port."""
        settings = ClientSettings(
            broker=broker_ws,
            store_id=store_id,
            token=token,
            spool_dir=self.spool_root / store_id,
            status_port=None,
            workers=WorkerSettings(idle_poll_s=0.3, held_poll_s=0.3),
            lan=EdgeSettings("127.0.0.1", 0) if lan else None,
        )
        client = StoreClient(settings)

        async def spawn() -> asyncio.Task[None]:
            ready = asyncio.Event()
            task = asyncio.get_running_loop().create_task(client.run(ready))
            await asyncio.wait_for(ready.wait(), CALL_TIMEOUT_S)
            return task

        self.clients.append(self.call(spawn()))
        return client

    def close(self) -> None:
        async def stop_all() -> None:
            for task in self.clients:
                task.cancel()
            await asyncio.gather(*self.clients, return_exceptions=True)
            for emu in self.printers:
                with contextlib.suppress(Exception):
                    await emu.stop()

        self.call(stop_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(CALL_TIMEOUT_S)
        self.loop.close()
