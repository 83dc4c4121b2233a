"""Gray release by store ring (docs/rollout.md): releases, and how a store's config is
composed from the config HQ put and the releases that reach it. Pure.

A release is a JSON merge patch (RFC 7396) over store configs — a new chit layout, a
template list, a ``min_client_version`` — staged to one or more rings, promoted to more
(or to every store), or rolled back. A store's config is its base config (what
``PUT /v1/stores/{id}/config`` or ``passline stores apply`` wrote) with the patches of
the active releases that reach its ring applied in the order the releases were made.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from protocol.base import Frozen, Ident, Timestamp
from protocol.config import StoreConfig

#: Fields a release may not patch: ring membership is the store's own, not a release's.
UNPATCHABLE = frozenset({"ring"})


class ReleaseState(StrEnum):
    STAGED = "staged"  # on its rings only
    PROMOTED = "promoted"  # promoted to more rings, or to every store
    ROLLED_BACK = "rolled_back"  # on no store any more


class ReleaseCreate(Frozen):
    """``POST /v1/releases`` (hq scope)."""

    release_id: Ident
    patch: dict[str, Any] = Field(min_length=1)
    """A JSON merge patch over the store config (``{"chit": {"header": "NEW"}}``);
    ``null`` removes a field, lists are replaced whole."""
    rings: tuple[Ident, ...] = Field(min_length=1, max_length=100)
    """The rings it goes to first."""

    @field_validator("patch")
    @classmethod
    def _patchable(cls, patch: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(UNPATCHABLE & set(patch))
        if bad:
            raise ValueError(f"a release may not change {', '.join(bad)}")
        unknown = sorted(set(patch) - set(StoreConfig.model_fields))
        if unknown:
            raise ValueError(f"not a store config field: {', '.join(unknown)}")
        return patch


class Promotion(Frozen):
    """``POST /v1/releases/{id}/promote``: more rings, or every store."""

    rings: tuple[Ident, ...] = Field(default=(), max_length=100)
    everywhere: bool = False


class Release(Frozen):
    """A release as the broker keeps and shows it."""

    release_id: Ident
    seq: int
    """Releases apply in this order (when they were made)."""
    patch: dict[str, Any]
    rings: tuple[Ident, ...]
    everywhere: bool = False
    state: ReleaseState
    created_at: Timestamp
    updated_at: Timestamp
    stores: int = 0
    """Stores whose config it is in now."""

    @property
    def active(self) -> bool:
        return self.state is not ReleaseState.ROLLED_BACK

    def reaches(self, ring: str | None) -> bool:
        return self.active and (self.everywhere or (ring is not None and ring in self.rings))


class RingView(Frozen):
    """``GET /v1/rings``: a ring's stores and the store client versions they run."""

    ring: Ident | None
    """None: stores in no ring."""
    stores: tuple[Ident, ...]
    client_versions: dict[str, int]
    """Store client version → stores running it (``unknown``: never linked)."""
    releases: tuple[Ident, ...]
    """Active releases that reach this ring, oldest first."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def compose(base: StoreConfig, releases: Iterable[Release]) -> tuple[StoreConfig, list[str]]:
    """The store's config with every active release that reaches its ring applied, in
    release order, and those releases' ids (``ValidationError`` when a patch makes the
    config invalid)."""
    data: dict[str, Any] = base.model_dump(mode="json", exclude_none=True)
    applied: list[str] = []
    for release in sorted(releases, key=lambda r: r.seq):
        if release.reaches(base.ring):
            data = merge_patch(data, release.patch)
            applied.append(release.release_id)
    if not applied:
        return base, []
    return StoreConfig.model_validate(data), applied
