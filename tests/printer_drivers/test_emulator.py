"""The printer emulator of DESIGN.md §5.4 over real TCP: sessions, replies, faults,
control port, receipt files, speed, and the ``passline printer-sim`` command."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printer_drivers import commands as cmd
from printer_drivers.emulator import PrinterEmulator
from printer_drivers.emulator.paper import PaperMachine
from printer_drivers.emulator.parser import CommandParser
from printer_drivers.emulator.runner import EmulatorProcess
from tests.printer_drivers.golden import GOLDEN_DIR

WAIT_S = 10.0
HELLO = b"\x1b@hello\n\x1dV\x00"


async def connect(emu: PrinterEmulator) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", emu.port)


async def read_n(reader: asyncio.StreamReader, n: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), WAIT_S)


async def nothing_arrives(reader: asyncio.StreamReader, within_s: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), within_s)
    except TimeoutError:
        return True
    return False


async def http(emu: PrinterEmulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        url = f"http://127.0.0.1:{emu.control_port}{path}"
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=WAIT_S) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await asyncio.to_thread(call)


async def test_realtime_status_is_answered_even_while_paper_is_out(
    emulator: PrinterEmulator,
) -> None:
    reader, writer = await connect(emulator)
    writer.write(cmd.realtime_status(1) + cmd.realtime_status(4))
    assert await read_n(reader, 2) == b"\x12\x12"
    await emulator.set_state(paper="out")
    writer.write(HELLO + cmd.PAPER_SENSOR_STATUS + cmd.realtime_status(4))
    assert await read_n(reader, 1) == b"\x7e"  # paper end + near end, fixed bits
    assert await nothing_arrives(reader)  # GS r waits behind the held job
    assert emulator.receipts == []
    await emulator.set_state(paper="ok")
    assert await read_n(reader, 1) == b"\x00"  # now the job printed and GS r answered
    assert [r.text for r in emulator.receipts] == ["hello"]
    writer.close()


async def test_gs_paren_h_echoes_its_id_after_the_data(emulator: PrinterEmulator) -> None:
    reader, writer = await connect(emulator)
    await emulator.set_state(cover_open=True)
    writer.write(HELLO + cmd.response_request(417))
    assert await nothing_arrives(reader)
    await emulator.set_state(cover_open=False)
    assert await read_n(reader, 7) == b"\x37\x220417\x00"
    writer.close()


async def test_hang_accepts_bytes_and_answers_nothing(emulator: PrinterEmulator) -> None:
    await emulator.set_state(hang=True)
    reader, writer = await connect(emulator)
    writer.write(HELLO + cmd.realtime_status(1) + cmd.PAPER_SENSOR_STATUS)
    await asyncio.wait_for(writer.drain(), WAIT_S)
    assert await nothing_arrives(reader)
    assert emulator.receipts == []
    writer.close()


async def test_asb_reports_state_changes(emulator: PrinterEmulator) -> None:
    reader, writer = await connect(emulator)
    writer.write(cmd.automatic_status_back(0xFF))
    assert await read_n(reader, 4) == b"\x10\x00\x00\x00"
    await emulator.set_state(cover_open=True)
    assert await read_n(reader, 4) == b"\x38\x00\x00\x00"  # offline + cover open
    await emulator.set_state(cover_open=False, paper="near_end")
    assert await read_n(reader, 4) == b"\x10\x00\x03\x00"
    writer.close()


async def test_one_session_at_a_time(emulator: PrinterEmulator) -> None:
    first_r, first_w = await connect(emulator)
    second_r, second_w = await connect(emulator)
    second_w.write(cmd.realtime_status(1))
    first_w.write(cmd.realtime_status(1))
    assert await read_n(first_r, 1) == b"\x12"
    assert await nothing_arrives(second_r)  # queued behind the first session
    first_w.close()
    assert await read_n(second_r, 1) == b"\x12"
    second_w.close()


async def test_control_port(emulator: PrinterEmulator) -> None:
    status, state = await http(emulator, "GET", "/state")
    assert status == 200 and state["paper"] == "ok" and state["can_print"] is True
    status, state = await http(emulator, "POST", "/state", {"paper": "out", "cover_open": True})
    assert status == 200 and state["paper"] == "out" and state["cover_open"] is True
    assert (await http(emulator, "POST", "/state", {"paper": "lots"}))[0] == 400
    status, error = await http(emulator, "POST", "/state", {"jammed": True})
    assert status == 400 and "jammed" in error["error"]
    assert (await http(emulator, "POST", "/state", {"hang": "yes"}))[0] == 400
    assert (await http(emulator, "POST", "/state", b"not json"))[0] == 400
    assert (await http(emulator, "POST", "/state", [1, 2]))[0] == 400
    assert (await http(emulator, "GET", "/nope"))[0] == 404
    assert emulator.state["paper"] == "out"  # a refused change changes nothing
    status, state = await http(emulator, "POST", "/state", {"reset": True})
    assert state["paper"] == "ok" and state["cover_open"] is False

    _, writer = await connect(emulator)
    writer.write(HELLO)
    await emulator.wait_receipts(1)
    status, receipts = await http(emulator, "GET", "/receipts")
    assert status == 200 and receipts[0]["text"] == "hello" and receipts[0]["index"] == 1
    assert (await http(emulator, "DELETE", "/receipts")) == (200, [])
    writer.close()


async def test_receipts_are_written_as_txt_and_bin(tmp_path: Path) -> None:
    data = (GOLDEN_DIR / "kitchen-80-chinese.bin").read_bytes()
    async with PrinterEmulator(out_dir=tmp_path, name="hot") as emu:
        _, writer = await connect(emu)
        writer.write(data + HELLO)
        await emu.wait_receipts(2)
        writer.close()
    assert (tmp_path / "hot-0001.bin").read_bytes() == data
    text = (tmp_path / "hot-0001.txt").read_text(encoding="utf-8")
    assert "1 x 宫保鸡丁" in text and "#A017" in text
    assert (tmp_path / "hot-0002.txt").read_text(encoding="utf-8") == "hello\n"


async def test_print_speed_holds_the_barrier_until_printed() -> None:
    async with PrinterEmulator(cps=40) as emu:
        reader, writer = await connect(emu)
        writer.write(b"x" * 400 + b"\n" + cmd.PAPER_SENSOR_STATUS + cmd.realtime_status(1))
        assert await read_n(reader, 1) == b"\x12"  # real-time: answered at once
        assert await nothing_arrives(reader)  # 400 characters at 40 cps: still printing
        assert emu.engine.buffered > 0
        writer.close()


def test_the_printer_wraps_text_at_the_paper_edge() -> None:
    texts: list[str] = []
    machine = PaperMachine(columns=32, on_receipt=lambda r: texts.append(r.text))
    data = b"\x1c&" + "宫保鸡丁".encode("gb18030") * 5 + b"\n\x1d!\x10abcdefghijklmnopq\n\x1dV\x00"
    for command in CommandParser().feed(data):
        machine.execute(command)
    assert texts == ["宫保鸡丁" * 4 + "\n宫保鸡丁\nabcdefghijklmnop\nq"]


def test_paper_that_is_never_cut_is_torn_off_so_memory_stays_bounded() -> None:
    """Issue 14: a sender that streams text and never cuts (a stranger on the emulator's
    port) held every line in memory; the sheet is torn off at ``MAX_SHEET_LINES``."""
    from printer_drivers.emulator.paper import MAX_SHEET_LINES

    receipts: list[Any] = []
    machine = PaperMachine(columns=32, on_receipt=receipts.append)
    parser = CommandParser()
    for _ in range(3):
        for command in parser.feed(b"line\n" * MAX_SHEET_LINES):
            machine.execute(command)
    for command in parser.feed(b"tail\n\x1dV\x00"):
        machine.execute(command)
    assert [len(r.lines) for r in receipts] == [MAX_SHEET_LINES] * 3 + [1]
    assert [r.cut for r in receipts] == [False, False, False, True]
    assert receipts[-1].text == "tail"


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=1800), max_size=12))
def test_any_chunking_gives_the_same_receipt(cuts: list[int]) -> None:
    data = (GOLDEN_DIR / "kitchen-58-big.bin").read_bytes()
    whole: list[str] = []
    reference = PaperMachine(columns=32, on_receipt=lambda r: whole.append(r.text))
    for command in CommandParser().feed(data):
        reference.execute(command)
    pieces: list[str] = []
    machine = PaperMachine(columns=32, on_receipt=lambda r: pieces.append(r.text))
    parser, start = CommandParser(), 0
    for end in [*sorted(set(cuts)), len(data)]:
        for command in parser.feed(data[start:end]):
            machine.execute(command)
        start = max(start, end)
    assert pieces == whole and len(whole) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_printer_sim_command(tmp_path: Path, sig: signal.Signals) -> None:
    import socket

    with EmulatorProcess("--out", str(tmp_path), "--name", "bar") as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT_S) as s:
            s.sendall(HELLO + cmd.realtime_status(2) + cmd.PAPER_SENSOR_STATUS)
            assert s.recv(1) == b"\x12"  # DLE EOT 2 at once
            assert s.recv(1) == b"\x00"  # GS r 1 once hello is printed
        assert sim.control("POST", "/state", {"paper": "near_end"})["paper"] == "near_end"
        assert sim.control("GET", "/receipts")[0]["text"] == "hello"
        assert sim.proc is not None
        sim.proc.send_signal(sig)
        assert sim.proc.wait(WAIT_S) == 0
    assert (tmp_path / "bar-0001.txt").read_text(encoding="utf-8") == "hello\n"


def test_printer_sim_bad_port_is_one_clear_line() -> None:
    import subprocess
    import sys

    with EmulatorProcess() as sim:  # holds a port
        out = subprocess.run(
            [sys.executable, "-m", "passline", "printer-sim", "--port", str(sim.port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert (
        out.stderr.strip().startswith("Error: cannot listen on")
        and len(out.stderr.strip().splitlines()) == 1
    )
