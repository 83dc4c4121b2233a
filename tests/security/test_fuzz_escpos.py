"""Fuzz the emulator's ESC/POS intake (printer_drivers/emulator/parser.py and paper.py):
anyone who reaches its port 9100 can send any bytes. Random, mutated (real receipts from
the golden files) and command-shaped streams, in any chunking: no exception, the same
commands whatever the chunking, never more than ``MAX_COMMAND_BYTES`` held back, no hang."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from printer_drivers.emulator.paper import PaperMachine
from printer_drivers.emulator.parser import (
    MAX_COMMAND_BYTES,
    MAX_TERMINATED_BYTES,
    Command,
    CommandParser,
    Op,
)
from tests.security.fuzzing import fuzz, never_hangs

GOLDEN = sorted((Path(__file__).parents[1] / "printer_drivers" / "golden").glob("*.bin"))
#: Command heads whose parameters decide a length: where a parser goes wrong.
HEADS = [
    b"\x1b",
    b"\x1d",
    b"\x1c",
    b"\x10\x04",
    b"\x10\x14",
    b"\x1dv0\x00",
    b"\x1d(k",
    b"\x1c(",
    b"\x1b*!",
    b"\x1bD",
    b"\x1dk\x04",
    b"\x1dkA",
    b"\x1dV",
    b"\x1b!",
    b"\x1d!",
    b"\x1c&",
    b"\x1bt",
    b"\x1bd",
    "宫保鸡丁".encode("gb18030"),
]
#: GS v 0 announcing 65535 x 65535 bytes of image (4 GiB): before, all of it was held.
HUGE_RASTER = b"\x1dv0\x00\xff\xff\xff\xff"


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(buf)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "head", "repeat"]))
        if op == "flip" and pos < len(buf):
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del buf[pos : pos + draw(st.integers(1, 64))]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "head":
            buf[pos:pos] = draw(st.sampled_from(HEADS)) + draw(st.binary(max_size=6))
        else:
            buf[pos:pos] = buf[pos : pos + draw(st.integers(1, 32))] * draw(st.integers(2, 8))
    return bytes(buf)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "golden", "heads"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "golden":
        return mutate(draw(st.sampled_from(GOLDEN)).read_bytes(), draw)
    parts = draw(st.lists(st.tuples(st.sampled_from(HEADS), st.binary(max_size=12)), max_size=40))
    return b"".join(head + tail for head, tail in parts)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def merged(commands: list[Command]) -> list[tuple[Op, bytes]]:
    """Commands with adjacent text runs joined (a chunk edge may split a run)."""
    out: list[tuple[Op, bytes]] = []
    for c in commands:
        if c.op is Op.TEXT and out and out[-1][0] is Op.TEXT:
            out[-1] = (Op.TEXT, out[-1][1] + c.raw)
        else:
            out.append((c.op, c.raw))
    return out


def run(chunks: list[bytes]) -> tuple[list[Command], int]:
    """Feed the chunks to a parser and a print head; the commands and the most held back."""
    parser, machine = CommandParser(), PaperMachine(columns=32)
    commands: list[Command] = []
    held = 0
    for chunk in chunks:
        for command in parser.feed(chunk):
            machine.execute(command)
            commands.append(command)
        held = max(held, parser.pending)
    machine.finish_sheet(cut=False)
    return commands, held


@fuzz(weight=2.0)
@given(streams(), st.lists(st.integers(min_value=0), max_size=20))
@example(HUGE_RASTER + bytes(MAX_COMMAND_BYTES), [9, 100, 2000])
@example(b"\x1bD" + b"\x01" * (MAX_TERMINATED_BYTES + 40), [3, 200])
@example(b"\x1dk\x04" + b"1" * (MAX_TERMINATED_BYTES + 40) + b"\x00tail", [5])
def test_any_stream_in_any_chunking(data: bytes, cuts: list[int]) -> None:
    with never_hangs(f"{len(data)} bytes"):
        whole, _ = run([data])
        pieces, held = run(chunked(data, cuts))
    assert merged(pieces) == merged(whole)
    assert held < MAX_COMMAND_BYTES


def test_a_huge_announced_image_is_not_held() -> None:
    """Before: the parser kept every byte of an announced 4 GiB image while waiting for the
    rest (2 MiB held here); now the data streams through and parsing goes on after it."""
    parser = CommandParser()
    commands = parser.feed(HUGE_RASTER)
    assert [c.op for c in commands] == [Op.RASTER]
    for _ in range(512):
        assert parser.feed(b"\x10\x04\x01" * 1365) == []  # image data, not DLE EOT
        assert parser.pending < MAX_COMMAND_BYTES
    assert parser.pending == 0


def test_the_parser_resumes_after_a_huge_image() -> None:
    width, height = 200, 6000  # 1.2 MB: over MAX_COMMAND_BYTES
    parser = CommandParser()
    head = b"\x1dv0\x00" + width.to_bytes(2, "little") + height.to_bytes(2, "little")
    out = parser.feed(head + bytes(width * height) + b"after\n\x1dV\x00")
    assert [c.op for c in out] == [Op.RASTER, Op.TEXT, Op.LF, Op.CUT]
    assert out[1].raw == b"after" and parser.pending == 0


def test_nul_terminated_commands_end_at_their_limit() -> None:
    """Before: ESC D without its NUL held everything after it, forever."""
    parser = CommandParser()
    out = parser.feed(b"\x1bD" + b"\x08" * 10_000)
    assert out[0].op is Op.OTHER and len(out[0].raw) == MAX_TERMINATED_BYTES
    assert parser.pending == 0
