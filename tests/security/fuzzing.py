"""Hypothesis settings for the fuzz suite (tests/security/test_fuzz_*.py, issue 14).

Two profiles: ``fuzz-ci`` runs in the test command with few examples (the whole suite in
about 20 s on a 2-core machine, a minute at most); ``fuzz-long`` is what ``bench/fuzz.py
--examples N`` selects, through the environment, for a long hunt. Each test scales the
profile's count by its weight (an HTTP round trip costs far more than a decode)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

PROFILE_ENV = "PASSLINE_FUZZ_PROFILE"
EXAMPLES_ENV = "PASSLINE_FUZZ_EXAMPLES"
CI_EXAMPLES = 300
#: The "never hangs" guard of one example: far above what any input costs when the code
#: is linear, far below the test's own timeout (timing goals live in bench/).
HANG_S = 10.0

settings.register_profile(
    "fuzz-ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "fuzz-long",
    settings.get_profile("fuzz-ci"),
    max_examples=int(os.environ.get(EXAMPLES_ENV, "10000")),
)

F = TypeVar("F", bound=Callable[..., Any])


def fuzz(weight: float = 1.0) -> Callable[[F], F]:
    """``@fuzz(0.3)`` above ``@given``: the active profile, its examples times ``weight``."""
    base = settings.get_profile(os.environ.get(PROFILE_ENV, "fuzz-ci"))
    return settings(base, max_examples=max(1, round(base.max_examples * weight)))


@contextmanager
def never_hangs(what: str, limit_s: float = HANG_S) -> Iterator[None]:
    """Fail when the block took longer than ``limit_s`` (a hang, not a timing goal)."""
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < limit_s, f"{what} took {took:.1f}s (limit {limit_s:g}s): a hang"
