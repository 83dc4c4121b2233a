"""job_id is deterministic across processes and changes with every input."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from protocol import job_id
from tests.protocol.strategies import ident

ARGS = ("o-1", 1, "kitchen", "kitchen", 0)


def test_stable_across_processes() -> None:
    code = "from protocol import job_id; print(job_id('o-1', 1, 'kitchen', 'kitchen', 0))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert outs == {job_id(*ARGS)}


def test_shape() -> None:
    jid = job_id(*ARGS)
    assert jid.startswith("j-") and len(jid) == 34


@given(
    st.tuples(
        ident, st.integers(1, 99), ident, st.sampled_from(["kitchen", "label"]), st.integers(0, 3)
    ),
    st.integers(0, 4),
    st.data(),
)
def test_differs_when_any_input_differs(base: tuple, which: int, data: st.DataObject) -> None:
    changed = list(base)
    if which in (1, 4):
        changed[which] = base[which] + data.draw(st.integers(1, 5))
    elif which == 3:
        changed[3] = "label" if base[3] == "kitchen" else "kitchen"
    else:
        changed[which] = base[which] + data.draw(ident)
    assert job_id(*base) != job_id(*changed)


def test_field_boundaries_do_not_collide() -> None:
    assert job_id("a", 1, "bc", "kitchen") != job_id("ab", 1, "c", "kitchen")
