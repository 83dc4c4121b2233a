"""Job reasons: any error text fits a report and the job's history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol.jobs import MAX_JOB_REASON_CHARS, JobState, JobTransitionRecord, clip_job_reason
from protocol.messages.store import JobStateReport

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["x" * 2000, "宫保鸡丁" * 300, "a" * MAX_JOB_REASON_CHARS])
def test_long_reasons_fit_the_report_and_the_history(text: str) -> None:
    reason = clip_job_reason(text)
    assert reason is not None and len(reason) <= MAX_JOB_REASON_CHARS
    assert reason[:50] == text[:50]
    assert reason.endswith("…") is (len(text) > MAX_JOB_REASON_CHARS)
    JobStateReport(job_id="j-1", state=JobState.FAILED, reason=reason, at=AT)
    JobTransitionRecord(state=JobState.FAILED, at=AT, reason=reason)


def test_short_and_empty_reasons() -> None:
    assert clip_job_reason("paper out") == "paper out"
    assert clip_job_reason("") is None and clip_job_reason(None) is None
