"""The ledger: every accepted ticket's jobs against the paper in the emulators. Pure.

A job is found on paper by its order's marker (``NOTE: M000042``, printed on kitchen
chits and receipts) on the job's printer. With its final state at the broker, each job
lands in one category:

| paper | final state | category |
|---|---|---|
| 1 | any | printed once (the state is listed; ``printed`` is the expected one) |
| ≥ 2 | history has ``uncertain`` | printed twice, marked uncertain |
| ≥ 2 | otherwise | printed twice — a failure |
| 0 | ``uncertain`` / ``expired`` / ``failed`` / ``cancelled`` | that state: staff were told |
| 0 | anything else (``printed``, still live, unknown to the broker) | lost — a failure |
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tests.faults.load import Submission

MARKER = re.compile(r"NOTE: (M\d{6})\b")
DETAIL_ROWS = 25


class Category(StrEnum):
    PRINTED_ONCE = "printed once"
    LOST = "lost"
    DOUBLED = "printed twice"
    DOUBLED_UNCERTAIN = "printed twice, marked uncertain"
    UNCERTAIN = "uncertain, not on paper"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"


FAILURES = frozenset({Category.LOST, Category.DOUBLED})
TOLD_STAFF = {
    "uncertain": Category.UNCERTAIN,
    "expired": Category.EXPIRED,
    "failed": Category.FAILED,
    "cancelled": Category.CANCELLED,
}
MISSING = "missing"
"""The state of a job the accepting answer listed but the broker no longer knows."""


def classify(paper: int, state: str, history: Iterable[str]) -> Category:
    if paper == 1:
        return Category.PRINTED_ONCE
    if paper >= 2:
        uncertain = state == "uncertain" or "uncertain" in history
        return Category.DOUBLED_UNCERTAIN if uncertain else Category.DOUBLED
    return TOLD_STAFF.get(state, Category.LOST)


@dataclass(frozen=True)
class JobRow:
    marker: str
    external_id: str
    order_id: str
    job_id: str
    printer_id: str
    template: str
    state: str
    history: tuple[str, ...]
    reason: str | None
    paper: int
    category: Category
    expires_at: str | None = None

    def expired_early(self, now: datetime) -> bool:
        """Expired although ``expires_at`` had not come yet by the true clock."""
        if self.state != "expired" or not self.expires_at:
            return False
        return datetime.fromisoformat(self.expires_at) > now

    def describe(self) -> str:
        path = " > ".join(self.history) or "-"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"{self.marker} {self.external_id} job {self.job_id} on {self.printer_id}: "
            f"paper {self.paper}, state {self.state}{why}; history {path}"
        )


@dataclass
class Ledger:
    rows: list[JobRow] = field(default_factory=list)
    orders_submitted: int = 0
    orders_accepted: int = 0
    never_accepted: list[dict[str, Any]] = field(default_factory=list)
    stray_receipts: dict[str, int] = field(default_factory=dict)
    """Per printer: receipts with no marker, or the marker of an order with no job there."""
    merged_receipts: dict[str, int] = field(default_factory=dict)
    """Per printer: receipts carrying two or more orders' markers (a cut missing)."""
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """The true time when the ledger was drawn: a job expired before its ``expires_at``
    by this clock was expired by a wrong clock, not by age."""

    @property
    def expired_early(self) -> list[JobRow]:
        return [r for r in self.rows if r.expired_early(self.built_at)]

    def counts(self) -> dict[Category, int]:
        found = Counter(r.category for r in self.rows)
        return {c: found.get(c, 0) for c in Category}

    def states_by_category(self) -> dict[Category, dict[str, int]]:
        out: dict[Category, Counter[str]] = {}
        for r in self.rows:
            out.setdefault(r.category, Counter())[r.state] += 1
        return {c: dict(v.most_common()) for c, v in out.items()}

    @property
    def failures(self) -> list[JobRow]:
        return [r for r in self.rows if r.category in FAILURES]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        interesting = [r for r in self.rows if r.category is not Category.PRINTED_ONCE]
        interesting += [
            r for r in self.rows if r.category is Category.PRINTED_ONCE and r.state != "printed"
        ]
        return {
            "ok": self.ok,
            "orders_submitted": self.orders_submitted,
            "orders_accepted": self.orders_accepted,
            "jobs": len(self.rows),
            "counts": {c.value: n for c, n in self.counts().items()},
            "final_states": {c.value: s for c, s in self.states_by_category().items()},
            "expired_early": len(self.expired_early),
            "never_accepted": self.never_accepted,
            "stray_receipts": self.stray_receipts,
            "merged_receipts": self.merged_receipts,
            "jobs_not_printed_once_or_not_printed_state": [
                asdict(r)
                | {"category": r.category.value, "expired_early": r.expired_early(self.built_at)}
                for r in interesting
            ],
        }

    def table(self) -> str:
        states = self.states_by_category()
        lines = [
            f"orders submitted {self.orders_submitted}, accepted {self.orders_accepted}; "
            f"jobs {len(self.rows)}",
            f"{'category':<34}{'jobs':>6}   final states at the broker",
        ]
        for category, n in self.counts().items():
            detail = ", ".join(f"{s} {k}" for s, k in states.get(category, {}).items())
            flag = "  <-- FAIL" if category in FAILURES and n else ""
            early = len(self.expired_early) if category is Category.EXPIRED else 0
            flag += f"  <-- {early} before their expires_at (true clock)" if early else ""
            lines.append(f"{category.value:<34}{n:>6}   {detail}{flag}".rstrip())
        strays = sum(self.stray_receipts.values())
        lines.append(f"receipts that match no job: {strays} {self.stray_receipts or ''}".rstrip())
        if self.merged_receipts:
            lines.append(f"receipts carrying two chits (no cut between): {self.merged_receipts}")
        if self.never_accepted:
            lines.append(f"orders never accepted: {len(self.never_accepted)}")
        for title, rows in (
            ("lost / printed twice", self.failures),
            ("expired before their expires_at by the true clock", self.expired_early),
            ("printed once, state not printed", self._once_not_printed()),
            ("printed twice, marked uncertain", self._of(Category.DOUBLED_UNCERTAIN)),
        ):
            if rows:
                lines.append(f"-- {title} ({len(rows)}):")
                lines += ["   " + r.describe() for r in rows[:DETAIL_ROWS]]
                if len(rows) > DETAIL_ROWS:
                    lines.append(f"   … {len(rows) - DETAIL_ROWS} more in the JSON ledger")
        verdict = "OK" if self.ok else "FAIL"
        if self.expired_early:
            verdict += f" (but {len(self.expired_early)} job(s) expired early: a clock bug)"
        lines.append("verdict: " + verdict)
        return "\n".join(lines)

    def _of(self, category: Category) -> list[JobRow]:
        return [r for r in self.rows if r.category is category]

    def _once_not_printed(self) -> list[JobRow]:
        return [r for r in self._of(Category.PRINTED_ONCE) if r.state != "printed"]


