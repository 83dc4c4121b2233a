"""Steady order load, as an integrator would send it while things break.

Orders go out at a fixed rate, each to the next broker node. A submit that fails (no
answer, 5xx, 429) is sent again — the same body, so the same ``external_id`` — to the
next node after a short backoff until one answers 2xx: submit is idempotent (DESIGN.md
§3), so a retry of an order that was committed but whose answer was lost changes
nothing. Every order carries a unique marker in its note (``NOTE: M000042`` on the
kitchen chits and the receipt) so the ledger can find its paper.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_S = (0.2, 2.0)
REQUEST_TIMEOUT_S = 10.0


def marker(n: int) -> str:
    return f"M{n:06d}"


@dataclass
class Submission:
    n: int
    body: dict[str, Any]
    attempts: int = 0
    answers: list[str] = field(default_factory=list)
    """Each attempt's outcome: a status code or an exception name (only the last 20)."""
    order_id: str | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    """``{job_id, printer_id, template, state}`` as the accepting answer listed them."""
    duplicate: bool = False
    refused: str | None = None
    """A 4xx other than 429: the harness sent something wrong; not retried."""

    @property
    def marker(self) -> str:
        return marker(self.n)

    @property
    def accepted(self) -> bool:
        return self.order_id is not None

    def note(self, outcome: str) -> None:
        self.answers = [*self.answers[-19:], outcome]


def make_order(rng: random.Random, store_id: str, run_id: str, n: int) -> dict[str, Any]:
    """One order: burgers (grill → kitchen printer) and/or drinks (bar), always a receipt."""
    kinds = rng.choice([("burgers",), ("drinks",), ("burgers", "drinks"), ("burgers", "drinks")])
    items = []
    for i, category in enumerate(kinds, start=1):
        name = "Burger" if category == "burgers" else "Lemon tea"
        items.append(
            {"line_id": str(i), "sku": f"{category[0].upper()}{i:02d}", "name": f"{name} {n}",
             "qty": rng.randint(1, 3), "category": category}
        )  # fmt: skip
    return {
        "store_id": store_id,
        "channel": rng.choice(["pos", "kiosk", "meituan", "miniprogram"]),
        "external_id": f"{run_id}-{n}",
        "service": rng.choice(["takeout", "dine_in", "delivery"]),
        "pickup_code": str(n),
        "placed_at": "2026-11-21T12:00:00+08:00",
        "note": marker(n),
        "items": items,
    }


class OrderLoad:
    """``run()`` submits ``rate`` orders a second until ``stop()``; ``settle()`` waits for
    the retries still under way."""

    def __init__(
        self,
        nodes: Callable[[], list[str]],
        token: str,
        store_id: str,
        run_id: str,
        rate: float,
        seed: int,
    ) -> None:
        self.nodes = nodes
        self.headers = {"Authorization": f"Bearer {token}"}
        self.store_id = store_id
        self.run_id = run_id
        self.rate = rate
        self.rng = random.Random(f"{seed}:load")
        self.submissions: list[Submission] = []
        self._turn = 0
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
            n = 0
            while not self._stopped.is_set():
                sub = Submission(n, make_order(self.rng, self.store_id, self.run_id, n))
                self.submissions.append(sub)
                task = asyncio.create_task(self._submit(http, sub), name=f"submit-{n}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                n += 1
                delay = start + n / self.rate - loop.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await self._stopped.wait()
                    except TimeoutError:
                        pass
            await self.settle_wait()

    async def settle_wait(self) -> None:
        """Wait for every submit still being retried (they retry until accepted)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def cancel_pending(self) -> int:
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        return len(pending)

    async def _submit(self, http: httpx.AsyncClient, sub: Submission) -> None:
        delay = BACKOFF_S[0]
        while True:
            nodes = self.nodes()
            base = nodes[self._turn % len(nodes)]
            self._turn += 1
            sub.attempts += 1
            try:
                r = await http.post(base + "/v1/orders", json=sub.body, headers=self.headers)
            except httpx.HTTPError as exc:
                sub.note(type(exc).__name__)
            else:
                sub.note(str(r.status_code))
                if r.status_code in (200, 202):
                    body = r.json()
                    sub.order_id = str(body["order_id"])
                    sub.duplicate = bool(body.get("duplicate"))
                    sub.jobs = [dict(j) for j in body["jobs"]]
                    return
                if r.status_code not in RETRY_STATUSES:
                    sub.refused = f"{r.status_code} {r.text[:300]}"
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_S[1])
