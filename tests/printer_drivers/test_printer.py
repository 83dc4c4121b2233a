"""The Printer facade over real TCP against the emulator: printed, paper out, hang,
refused, concurrent jobs; and over the in-memory and file transports."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from printer_drivers import (
    Barrier,
    Printer,
    PrintOutcome,
    PrintResult,
    RenderProfile,
    Timeouts,
    open_printer,
    render,
)
from printer_drivers import commands as cmd
from printer_drivers.emulator import PrinterEmulator
from printer_drivers.transports.memory import MemoryTransport
from printer_drivers.transports.tcp import TcpTransport
from protocol.config import PrinterConfig
from protocol.orders import Template
from protocol.status import Paper, PrinterState, StatusSource
from tests.printer_drivers import samples
from tests.printer_drivers.golden import print_on_emulator

# Upper bounds for "never hangs", generous for a noisy shared machine.
NEVER_HANGS_S = 30.0


def config(port: int, profile: str = "default", **kw: object) -> PrinterConfig:
    return PrinterConfig(
        printer_id="kitchen",
        name="Hot line",
        transport=f"tcp://127.0.0.1:{port}",
        profile=profile,
        **kw,  # type: ignore[arg-type]
    )


def chit(marker: str = "42") -> bytes:
    doc = samples.latin(Template.KITCHEN).model_copy(update={"order_ref": marker})
    return render(doc, RenderProfile.build("default", 80, "gb18030"))


@pytest.mark.parametrize("profile", ["default", "TM-T20II"])  # GS r 1 and GS ( H barriers
async def test_a_job_comes_back_printed(emulator: PrinterEmulator, profile: str) -> None:
    async with open_printer(config(emulator.port, profile), barrier_timeout=10) as printer:
        outcome = await printer.print_job(chit())
        assert outcome.result is PrintResult.PRINTED, outcome.reason
        assert outcome.status.state is PrinterState.READY
        assert outcome.status.source is StatusSource.REALTIME
    receipts = await emulator.wait_receipts(1)
    assert receipts[0].lines[1].text == "#42"


async def test_status_follows_faults(emulator: PrinterEmulator) -> None:
    async with open_printer(config(emulator.port)) as printer:
        assert (await printer.status()).state is PrinterState.READY
        await emulator.set_state(paper="near_end")
        status = await printer.status()
        assert status.state is PrinterState.WARNING and status.paper is Paper.NEAR_END
        await emulator.set_state(paper="ok", cover_open=True)
        status = await printer.status()
        assert status.cover_open and "cover-open-error" in status.reasons
        await emulator.set_state(cover_open=False, cutter_error=True)
        assert (await printer.status()).cutter_error
        await emulator.set_state(reset=True, offline=True)
        assert (await printer.status()).online is False


async def test_paper_out_is_never_printed(emulator: PrinterEmulator) -> None:
    await emulator.set_state(paper="out")
    async with open_printer(config(emulator.port), barrier_timeout=1) as printer:
        outcome = await asyncio.wait_for(printer.print_job(chit()), NEVER_HANGS_S)
        assert outcome.result is PrintResult.FAILED  # checked first: nothing written
        assert outcome.status.paper is Paper.OUT and outcome.status.state is PrinterState.ERROR
        assert "media-empty-error" in (outcome.reason or "")
    assert emulator.receipts == []


async def test_paper_running_out_mid_job_leaves_it_uncertain(emulator: PrinterEmulator) -> None:
    """Without the pre-check the bytes go out; the printer holds them, so no barrier."""
    printer = open_printer(config(emulator.port), barrier_timeout=1, precheck=False)
    async with printer:
        assert (await printer.print_job(chit("41"))).result is PrintResult.PRINTED
        await emulator.set_state(paper="out")
        outcome = await asyncio.wait_for(printer.print_job(chit()), NEVER_HANGS_S)
        assert outcome.result is PrintResult.UNCERTAIN
        assert outcome.status.paper is Paper.OUT
        assert "barrier" in (outcome.reason or "")
        await emulator.set_state(paper="ok")  # the printer prints what it held …
        await emulator.wait_receipts(2)
        # … and the late barrier answer never confirms the next job by mistake
        outcome = await printer.print_job(chit("43"))
        assert outcome.result is PrintResult.PRINTED
    assert [r.lines[1].text for r in await emulator.wait_receipts(3)] == ["#41", "#42", "#43"]


async def test_a_job_left_in_the_printer_never_confirms_the_next_connections_job() -> None:
    """Found by the fault run: a client killed while its job sat in the printer (cover
    open); restarted, its next job was confirmed by the old job's GS r answer arriving on
    the new connection, while its own bytes were still in the buffer."""
    async with PrinterEmulator(cps=600) as emulator:  # a chit takes a moment to print
        await _left_in_the_printer(emulator)


async def _left_in_the_printer(emulator: PrinterEmulator) -> None:
    first = open_printer(config(emulator.port), barrier_timeout=3, precheck=False)
    async with first:
        assert (await printer_job(first, "50")).result is PrintResult.PRINTED
        await emulator.set_state(cover_open=True)
        outcome = await printer_job(first, "51")
        assert outcome.result is PrintResult.UNCERTAIN  # held by the open cover
    await emulator.set_state(cover_open=False)  # the old job prints now, answering late
    second = open_printer(config(emulator.port), barrier_timeout=10)
    async with second:
        outcome = await printer_job(second, "52")
        assert outcome.result is PrintResult.PRINTED
        receipts = [r.lines[1].text for r in emulator.receipts]
        assert receipts == ["#50", "#51", "#52"]  # on paper when it said so, not after


async def printer_job(printer: Printer, code: str) -> PrintOutcome:
    return await asyncio.wait_for(printer.print_job(chit(code)), NEVER_HANGS_S)


@pytest.mark.parametrize("profile", ["default", "TM-T20II"])
async def test_hang_never_hangs_the_caller(emulator: PrinterEmulator, profile: str) -> None:
    await emulator.set_state(hang=True)
    printer = open_printer(
        config(emulator.port, profile), connect_timeout=1, barrier_timeout=1, status_timeout=0.5
    )
    async with printer:
        outcome = await asyncio.wait_for(printer.print_job(chit()), NEVER_HANGS_S)
        assert outcome.result in (PrintResult.UNCERTAIN, PrintResult.FAILED)
        assert outcome.status.state is PrinterState.OFFLINE
        printer.precheck = False
        outcome = await asyncio.wait_for(printer.print_job(chit()), NEVER_HANGS_S)
        assert outcome.result is PrintResult.FAILED  # the fence is never answered: no job
        status = await asyncio.wait_for(printer.status(), NEVER_HANGS_S)
        assert not status.reachable and status.source is StatusSource.NONE


async def test_refused_connection_fails_without_raising() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    async with open_printer(config(port), connect_timeout=1) as printer:
        outcome = await printer.print_job(b"hello\n")
        assert outcome.result is PrintResult.FAILED
        assert outcome.status.state is PrinterState.OFFLINE
        assert (await printer.status()).reachable is False


async def test_printer_reconnects_after_the_link_drops(emulator: PrinterEmulator) -> None:
    async with open_printer(config(emulator.port)) as printer:
        assert (await printer.print_job(chit("1"))).result is PrintResult.PRINTED
        await emulator.set_state(unreachable=True)  # drops the session
        assert (await printer.status()).state is PrinterState.OFFLINE
        await emulator.set_state(unreachable=False)
        assert (await printer.print_job(chit("2"))).result is PrintResult.PRINTED
    assert len(await emulator.wait_receipts(2)) == 2


async def test_concurrent_jobs_never_interleave() -> None:
    async with PrinterEmulator(cps=20000) as emu:
        async with open_printer(config(emu.port), barrier_timeout=20) as printer:
            jobs = [chit(f"{n:03d}") * 3 for n in range(6)]
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(printer.print_job(job) for job in jobs)), NEVER_HANGS_S
            )
        assert {o.result for o in outcomes} == {PrintResult.PRINTED}
        receipts = await emu.wait_receipts(18)
    refs = [r.lines[1].text for r in receipts]
    # each job's three copies come out together, whatever order the jobs ran in …
    assert sorted(refs[i] for i in range(0, 18, 3)) == [f"#{n:03d}" for n in range(6)]
    for i in range(0, 18, 3):
        assert refs[i] == refs[i + 1] == refs[i + 2]
    # … and every receipt is exactly one whole chit, nothing of another job inside
    profile = RenderProfile.build("default", 80, "gb18030")
    for receipt, ref in zip(receipts, refs, strict=True):
        (expected,) = print_on_emulator(chit(ref.removeprefix("#")), profile)
        assert receipt.text == expected.text


async def test_in_memory_transport() -> None:
    transport = MemoryTransport()
    async with Printer(transport, timeouts=Timeouts(barrier=0.5, status=0.5)) as printer:
        assert (await printer.print_job(chit())).result is PrintResult.PRINTED
        transport.set_state(cover_open=True)
        assert (await printer.print_job(chit())).result is PrintResult.FAILED
        printer.precheck = False
        assert (await printer.print_job(chit())).result is PrintResult.UNCERTAIN
    assert len(transport.receipts) == 1


class StrangerAnswersFirst:
    """A printer on a shared wire: every GS ( H request is followed, before the printer's
    own answer (if any), by another process' answer (id 9999) — a late or foreign reply."""

    readable = True
    STRANGER = b"\x37\x22" + b"9999" + b"\x00"

    def __init__(self, inner: MemoryTransport) -> None:
        self.inner = inner
        self.uri = inner.uri
        self._pending = b""

    @property
    def connected(self) -> bool:
        return self.inner.connected

    async def connect(self, timeout_s: float) -> None:
        await self.inner.connect(timeout_s)

    async def write(self, data: bytes, timeout_s: float) -> None:
        await self.inner.write(data, timeout_s)
        if cmd.RESPONSE_REQUEST_PREFIX in data:
            self._pending += self.STRANGER

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        if self._pending:
            out, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return out
        return await self.inner.read(max_bytes, timeout_s)

    async def close(self) -> None:
        await self.inner.close()


async def test_gs_paren_h_barrier_matches_its_own_id() -> None:
    printer_side = MemoryTransport()
    transport = StrangerAnswersFirst(printer_side)
    timeouts = Timeouts(barrier=0.5, status=0.5)
    async with Printer(transport, barrier=Barrier.RESPONSE, timeouts=timeouts) as printer:
        # the stranger's answer comes first; the job's own answer still confirms it
        assert (await printer.print_job(chit("1"))).result is PrintResult.PRINTED
        # paper runs out: the printer holds the job and never answers its barrier, so the
        # stranger's answer is the only one there is — it must not pass for "printed"
        printer_side.set_state(paper="out")
        printer.precheck = False
        outcome = await asyncio.wait_for(printer.print_job(chit("2")), NEVER_HANGS_S)
        assert outcome.result is PrintResult.UNCERTAIN, outcome
        assert "barrier" in (outcome.reason or "")
    assert [r.lines[1].text for r in printer_side.receipts] == ["#1"]


async def test_file_transport_is_written_but_never_printed(tmp_path: Path) -> None:
    target = tmp_path / "lp0"
    cfg = PrinterConfig(printer_id="p", name="P", transport=f"file://{target}")
    async with open_printer(cfg) as printer:
        status = await printer.status()
        assert status.source is StatusSource.NONE and status.state is PrinterState.UNKNOWN
        outcome = await printer.print_job(b"hello\n")
        assert outcome.result is PrintResult.UNCERTAIN
    assert target.read_bytes() == b"hello\n" + b"\x1dr\x01"


async def test_bad_transport_uri_is_a_status_not_an_exception() -> None:
    cfg = PrinterConfig(printer_id="p", name="P", transport="tcp://:abc")
    async with open_printer(cfg) as printer:
        assert (await printer.print_job(b"x")).result is PrintResult.FAILED
        assert (await printer.status()).state is PrinterState.OFFLINE


async def test_cancelled_caller_leaves_the_printer_usable(emulator: PrinterEmulator) -> None:
    await emulator.set_state(paper="out")
    printer = open_printer(config(emulator.port), barrier_timeout=30, precheck=False)
    task = asyncio.create_task(printer.print_job(chit("1")))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not printer.transport.connected
    await emulator.set_state(paper="ok")
    assert (await printer.print_job(chit("2"))).result is PrintResult.PRINTED
    await printer.aclose()


def test_tcp_uri_parsing() -> None:
    assert TcpTransport.from_uri("tcp://10.0.0.20").port == 9100
    assert TcpTransport.from_uri("tcp://10.0.0.20:9101").port == 9101
