"""Job reports that skip ahead: the implied ``sent``/``spooled`` steps are stamped no
later than the reported step (DESIGN.md §3: "every transition is timestamped"). They were
stamped with the broker's clock on arrival, after the step that implies them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.broker.helpers import Endpoints, open_store, recv_msgpack, send_msgpack
from tests.broker.test_store_link import eventually, state_is, submit


async def test_implied_steps_are_not_stamped_after_the_reported_one(
    ep: Endpoints, store: str
) -> None:
    ws, _ = await open_store(ep)
    [sub] = await submit(ep, 1)
    msgs = [await recv_msgpack(ws) for _ in sub["jobs"]]
    job_id = msgs[0]["job"]["job_id"]
    # the client starts printing now; its ack is still on the way (none is sent here)
    at = datetime.now(UTC)
    report = {"type": "job_state", "job_id": job_id, "state": "printing", "at": at.isoformat()}
    await send_msgpack(ws, report)
    view = await eventually(state_is(ep, job_id, "printing"))
    history = [(h["state"], datetime.fromisoformat(h["at"])) for h in view["history"]]
    assert [state for state, _ in history] == ["queued", "sent", "spooled", "printing"]
    times = [t for _, t in history]
    assert times == sorted(times), history
    await ws.close()
