"""python-escpos's own Network printer, an independent client, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from escpos.printer import Network

from printer_drivers.emulator.runner import EmulatorThread

ONLINE_PAPER_ADEQUATE, NEAR_END, NO_PAPER = 2, 1, 0


@pytest.fixture
def sim() -> Iterator[EmulatorThread]:
    with EmulatorThread(name="interop") as emu:
        yield emu


def network(sim: EmulatorThread) -> Network:
    printer = Network("127.0.0.1", sim.port, timeout=10)
    printer.open()
    return printer


def test_python_escpos_prints_to_the_emulator(sim: EmulatorThread) -> None:
    printer = network(sim)
    try:
        printer.set(align="center", bold=True, double_height=True)
        printer.text("Hello kitchen\n")
        printer.set(normal_textsize=True, bold=False, align="left")
        printer.text("宫保鸡丁 x1\n")
        printer.qr("A017", native=True)
        printer.cut()
    finally:
        printer.close()
    (receipt,) = sim.wait_receipts(1)
    assert receipt.lines[0].text == "Hello kitchen"
    assert receipt.lines[0].bold and receipt.lines[0].height == 2
    assert receipt.lines[0].align == "center"
    assert "宫保鸡丁 x1" in receipt.text
    assert receipt.qr_codes == ("A017",)


def test_is_online_and_paper_status_follow_faults(sim: EmulatorThread) -> None:
    printer = network(sim)
    try:
        assert printer.is_online() is True
        assert printer.paper_status() == ONLINE_PAPER_ADEQUATE
        sim.set_state(paper="near_end")
        assert printer.paper_status() == NEAR_END
        assert printer.is_online() is True
        sim.set_state(paper="out")
        assert printer.paper_status() == NO_PAPER
        assert printer.is_online() is False
        sim.set_state(paper="ok", cover_open=True)
        assert printer.is_online() is False
        assert printer.paper_status() == ONLINE_PAPER_ADEQUATE
        sim.set_state(cover_open=False, offline=True)
        assert printer.is_online() is False
        sim.set_state(offline=False)
        assert printer.is_online() is True
    finally:
        printer.close()


def test_faults_set_over_the_control_port(sim: EmulatorThread) -> None:
    import json
    import urllib.request

    def post(body: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{sim.control_port}/state",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    printer = network(sim)
    try:
        post({"paper": "out"})
        assert printer.paper_status() == NO_PAPER and not printer.is_online()
        post({"paper": "ok"})
        assert printer.paper_status() == ONLINE_PAPER_ADEQUATE and printer.is_online()
    finally:
        printer.close()
