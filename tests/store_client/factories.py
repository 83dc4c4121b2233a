"""Small builders of protocol objects for store client tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from protocol.ids import job_id
from protocol.jobs import DocLine, Job, TicketDoc
from protocol.orders import Template

#: Fixed "now" for tests that drive a fake clock; jobs default to the real now.
NOW = datetime.now(UTC).replace(microsecond=0)


def make_job(n: int, printer_id: str = "kitchen", ttl_s: int = 1800, name: str = "Burger") -> Job:
    order_id = f"o-{n}"
    doc = TicketDoc(
        template=Template.KITCHEN,
        station="Grill",
        order_ref=str(n),
        channel="pos",
        service="dine_in",
        placed_at=NOW,
        lines=(DocLine(qty=1, name=f"{name} {n}"),),
    )
    return Job(
        job_id=job_id(order_id, 1, printer_id, "kitchen"),
        order_id=order_id,
        revision=1,
        printer_id=printer_id,
        template=Template.KITCHEN,
        doc=doc,
        created_at=NOW,
        expires_at=NOW + timedelta(seconds=ttl_s),
    )
