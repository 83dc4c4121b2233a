"""The per-node config cache: versions only move forward (issue 12 #3)."""

from __future__ import annotations

import math

import pytest

from broker import config_cache
from broker.config_cache import ConfigCache
from protocol.config import PrinterConfig, VersionedStoreConfig


def versioned(version: int, timezone: str | None = "UTC") -> VersionedStoreConfig:
    """A config as the cache hands it out: naming its zone (the default, UTC, here)."""
    printer = PrinterConfig(printer_id="kitchen", name="Hot line", transport="tcp://127.0.0.1:9")
    return VersionedStoreConfig(
        store_id="s1", version=version, name=f"v{version}", printers=(printer,), timezone=timezone
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_read_answering_after_a_put_does_not_roll_the_cache_back() -> None:
    clock = Clock()
    cache = ConfigCache(1.0, clock)
    read_sent = clock()  # a read is on its way ...
    clock.now += 0.01
    cache.offer("s1", versioned(2), clock())  # ... a PUT on this node lands ...
    assert cache.offer("s1", versioned(1), read_sent) == versioned(2)  # ... then it answers
    assert cache.fresh("s1") == (True, versioned(2))
    clock.now += 1.0
    assert cache.fresh("s1")[0] is False  # the TTL still applies


def test_a_config_entry_going_by_raises_the_cached_version_at_once() -> None:
    clock = Clock()
    cache = ConfigCache(1.0, clock)
    cache.offer("s1", versioned(1), clock())
    cache.committed("s1", versioned(3).model_dump_json())
    assert cache.fresh("s1") == (True, versioned(3))
    cache.committed("s1", versioned(2).model_dump_json())  # late and older: no effect
    assert cache.fresh("s1") == (True, versioned(3))


def test_an_entry_for_an_uncached_store_is_a_floor_not_a_fresh_config() -> None:
    clock = Clock()
    cache = ConfigCache(1.0, clock)
    cache.committed("s1", versioned(3).model_dump_json())
    assert cache.fresh("s1")[0] is False  # read storage first ...
    assert cache.offer("s1", versioned(2), clock()) == versioned(3)  # ... never older


def test_after_a_head_read_only_a_later_read_is_served() -> None:
    clock = Clock()
    cache = ConfigCache(60.0, clock)
    read_sent = clock()
    cache.offer("s1", versioned(1), read_sent)
    clock.now += 0.01
    cache.head_read("s1")  # a welcome announces a head that may hold version 2's entry
    assert cache.fresh("s1")[0] is False
    assert cache.offer("s1", versioned(1), read_sent) == versioned(1)  # an older read: no
    assert cache.fresh("s1")[0] is False
    clock.now += 0.01
    assert cache.offer("s1", versioned(2), clock()) == versioned(2)
    assert cache.fresh("s1") == (True, versioned(2))


def test_what_the_cache_hands_out_names_the_stores_zone() -> None:
    """DESIGN.md §8.7: a config without a zone gets the broker's default_timezone; one
    with a zone keeps it."""
    cache = ConfigCache(60.0, Clock(), default_timezone="Asia/Shanghai")
    got = cache.offer("s1", versioned(1, timezone=None), 100.0)
    assert got == versioned(1, timezone="Asia/Shanghai")
    cache.committed("s1", versioned(2, timezone=None).model_dump_json())
    assert cache.fresh("s1")[1] == versioned(2, timezone="Asia/Shanghai")
    assert cache.offer("s2", versioned(1, timezone="Europe/Paris"), 100.0) == versioned(
        1, timezone="Europe/Paris"
    )


def test_configs_beyond_the_ones_used_last_are_kept_compressed_and_come_back_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config_cache, "MAX_PARSED", 2)
    clock = Clock()
    cache = ConfigCache(math.inf, clock)
    configs = {f"s{n}": versioned(n).model_copy(update={"store_id": f"s{n}"}) for n in range(1, 5)}
    for store, config in configs.items():
        cache.offer(store, config, clock())
    held = cache._cached  # what each store's entry holds now
    assert [s for s in configs if held[s].config is not None] == ["s3", "s4"]
    assert [s for s in configs if held[s].packed is not None] == ["s1", "s2"]
    packed = held["s1"].packed
    assert packed is not None and len(packed) < len(configs["s1"].model_dump_json())
    assert cache.fresh("s1") == (True, configs["s1"])  # parsed again: the one used last
    assert held["s1"].config is not None and held["s3"].config is None
    # versions still only move forward for a store kept as JSON
    assert (
        cache.offer("s2", versioned(1).model_copy(update={"store_id": "s2"}), 0.0)
        == (configs["s2"])
    )
    cache.committed("s3", versioned(9).model_copy(update={"store_id": "s3"}).model_dump_json())
    assert cache.fresh("s3") == (True, versioned(9).model_copy(update={"store_id": "s3"}))
