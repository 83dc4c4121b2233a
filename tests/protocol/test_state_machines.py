"""Job and line state machines: every allowed move works, every other is refused."""

from __future__ import annotations

import itertools

import pytest

from protocol import (
    JOB_TRANSITIONS,
    LINE_TRANSITIONS,
    JobState,
    LineAction,
    LineState,
    TicketLine,
    TicketState,
    TransitionError,
    job_transition,
    line_transition,
    ticket_state,
)

JOB_ALLOWED = [(a, b) for a, targets in JOB_TRANSITIONS.items() for b in sorted(targets)]
JOB_REFUSED = [
    (a, b) for a, b in itertools.product(JobState, JobState) if (a, b) not in JOB_ALLOWED
]


@pytest.mark.parametrize(
    ("current", "target"), JOB_ALLOWED, ids=[f"{a}->{b}" for a, b in JOB_ALLOWED]
)
def test_job_allowed(current: JobState, target: JobState) -> None:
    assert job_transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"), JOB_REFUSED, ids=[f"{a}->{b}" for a, b in JOB_REFUSED]
)
def test_job_refused(current: JobState, target: JobState) -> None:
    with pytest.raises(TransitionError) as info:
        job_transition(current, target)
    assert f"from {current.value!r} to {target.value!r}" in str(info.value)


def test_job_machine_shape() -> None:
    # Documented semantics (DESIGN.md §3) the table must keep.
    assert set(JOB_TRANSITIONS) == set(JobState)
    for terminal in ("printed", "uncertain", "expired", "failed", "cancelled"):
        assert JOB_TRANSITIONS[JobState(terminal)] == frozenset()
    assert JobState.PRINTED not in JOB_TRANSITIONS[JobState.HELD]  # held must print first
    assert JobState.PRINTING in JOB_TRANSITIONS[JobState.REROUTED]  # prints on the backup
    # Every non-terminal state can still reach "printed".
    for start in JobState:
        seen, todo = {start}, [start]
        while todo:
            for nxt in JOB_TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if JOB_TRANSITIONS[start]:
            assert JobState.PRINTED in seen, start


def test_refusal_lists_allowed_moves() -> None:
    with pytest.raises(TransitionError) as info:
        job_transition(JobState.PRINTED, JobState.PRINTING)
    assert "terminal" in str(info.value)
    assert info.value.allowed == frozenset()


LINE_ALLOWED = list(LINE_TRANSITIONS.items())
LINE_REFUSED = [
    (s, a) for s, a in itertools.product(LineState, LineAction) if (s, a) not in LINE_TRANSITIONS
]


@pytest.mark.parametrize(
    ("move", "result"), LINE_ALLOWED, ids=[f"{s}+{a}" for (s, a), _ in LINE_ALLOWED]
)
def test_line_allowed(move: tuple[LineState, LineAction], result: LineState) -> None:
    assert line_transition(*move) is result


@pytest.mark.parametrize(
    ("state", "action"), LINE_REFUSED, ids=[f"{s}+{a}" for s, a in LINE_REFUSED]
)
def test_line_refused(state: LineState, action: LineAction) -> None:
    with pytest.raises(TransitionError):
        line_transition(state, action)


def test_line_machine_semantics() -> None:
    assert line_transition(LineState.NEW, LineAction.START) is LineState.IN_PROGRESS
    assert line_transition(LineState.IN_PROGRESS, LineAction.BUMP) is LineState.READY
    assert line_transition(LineState.READY, LineAction.RECALL) is LineState.IN_PROGRESS
    assert all(s != LineState.VOIDED for s, _ in LINE_TRANSITIONS)  # voided is terminal


def _line(state: LineState) -> TicketLine:
    return TicketLine(line_id="1", name="x", qty=1, state=state)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([LineState.NEW, LineState.NEW], TicketState.NEW),
        ([LineState.NEW, LineState.READY], TicketState.IN_PROGRESS),
        ([LineState.IN_PROGRESS], TicketState.IN_PROGRESS),
        ([LineState.READY, LineState.VOIDED], TicketState.READY),
        ([LineState.VOIDED, LineState.VOIDED], TicketState.VOIDED),
        ([LineState.READY, LineState.READY], TicketState.READY),
    ],
)
def test_ticket_state_rolls_up_live_lines(states: list[LineState], expected: TicketState) -> None:
    assert ticket_state([_line(s) for s in states]) is expected
