"""The seeded fault schedule: which fault hits what, when, and for how long. Pure.

Two lanes run side by side: the *system* lane (processes, network, disk, clock) and the
*printer* lane (paper, cover, power). Within a lane faults follow one another with a gap;
the lanes overlap, so a printer can run out of paper while the link is down. Each lane
first goes through every kind it has once (in a seeded order, so a short run still covers
them all), then draws kinds at random. The same ``(seed, seconds, storage, kinds, scale)``
always gives the same schedule; what the processes do in it still varies with timing.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    BROKER_KILL = "broker_kill"  # kill -9 a broker node, start it again
    BROKER_TERM = "broker_term"  # SIGTERM: the node drains (1012), start it again
    CLIENT_KILL = "client_kill"  # kill -9 the store client, start it again
    CLIENT_TERM = "client_term"  # SIGTERM the store client, start it again
    LINK_CUT = "link_cut"  # the proxy closes every store-link connection
    LINK_STALL = "link_stall"  # the proxy black-holes the store link, then lets it flow
    REDIS_RESTART = "redis_restart"  # redis-server stopped (TERM or KILL), started again
    DISK_FULL = "disk_full"  # a ballast file fills the spool's filesystem, then goes
    CLOCK_SKEW = "clock_skew"  # the store client restarted with its clock hours off
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    POWER_LOSS = "power_loss"  # the printer emulator stops, then starts on the same port


PRINTER_FAULTS = (Fault.PAPER_OUT, Fault.COVER_OPEN, Fault.POWER_LOSS)
SYSTEM_FAULTS = tuple(f for f in Fault if f not in PRINTER_FAULTS)
REDIS_ONLY = frozenset({Fault.REDIS_RESTART})

#: How long each fault lasts, seconds (min, max), before ``scale``.
DURATION_S: dict[Fault, tuple[float, float]] = {
    Fault.BROKER_KILL: (1, 8),
    Fault.BROKER_TERM: (1, 8),
    Fault.CLIENT_KILL: (0.5, 5),
    Fault.CLIENT_TERM: (0.5, 5),
    Fault.LINK_CUT: (0, 0),
    Fault.LINK_STALL: (3, 45),  # past 20 s the pings time out and both ends give up
    Fault.REDIS_RESTART: (1, 10),
    Fault.DISK_FULL: (5, 30),
    Fault.CLOCK_SKEW: (10, 45),
    Fault.PAPER_OUT: (2, 30),
    Fault.COVER_OPEN: (2, 30),
    Fault.POWER_LOSS: (1, 15),
}
GAP_S = (2.0, 12.0)
LEAD_S = 3.0
"""No fault in the first seconds: the store is linked and printing before anything breaks."""
TAIL_S = 3.0
SKEWS_S = (7200.0, -7200.0, 4 * 3600.0, -3 * 3600.0)


@dataclass(frozen=True)
class FaultEvent:
    at_s: float
    """Seconds after the load started."""
    kind: Fault
    duration_s: float
    target: str
    """A broker node name, a printer id, ``client``, ``link``, ``redis:TERM``, ``+7200``…"""

    def describe(self) -> str:
        return (
            f"t+{self.at_s:6.1f}s {self.kind.value:<13} {self.target:<8} for {self.duration_s:.1f}s"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"kind": self.kind.value}


def kinds_for(storage: str, kinds: Iterable[Fault] | None = None) -> list[Fault]:
    """The fault kinds that apply to ``storage`` (``sqlite`` or ``redis``), in enum order."""
    wanted = set(Fault if kinds is None else kinds)
    return [f for f in Fault if f in wanted and (storage == "redis" or f not in REDIS_ONLY)]


def make_schedule(
    seed: int,
    seconds: float,
    storage: str,
    *,
    kinds: Iterable[Fault] | None = None,
    nodes: Sequence[str] = ("A",),
    printers: Sequence[str] = ("kitchen", "bar", "receipt"),
    scale: float = 1.0,
) -> list[FaultEvent]:
    """Every fault of the run, ordered by start time."""
    chosen = kinds_for(storage, kinds)
    lanes = (
        ("system", [f for f in chosen if f in SYSTEM_FAULTS]),
        ("printer", [f for f in chosen if f in PRINTER_FAULTS]),
    )
    events: list[FaultEvent] = []
    for lane, lane_kinds in lanes:
        if lane_kinds:
            rng = random.Random(f"{seed}:{storage}:{lane}")
            events += _lane(rng, lane_kinds, seconds, nodes, printers, scale)
    return sorted(events, key=lambda e: (e.at_s, e.kind.value))


def _lane(
    rng: random.Random,
    kinds: list[Fault],
    seconds: float,
    nodes: Sequence[str],
    printers: Sequence[str],
    scale: float,
) -> list[FaultEvent]:
    first_pass = list(kinds)
    rng.shuffle(first_pass)
    events: list[FaultEvent] = []
    t = LEAD_S
    while True:
        covering = bool(first_pass)
        kind = first_pass.pop(0) if first_pass else rng.choice(kinds)
        low, high = DURATION_S[kind]
        duration = round(rng.uniform(low, high) * scale, 1)
        if covering and t + duration > seconds - TAIL_S:
            duration = round(low * scale, 1)  # short runs still see every kind
        if t + duration > seconds - TAIL_S:
            return events
        target = _target(rng, kind, nodes, printers)
        events.append(FaultEvent(round(t, 1), kind, duration, target))
        t += duration + rng.uniform(*GAP_S) * max(scale, 0.25)


def _target(rng: random.Random, kind: Fault, nodes: Sequence[str], printers: Sequence[str]) -> str:
    if kind in (Fault.BROKER_KILL, Fault.BROKER_TERM):
        return rng.choice(list(nodes))
    if kind in PRINTER_FAULTS:
        return rng.choice(list(printers))
    if kind is Fault.REDIS_RESTART:
        return rng.choice(["redis:TERM", "redis:KILL"])
    if kind is Fault.CLOCK_SKEW:
        return f"{rng.choice(SKEWS_S):+.0f}"
    if kind in (Fault.LINK_CUT, Fault.LINK_STALL):
        return "link"
    if kind is Fault.DISK_FULL:
        return "spool"
    return "client"
