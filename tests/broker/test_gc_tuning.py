"""The broker process tunes its garbage collector once ready (broker/gc_tuning.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from broker import gc_tuning
from broker.metrics import Metrics


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks


def test_tune_freezes_what_is_alive_raises_the_young_threshold_and_observes_pauses(
    restore_gc: None,
) -> None:
    histogram = Metrics().gc_pauses
    alive = [[i] for i in range(1000)]  # containers alive at tuning time
    hook = gc_tuning.tune(histogram)
    assert hook is not None and hook in gc.callbacks
    assert gc.get_freeze_count() >= len(alive)
    assert gc.get_threshold()[0] == gc_tuning.GEN0_THRESHOLD
    assert any(isinstance(c, gc_tuning.FreezeSurvivors) for c in gc.callbacks)
    gc.collect(2)
    gc.collect(0)
    samples = {
        s.labels["generation"]: s.value
        for m in histogram.collect()
        for s in m.samples
        if s.name.endswith("_count")
    }
    assert samples["2"] >= 1 and samples["0"] >= 1


def test_pauses_are_observed_by_generation() -> None:
    histogram = Histogram("h_seconds", "h", ["generation"], registry=CollectorRegistry())
    hook = gc_tuning.GcPauses(histogram)
    hook("start", {"generation": 1})
    hook("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    (metric,) = histogram.collect()
    counts = [s for s in metric.samples if s.name == "h_seconds_count"]
    assert [(s.labels["generation"], s.value) for s in counts] == [("1", 1.0)]


class Linked:
    """A closed link's objects, as far as the collector is concerned: a reference cycle."""

    def __init__(self) -> None:
        self.me = self


def test_a_full_collection_freezes_its_survivors_and_walks_them_again_after_growth(
    restore_gc: None,
) -> None:
    gc.collect()
    gc.freeze()
    hook = gc_tuning.FreezeSurvivors()
    gc.callbacks.append(hook)
    links = [Linked() for _ in range(1000)]
    closed = [weakref.ref(link) for link in links]
    gc.collect(2)
    assert gc.get_freeze_count() >= hook.walked + len(links)  # survivors frozen
    del links  # the links close: cyclic garbage, but frozen
    gc.collect(2)
    assert all(ref() is not None for ref in closed)  # the full collection did not walk them
    grown = [[i] for i in range(int(hook.walked * gc_tuning.WHOLE_AFTER_GROWTH) + 1)]
    gc.collect(2)  # freezes the growth; the frozen heap is now past the bound
    assert hook.whole_collections == 0 and all(ref() is not None for ref in closed)
    gc.collect(2)  # walks everything, frozen or not
    assert hook.whole_collections == 1
    assert all(ref() is None for ref in closed)
    assert hook.walked >= len(grown)