def paper_counts(receipts: Mapping[str, Iterable[str]]) -> dict[tuple[str, str], int]:
    """``(printer_id, marker) -> receipts`` carrying it; receipts with no marker count
    under ``""``, and a receipt with two markers (two chits with no cut between them)
    counts for both and once more under ``"+"``."""
    out: Counter[tuple[str, str]] = Counter()
    for printer_id, texts in receipts.items():
        for text in texts:
            found = set(MARKER.findall(text))
            for mark in found or {""}:
                out[(printer_id, mark)] += 1
            if len(found) > 1:
                out[(printer_id, "+")] += 1
    return dict(out)


def build_ledger(
    submissions: Iterable[Submission],
    views: Mapping[str, dict[str, Any] | None],
    receipts: Mapping[str, Iterable[str]],
) -> Ledger:
    """``views``: ``GET /v1/orders/{order_id}`` bodies by order id (None: 404)."""
    subs = list(submissions)
    paper = paper_counts(receipts)
    ledger = Ledger(orders_submitted=len(subs))
    used: set[tuple[str, str]] = set()
    for sub in subs:
        if sub.order_id is None:
            ledger.never_accepted.append(
                {
                    "external_id": sub.body["external_id"],
                    "refused": sub.refused,
                    "answers": sub.answers,
                }
            )
            continue
        ledger.orders_accepted += 1
        for job in _jobs(sub, views.get(sub.order_id)):
            key = (job["printer_id"], sub.marker)
            used.add(key)
            history = tuple(h["state"] for h in job.get("history", ()))
            reasons = [h.get("reason") for h in job.get("history", ()) if h.get("reason")]
            count = paper.get(key, 0)
            ledger.rows.append(
                JobRow(
                    marker=sub.marker, external_id=sub.body["external_id"],
                    order_id=sub.order_id, job_id=job["job_id"], printer_id=job["printer_id"],
                    template=job["template"], state=job["state"], history=history,
                    reason=reasons[-1] if reasons else None, paper=count,
                    category=classify(count, job["state"], history),
                    expires_at=job.get("expires_at"),
                )
            )  # fmt: skip
    for (printer_id, mark), n in paper.items():
        if mark == "+":
            ledger.merged_receipts[printer_id] = n
        elif (printer_id, mark) not in used:
            ledger.stray_receipts[printer_id] = ledger.stray_receipts.get(printer_id, 0) + n
    return ledger


def _jobs(sub: Submission, view: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The broker's jobs of the order, plus any the accepting answer named that it lost."""
    jobs: list[dict[str, Any]] = list(view["jobs"]) if view else []
    known = {j["job_id"] for j in jobs}
    for job in sub.jobs:
        if job["job_id"] not in known:
            jobs.append(job | {"state": MISSING, "history": []})
    return jobs
