"""Gray release by store ring (docs/rollout.md): stage a config change to a ring,
promote it, roll it back — each one call, each live (the stores' configs are rewritten
and pushed as a ``PUT`` would push them).

Releases are records of their own (``Kind.RELEASE`` under ``ROLLOUT_STORE``); each
store keeps its base config (``Kind.BASE``) beside the config it runs, so a rollback
recomposes the store's config from its base and the releases still active.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from broker.clock import Now, system_now
from broker.errors import Conflict, InvalidRequest, NotFound
from broker.orders import Orders, put, retrying
from broker.records import LinkRecord
from broker.storage import Kind, Storage, Tx
from broker.storage.base import ROLLOUT_STORE
from protocol.config import StoreConfig, VersionedStoreConfig
from protocol.rollout import (
    Promotion,
    Release,
    ReleaseCreate,
    ReleaseState,
    RingView,
    compose,
)

log = logging.getLogger(__name__)

PAGE = 100  # stores read (and rewritten) between two turns of the loop


class Rollout:
    def __init__(self, storage: Storage, orders: Orders, now: Now = system_now) -> None:
        self.storage = storage
        self.orders = orders
        self.now = now

    # -- reading -----------------------------------------------------------------------------
    async def get(self, release_id: str) -> Release:
        raw = await self.storage.get(Kind.RELEASE, release_id, ROLLOUT_STORE)
        if raw is None:
            raise NotFound(f"no release {release_id!r}")
        return await self._counted(Release.model_validate_json(raw.doc))

    async def views(self) -> list[Release]:
        found = sorted(await self.orders.releases(), key=lambda r: r.seq)
        counts = await self._store_counts()
        return [r.model_copy(update={"stores": counts[r.release_id]}) for r in found]

    async def rings(self) -> list[RingView]:
        stores: dict[str | None, list[str]] = {}
        versions: dict[str | None, Counter[str]] = {}
        async for page in self._configs():
            links = await self.storage.get_many(Kind.LINK, [c.store_id for c in page])
            for config, raw in zip(page, links, strict=True):
                stores.setdefault(config.ring, []).append(config.store_id)
                link = LinkRecord.model_validate_json(raw.doc) if raw is not None else None
                version = (link.client_version if link else None) or "unknown"
                versions.setdefault(config.ring, Counter())[version] += 1
        releases = sorted(await self.orders.releases(), key=lambda r: r.seq)
        return [
            RingView(
                ring=ring,
                stores=tuple(ids),
                client_versions=dict(sorted(versions[ring].items())),
                releases=tuple(r.release_id for r in releases if r.reaches(ring)),
            )
            for ring, ids in sorted(stores.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ]

    # -- changing ----------------------------------------------------------------------------
    async def stage(self, body: ReleaseCreate) -> Release:
        if await self.storage.get(Kind.RELEASE, body.release_id, ROLLOUT_STORE) is not None:
            raise Conflict(f"release {body.release_id!r} exists: promote or roll it back")
        now = self.now()
        release = Release(
            release_id=body.release_id,
            seq=int(now.timestamp() * 1_000_000),
            patch=body.patch,
            rings=body.rings,
            state=ReleaseState.STAGED,
            created_at=now,
            updated_at=now,
        )
        await self._check(release)
        await self.storage.commit(
            ROLLOUT_STORE, Tx([put(Kind.RELEASE, release.release_id, release, 1)])
        )
        log.info("release %s staged to rings %s", release.release_id, list(release.rings))
        return await self._apply(release)

    async def promote(self, release_id: str, body: Promotion) -> Release:
        if not body.rings and not body.everywhere:
            raise InvalidRequest(
                "promote to rings or everywhere",
                [{"loc": ["rings"], "msg": "name at least one ring, or everywhere: true"}],
            )

        async def attempt() -> Release:
            raw = await self._raw(release_id)
            old = Release.model_validate_json(raw.doc)
            if not old.active:
                raise Conflict(f"release {release_id!r} was rolled back: stage a new one")
            rings = tuple(dict.fromkeys([*old.rings, *body.rings]))
            new = old.model_copy(
                update={
                    "rings": rings,
                    "everywhere": old.everywhere or body.everywhere,
                    "state": ReleaseState.PROMOTED,
                    "updated_at": self.now(),
                }
            )
            await self._check(new)
            await self.storage.commit(
                ROLLOUT_STORE, Tx([put(Kind.RELEASE, release_id, new, raw.version + 1)])
            )
            return new

        new = await retrying(attempt)
        where = "every store" if new.everywhere else f"rings {list(new.rings)}"
        log.info("release %s promoted to %s", release_id, where)
        return await self._apply(new)

    async def rollback(self, release_id: str) -> Release:
        async def attempt() -> Release:
            raw = await self._raw(release_id)
            old = Release.model_validate_json(raw.doc)
            new = old.model_copy(
                update={"state": ReleaseState.ROLLED_BACK, "updated_at": self.now()}
            )
            if old.active:
                await self.storage.commit(
                    ROLLOUT_STORE, Tx([put(Kind.RELEASE, release_id, new, raw.version + 1)])
                )
            return new

        new = await retrying(attempt)
        log.info("release %s rolled back", release_id)
        return await self._apply(new)

    # -- helpers -----------------------------------------------------------------------------
    async def _raw(self, release_id: str) -> Any:
        raw = await self.storage.get(Kind.RELEASE, release_id, ROLLOUT_STORE)
        if raw is None:
            raise NotFound(f"no release {release_id!r}")
        return raw

    async def _check(self, release: Release) -> None:
        """Refuse a release that would make any store it reaches invalid (422 naming the
        store and the field), before it is written anywhere."""
        others = [r for r in await self.orders.releases() if r.release_id != release.release_id]
        async for sid, base in self._bases():
            if not release.reaches(base.ring):
                continue
            try:
                compose(base, [*others, release])
            except ValidationError as exc:
                errors = [
                    {"loc": ["patch", *e["loc"]], "msg": f"store {sid}: {e['msg']}"}
                    for e in exc.errors()
                ]
                raise InvalidRequest(
                    f"release {release.release_id!r} makes store {sid!r}'s config invalid",
                    errors,
                ) from None

    async def _apply(self, release: Release) -> Release:
        """Recompose every store the release reaches (or reached): live, a page of stores
        between two turns of the loop."""
        releases = await self.orders.releases()
        changed = 0
        async for sid, base in self._bases():
            if not (release.everywhere or base.ring in release.rings):
                continue

            async def attempt(sid: str = sid, base: StoreConfig = base) -> int | None:
                return await self.orders.write_config(sid, base, releases, base_too=False)

            if await retrying(attempt) is not None:
                changed += 1
        log.info("release %s: %d store configs rewritten", release.release_id, changed)
        return await self._counted(release)

    async def _counted(self, release: Release) -> Release:
        counts = await self._store_counts()
        return release.model_copy(update={"stores": counts[release.release_id]})

    async def _store_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        async for page in self._configs():
            for config in page:
                counts.update(config.releases)
        return counts

    async def _configs(self) -> AsyncIterator[list[VersionedStoreConfig]]:
        ids = await self.storage.store_ids()
        for i in range(0, len(ids), PAGE):
            if i:
                await asyncio.sleep(0)
            raws = await self.storage.get_many(Kind.CONFIG, ids[i : i + PAGE])
            yield [VersionedStoreConfig.model_validate_json(r.doc) for r in raws if r is not None]

    async def _bases(self) -> AsyncIterator[tuple[str, StoreConfig]]:
        ids = await self.storage.store_ids()
        for i in range(0, len(ids), PAGE):
            if i:
                await asyncio.sleep(0)
            for sid in ids[i : i + PAGE]:
                base = await self.orders.base_config(sid)
                if base is not None:
                    yield sid, base
