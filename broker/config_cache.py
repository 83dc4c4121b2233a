"""Store configs cached per node, whose versions only move forward (DESIGN.md §8.2).

Ingest reads a store's config for every order, so each node keeps it for a short while
(``ttl_s``) instead of asking storage each time. Two rules keep that cache from ever
handing out a config older than one this node has seen:

- A config replaces the cached one only if its version is at least as high: a slow read
  that answers after a ``PUT`` on this node, or after a config entry went by in a store's
  stream, cannot roll the cache back.
- A link's welcome announces a stream offset; the config it carries must be at least as
  new as every config entry up to that offset. When a feed reads a store's stream head,
  ``head_read`` marks what is cached as stale (its version stays as the floor), so the
  welcome's config comes from a read sent after the head was read; when a config entry
  goes by in a feed, ``committed`` raises the cached version at once.

Across nodes the cache can still be up to ``ttl_s`` behind for ingest: another node's
``PUT`` is seen within that time. The store client never applies a config older than the
one it has (DESIGN.md §8.2), whatever a node sends it.

Every config enters the cache through ``offer`` or ``committed``, and both fill in the
broker's ``default_timezone`` where a config names no ``timezone`` (DESIGN.md §8.7): what
the broker plans chits with and sends to screens and store clients always names the
store's zone. Storage keeps the config as it was put, so a new default applies to every
store without a zone of its own.

Only the configs of the ``MAX_PARSED`` stores used last are kept as models; the others
are kept as their JSON, zlib-compressed (0.4 KiB against 1.1 as JSON and 6 as a model,
for a three-printer config), and parsed again when next used (~30 µs). With 10,000 idle
store links the models alone were a third of the broker's memory per link, and the JSON
still 0.7 KiB of the 21.6 KiB RSS each link cost (``bench/link_memory.py``,
``bench/broker_load.py``).
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from protocol.config import VersionedStoreConfig
from protocol.timezones import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

MAX_CACHED = 100_000
MAX_PARSED = 1_024
"""Stores whose config is kept as a model: the ones used last (the rest as JSON)."""


@dataclass(slots=True)
class _Cached:
    config: VersionedStoreConfig | None
    read_at: float
    """When the read that found ``config`` was sent: it was the newest one then."""
    stale_before: float = -math.inf
    """Reads sent before this time are not good enough any more (a head read since)."""
    packed: bytes | None = None
    """``config`` as compressed JSON while the store is not among the ``MAX_PARSED`` used
    last."""
    version: int = 0

    def __post_init__(self) -> None:
        self.version = _version(self.config)

    def set(self, config: VersionedStoreConfig | None) -> None:
        self.config, self.packed, self.version = config, None, _version(config)


def _version(config: VersionedStoreConfig | None) -> int:
    return 0 if config is None else config.version


def _pack(config: VersionedStoreConfig) -> bytes:
    return zlib.compress(config.model_dump_json().encode())


def zoned(config: VersionedStoreConfig, default_timezone: str) -> VersionedStoreConfig:
    """``config`` naming its time zone: ``default_timezone`` where it names none."""
    if config.timezone is not None:
        return config
    return config.model_copy(update={"timezone": default_timezone})


class ConfigCache:
    def __init__(
        self,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        default_timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.default_timezone = default_timezone
        self._cached: dict[str, _Cached] = {}
        self._parsed: OrderedDict[str, None] = OrderedDict()
        """Stores whose config is a model now, least recently used first."""

    def fresh(self, store_id: str) -> tuple[bool, VersionedStoreConfig | None]:
        """(True, config) when the cached config may be served; else read storage, then
        ``offer`` what it answered with the time the read was sent."""
        hit = self._cached.get(store_id)
        if hit is None or hit.read_at < hit.stale_before:
            return False, None
        if self.clock() - hit.read_at >= self.ttl_s:
            return False, None
        return True, self._config(store_id, hit)

    def offer(
        self, store_id: str, config: VersionedStoreConfig | None, read_at: float
    ) -> VersionedStoreConfig | None:
        """Remember ``config`` (the newest as of ``read_at``) unless a newer one is cached;
        returns the config in force: the newest of the two."""
        if config is not None:
            config = zoned(config, self.default_timezone)
        hit = self._cached.get(store_id)
        if hit is None:
            if len(self._cached) >= MAX_CACHED:
                self._cached.clear()
                self._parsed.clear()
            hit = self._cached[store_id] = _Cached(config, read_at)
            self._used(store_id, hit)
            return config
        version = _version(config)
        if version > hit.version:
            hit.set(config)
            hit.read_at = read_at
        elif version == hit.version:
            if hit.packed is not None:
                hit.set(config)  # the same config kept as JSON: use the model just read
            hit.read_at = max(hit.read_at, read_at)
        return self._config(store_id, hit)

    def head_read(self, store_id: str) -> None:
        """A feed just read the store's stream head (``hub.ConfigWatcher``)."""
        hit = self._cached.get(store_id)
        if hit is not None:
            hit.stale_before = self.clock()

    def committed(self, store_id: str, payload: str) -> None:
        """A config entry went by in the store's stream (``hub.ConfigWatcher``): it is a
        floor for what this node serves, not proof that nothing newer exists."""
        try:
            config = VersionedStoreConfig.model_validate_json(payload)
        except ValidationError as exc:
            log.error("config entry store=%s unreadable: %s", store_id, exc)
            return
        config = zoned(config, self.default_timezone)
        hit = self._cached.get(store_id)
        if hit is None:
            self.offer(store_id, config, -math.inf)  # a floor; the next read refreshes it
        elif config.version > hit.version:
            hit.set(config)  # as fresh as the read it replaces: it is newer still
            self._used(store_id, hit)

    def _config(self, store_id: str, hit: _Cached) -> VersionedStoreConfig | None:
        """The cached config as a model (parsed again if it was kept as JSON)."""
        if hit.packed is not None:
            config = VersionedStoreConfig.model_validate_json(zlib.decompress(hit.packed))
            hit.config, hit.packed = config, None
        self._used(store_id, hit)
        return hit.config

    def _used(self, store_id: str, hit: _Cached) -> None:
        """``store_id``'s config was just used: a model until ``MAX_PARSED`` others were."""
        if hit.config is None:
            return
        parsed = self._parsed
        parsed[store_id] = None
        parsed.move_to_end(store_id)
        while len(parsed) > MAX_PARSED:
            old, _ = parsed.popitem(last=False)
            cold = self._cached.get(old)
            if cold is not None and cold.config is not None:
                cold.packed, cold.config = _pack(cold.config), None
