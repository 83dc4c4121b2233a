"""The broker's one reading of the wall clock: a seam.

Every timestamp the broker writes (an order's and its jobs' times, a job's transitions, a
ticket's bump, a link's ``since``, the welcome's ``now``) comes from the ``Now`` its
services were built with; tests build them with a fixed or stepping clock and assert exact
times. Durations and deadlines use the event loop's monotonic clock, and token expiry and
node liveness use unix time (``auth.py``, ``storage/``): those are not timestamps anyone
reads back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: Returns the current time, timezone-aware, in UTC.
Now = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)
