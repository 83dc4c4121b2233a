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
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from protocol.config import VersionedStoreConfig
from protocol.timezones import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

MAX_CACHED = 100_000


@dataclass(slots=True)
class _Cached:
    config: VersionedStoreConfig | None
    read_at: float
    """When the read that found ``config`` was sent: it was the newest one then."""
    stale_before: float = -math.inf
    """Reads sent before this time are not good enough any more (a head read since)."""


def _version(config: VersionedStoreConfig | None) -> int:
    return 0 if config is None else config.version


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

    def fresh(self, store_id: str) -> tuple[bool, VersionedStoreConfig | None]:
        """(True, config) when the cached config may be served; else read storage, then
        ``offer`` what it answered with the time the read was sent."""
        hit = self._cached.get(store_id)
        if hit is None or hit.read_at < hit.stale_before:
            return False, None
        return self.clock() - hit.read_at < self.ttl_s, hit.config

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
            self._cached[store_id] = _Cached(config, read_at)
            return config
        if _version(config) > _version(hit.config):
            hit.config, hit.read_at = config, read_at
        elif _version(config) == _version(hit.config):
            hit.read_at = max(hit.read_at, read_at)
        return hit.config

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
        elif config.version > _version(hit.config):
            hit.config = config  # as fresh as the read it replaces: it is newer still
