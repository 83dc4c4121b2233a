"""What a fault run is asked to do (``RunConfig``) and what it found (``RunResult``):
the report printed at the end and the JSON ledger file."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faults.ledger import Ledger
from tests.faults.schedule import Fault, FaultEvent, kinds_for


@dataclass
class RunConfig:
    workdir: Path
    seed: int = 1
    storage: str = "sqlite"
    seconds: float = 60.0
    rate: float = 2.0
    """Orders per second."""
    kinds: tuple[Fault, ...] | None = None
    """None: every kind that applies to the storage."""
    scale: float = 1.0
    """Multiplies fault durations (a short suite run uses shorter faults)."""
    settle_s: float = 180.0
    cps: float | None = 4000.0
    """Printer speed in characters a second (a thermal printer prints 2–5k)."""

    @property
    def node_names(self) -> tuple[str, ...]:
        return ("A", "B") if self.storage == "redis" else ("A",)


@dataclass
class RunResult:
    config: RunConfig
    ledger: Ledger
    schedule: list[FaultEvent]
    executed: list[dict[str, Any]]
    journal: list[str]
    skipped: dict[str, str]
    log_problems: dict[str, int]
    wall_s: float
    quiescent: bool

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "command": command_line(c),
            "seed": c.seed, "storage": c.storage, "seconds": c.seconds, "rate": c.rate,
            "nodes": list(c.node_names), "kinds": [k.value for k in kinds_for(c.storage, c.kinds)],
            "skipped_kinds": self.skipped, "wall_s": round(self.wall_s, 1),
            "quiescent": self.quiescent, "ledger": self.ledger.to_json(),
            "faults": self.faults(), "journal": self.journal,
            "log_problems": self.log_problems, "workdir": str(c.workdir),
        }  # fmt: skip

    def faults(self) -> list[dict[str, Any]]:
        """The faults as they ran, by start time."""
        return sorted(self.executed, key=lambda e: e["started_s"])

    def report(self) -> str:
        c = self.config
        head = [
            f"fault run: {command_line(c)}",
            f"storage {c.storage} ({len(c.node_names)} node(s)), {c.seconds:.0f} s of load at "
            f"{c.rate:g} orders/s, wall {self.wall_s:.0f} s, workdir {c.workdir}",
            f"faults ({len(self.executed)}):",
        ]
        head += [f"  {e['line']}  -> {e['note']}" for e in self.faults()]
        head += [f"  skipped {k}: {why}" for k, why in self.skipped.items()]
        if self.journal:
            head.append("journal:")
            head += [f"  {line}" for line in self.journal[:40]]
        if not self.quiescent:
            head.append(f"NOT QUIESCENT: some jobs still live after {c.settle_s:.0f} s")
        return "\n".join(head) + "\n" + self.ledger.table()


def command_line(c: RunConfig) -> str:
    kinds = f" --kinds {','.join(k.value for k in c.kinds)}" if c.kinds else ""
    scale = f" --scale {c.scale:g}" if c.scale != 1 else ""
    return (
        f"python bench/faults.py --minutes {c.seconds / 60:g} --storage {c.storage} "
        f"--seed {c.seed} --rate {c.rate:g}{kinds}{scale}"
    )


def log_problems(workdir: Path, top: int = 20) -> dict[str, int]:
    """Warnings, errors and tracebacks in the processes' logs, counted by message (ids masked)."""
    found: Counter[str] = Counter()
    for log in sorted(workdir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if any(w in line for w in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
                text = re.sub(r"^[\d-]+ [\d:,.]+ ", "", line)
                text = re.sub(
                    r"\b[sotj]-[0-9a-f]+\b|\b[0-9a-f]{16,}\b|\('127.0.0.1', \d+\)", "*", text
                )
                found[f"{log.stem}: " + re.sub(r"\b\d+(\.\d+)?\b", "N", text)[:200]] += 1
    return dict(found.most_common(top))


def write_json(result: RunResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n")
