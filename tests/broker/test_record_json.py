"""Records and frames built around JSON serialised once (``protocol.codec.json_with``) are
exactly what their models would write: none is hand-written JSON that can drift."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.orders import new_job_json
from broker.records import JobRecord, TicketRecord
from broker.session_kds import _order_frame
from broker.storage import Entry, EntryKind
from protocol.codec import json_with
from protocol.jobs import Job, JobState, JobTransitionRecord
from protocol.messages.kds import OrderUpdate, TicketRemoved, TicketUpdate
from protocol.reports import Measure
from protocol.tickets import ExpoOrder, Ticket
from tests.protocol import strategies as S

quick = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@quick
@given(job=S.print_jobs(), store=S.ident, now=S.timestamps)
def test_a_new_job_record_is_the_models_own_json(job: Job, store: str, now: datetime) -> None:
    queued = JobTransitionRecord(state=JobState.QUEUED, at=now)
    want = JobRecord(job=job, store_id=store, state=JobState.QUEUED, history=[queued])
    assert new_job_json(job.model_dump_json(), store, now) == want.model_dump_json()


@quick
@given(ticket=S.tickets_(), measured=st.lists(st.sampled_from(Measure), max_size=3))
def test_a_ticket_record_is_the_models_own_json(ticket: Ticket, measured: list[Measure]) -> None:
    got = json_with(TicketRecord, {"ticket": ticket.model_dump_json()}, measured=measured)
    assert got == TicketRecord(ticket=ticket, measured=measured).model_dump_json()


@quick
@given(ticket=S.tickets_(), order=S.expo_orders(), offset=S.offsets)
def test_screen_frames_are_the_messages_own_json(
    ticket: Ticket, order: ExpoOrder, offset: int
) -> None:
    t_json = ticket.model_dump_json()
    assert (
        json_with(TicketUpdate, {"ticket": t_json}, offset=offset)
        == TicketUpdate(offset=offset, ticket=ticket).model_dump_json()
    )
    assert (
        json_with(TicketRemoved, {}, offset=offset, ticket_id=ticket.ticket_id)
        == TicketRemoved(offset=offset, ticket_id=ticket.ticket_id).model_dump_json()
    )
    entry = Entry(offset, EntryKind.ORDER, order.model_dump_json(), "expo")
    frame = OrderUpdate(offset=offset, order=order).model_dump_json()
    assert _order_frame(entry) == frame


def test_a_field_the_model_does_not_have_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown or repeated fields bogus"):
        json_with(TicketRemoved, {}, offset=1, ticket_id="t-1", bogus=2)
    with pytest.raises(TypeError, match="unknown or repeated fields offset"):
        json_with(TicketRemoved, {"offset": "1"}, offset=1, ticket_id="t-1")


def test_a_required_field_left_out_is_refused() -> None:
    with pytest.raises(TypeError, match=r"TicketRemoved\.ticket_id is required"):
        json_with(TicketRemoved, {}, offset=1)
