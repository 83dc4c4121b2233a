"""The real parts of a fault run, each with the faults it can suffer.

``passline broker`` nodes and ``passline store-client`` run as subprocesses (so they can
be killed); ``redis-server`` as in the scale-out tests (AOF, ``appendfsync always``); the
printers are ``PrinterEmulator``s in this process, power-cycled by stopping one and
starting a new one on the same ports; the spool can sit on a small tmpfs of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from printer_drivers.emulator import PrinterEmulator
from tests.e2e.stack import stable_port

ROOT = Path(__file__).resolve().parents[2]
STOP_WAIT_S = 30.0
READY_WAIT_S = 30.0
CLIENT_RESTART_S = 1.0
"""A service manager (systemd ``Restart=always``, a Windows service) restarts the client."""
SKEW_ENV = "PASSLINE_CLOCK_SKEW_S"


Journal = Callable[[str], None]


class Proc:
    """One restartable subprocess, its stderr appended to ``log``."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.argv, self.env, self.cwd, self.log = argv, env, cwd, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.started_at = time.monotonic()
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env={**self.env, **(extra_env or {})},
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Signal it and wait; a process that outlives ``STOP_WAIT_S`` is killed.
        The exit status, or None if it was not running."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(sig)
        try:
            return await asyncio.to_thread(proc.wait, STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
            return None


# -- broker nodes --------------------------------------------------------------------------------


class BrokerNode:
    def __init__(self, name: str, store_url: str, secret: str, workdir: Path) -> None:
        self.name = name
        self.http_port, self.ws_port = stable_port(), stable_port()
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "PASSLINE_SECRET": secret,
            "PASSLINE_INGEST_RATE": "0", "PASSLINE_HELLO_RATE": "0",
            "PASSLINE_DRAIN_TIMEOUT": "5", "PASSLINE_CLOSE_TIMEOUT": "3",
        }  # fmt: skip
        argv = [sys.executable, "-m", "passline", "broker", "--store", store_url,
                "--http", f"127.0.0.1:{self.http_port}", "--ws", f"127.0.0.1:{self.ws_port}"]  # fmt: skip
        self.proc = Proc(argv, env, workdir, workdir / f"broker-{name}.log")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> bool:
        """Start it and wait until ``/readyz`` says so; False if it never did."""
        for _ in range(3):  # a port just freed by a killed node can take a moment
            self.proc.start()
            if await self.ready_within(READY_WAIT_S):
                return True
            await self.proc.stop(signal.SIGKILL)
        return False

    async def ready_within(self, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        async with httpx.AsyncClient(timeout=2) as http:
            while loop.time() < deadline and self.proc.running:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.http + "/readyz")).status_code == 200:
                        return True
                await asyncio.sleep(0.2)
        return False


# -- the store client ----------------------------------------------------------------------------


class StoreClientProc:
    """``passline store-client`` under a supervisor that restarts it if it dies unasked."""

    def __init__(
        self, brokers: str, store_id: str, token: str, spool: Path, workdir: Path, journal: Journal
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PASSLINE_TOKEN": token}
        env.pop(SKEW_ENV, None)
        argv = [sys.executable, "-m", "passline", "store-client", "--broker", brokers,
                "--store", store_id, "--spool", str(spool), "--status-port", "0"]  # fmt: skip
        self.proc = Proc(argv, env, workdir, workdir / "store-client.log")
        self.journal = journal
        self.skew_s = 0.0
        self.wanted = False
        self.unasked_exits: list[int | None] = []

    def start(self) -> None:
        extra = {SKEW_ENV: f"{self.skew_s:g}"} if self.skew_s else {}
        self.proc.start(extra)
        self.wanted = True

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        self.wanted = False
        return await self.proc.stop(sig)

    async def supervise(self) -> None:
        """Run until cancelled: restart the client whenever it exits while wanted."""
        while True:
            await asyncio.sleep(0.5)
            if self.wanted and not self.proc.running:
                code = self.proc.proc.returncode if self.proc.proc else None
                self.unasked_exits.append(code)
                self.journal(f"store client exited by itself (status {code}); restarting")
                await asyncio.sleep(CLIENT_RESTART_S)
                if self.wanted and not self.proc.running:
                    self.start()


# -- the spool's disk ----------------------------------------------------------------------------


class SpoolDisk:
    """A small tmpfs for the spool, filled with a ballast file to play a full disk."""

    def __init__(self, path: Path, size_mb: int = 64) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False
        self.ballast = path / "ballast.bin"

    def mount(self) -> str | None:
        """Mount it; the reason it could not be mounted, or None."""
        self.path.mkdir(parents=True, exist_ok=True)
        cmd = [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={self.size_mb}m",
            "passline-faults",
            str(self.path),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"mount failed: {exc}"
        if done.returncode != 0:
            return f"mount failed: {done.stderr.strip() or done.returncode}"
        self.mounted = True
        return None

    def fill(self) -> int:
        """Write the ballast until the filesystem is full; the bytes written."""
        written = 0
        chunk = 1 << 20
        with self.ballast.open("wb", buffering=0) as f:
            while chunk >= 512:
                try:
                    written += f.write(b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk //= 2
        return written

    def drain(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
            self.mounted = False


# -- the printers --------------------------------------------------------------------------------


class PrinterBank:
    """One ``PrinterEmulator`` per printer; keeps the paper of every power cycle."""

    def __init__(self, widths: dict[str, int], cps: float | None, paper_dir: Path) -> None:
        self.widths = widths
        self.cps = cps
        self.paper_dir = paper_dir
        """Each power cycle's receipts, as ``NAME-K/NAME-NNNN.txt`` and ``.bin``."""
        self.live: dict[str, PrinterEmulator] = {}
        self.off: dict[str, tuple[int, int]] = {}
        """Printers that are powered off: their (port, control port)."""
        self.incarnations: dict[str, list[PrinterEmulator]] = {n: [] for n in widths}

    async def start(self) -> None:
        for name in self.widths:
            await self._power_on(name, stable_port(), stable_port())

    def port(self, name: str) -> int:
        return self.live[name].port

    async def control(self, name: str, **state: Any) -> None:
        """``POST /state`` on the printer's control endpoint (DESIGN.md §5.4)."""
        url = f"http://127.0.0.1:{self.live[name].control_port}/state"
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(url, json=state)
        r.raise_for_status()

    async def power_off(self, name: str) -> None:
        emu = self.live.pop(name)
        self.off[name] = (emu.port, emu.control_port)
        await emu.stop()

    async def power_on(self, name: str) -> None:
        port, control_port = self.off.pop(name)
        await self._power_on(name, port, control_port)

    async def _power_on(self, name: str, port: int, control_port: int) -> None:
        for attempt in range(50):
            out = self.paper_dir / f"{name}-{len(self.incarnations[name]) + 1}"
            emu = PrinterEmulator(
                out, name=name, cps=self.cps, width_mm=self.widths[name],
                port=port, control_port=control_port,
            )  # fmt: skip
            try:
                await emu.start()
            except OSError:
                await emu.stop()
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            self.live[name] = emu
            self.incarnations[name].append(emu)
            return
        raise RuntimeError(f"printer {name} could not listen on {port} again")

    def texts(self) -> dict[str, list[str]]:
        return {
            name: [r.text for emu in emus for r in emu.receipts]
            for name, emus in self.incarnations.items()
        }

    async def stop(self) -> None:
        for emu in self.live.values():
            await emu.stop()
        self.live.clear()
