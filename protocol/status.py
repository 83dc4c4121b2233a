"""Printer status as decoded from ESC/POS real-time status (DESIGN.md §3)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import StringConstraints, model_validator

from protocol.base import Frozen, Timestamp


class Paper(StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


class StatusSource(StrEnum):
    REALTIME = "realtime"  # DLE EOT replies
    ASB = "asb"  # automatic status back blocks
    NONE = "none"  # the transport cannot read status: nothing is known, never "ok"


class PrinterState(StrEnum):
    READY = "ready"
    WARNING = "warning"
    ERROR = "error"
    OFFLINE = "offline"
    UNKNOWN = "unknown"  # reachable, but the transport reads no status (source "none")


_ERROR_FLAGS = (
    "cover_open",
    "cutter_error",
    "mechanical_error",
    "unrecoverable_error",
    "auto_recoverable_error",
)


def derive_state(fields: dict[str, Any]) -> PrinterState:
    """The one-word state HQ filters on, from the raw status fields."""
    if not fields.get("reachable", False):
        return PrinterState.OFFLINE
    if fields.get("source", StatusSource.NONE) == StatusSource.NONE:
        return PrinterState.UNKNOWN
    if str(fields.get("paper", Paper.OK)) == Paper.OUT or any(fields.get(f) for f in _ERROR_FLAGS):
        return PrinterState.ERROR
    if not fields.get("online", False):
        return PrinterState.ERROR
    if str(fields.get("paper", Paper.OK)) == Paper.NEAR_END:
        return PrinterState.WARNING
    return PrinterState.READY


def derive_reasons(fields: dict[str, Any]) -> tuple[str, ...]:
    """IPP ``printer-state-reasons`` keywords (RFC 8011 §5.4.12) for HQ tooling."""
    if not fields.get("reachable", False):
        return ("offline-report",)
    reasons: list[str] = []
    paper = str(fields.get("paper", Paper.OK))
    if paper == Paper.OUT:
        reasons.append("media-empty-error")
    elif paper == Paper.NEAR_END:
        reasons.append("media-low-warning")
    if fields.get("cover_open"):
        reasons.append("cover-open-error")
    if fields.get("cutter_error"):
        reasons.append("media-jam-error")
    if fields.get("mechanical_error") or fields.get("unrecoverable_error"):
        reasons.append("other-error")
    if fields.get("auto_recoverable_error"):
        reasons.append("other-warning")
    if fields.get("source", StatusSource.NONE) != StatusSource.NONE and not fields.get("online"):
        if not reasons:
            reasons.append("paused-report")
    return tuple(reasons) or ("none",)


class PrinterStatus(Frozen):
    """What a printer said about itself, and when that last changed.

    ``state`` and ``reasons`` are derived from the other fields; they may be omitted on
    input (they are filled in) and are refused when they contradict the fields.
    """

    reachable: bool
    """A connection could be made and the printer answered (or the transport wrote)."""
    online: bool = False
    paper: Paper = Paper.OK
    cover_open: bool = False
    cutter_error: bool = False
    mechanical_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False
    """E.g. print head overheated; clears by itself."""
    drawer_open: bool = False
    feed_button: bool = False
    source: StatusSource = StatusSource.NONE
    since: Timestamp
    """When this status (its state and error bits) was first seen."""
    state: PrinterState = PrinterState.OFFLINE
    reasons: tuple[str, ...] = ()
    detail: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    """Why, in words, when the store client knows more than the fields say: e.g.
    ``transport not allowed on this PC: file:///etc/x`` (DESIGN.md §8.3); null when there
    is nothing to add."""

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        state, reasons = derive_state(data), derive_reasons(data)
        given_state, given_reasons = data.get("state"), data.get("reasons")
        if given_state is not None and str(given_state) != state:
            raise ValueError(f"state must be {state.value!r} for these fields, got {given_state!r}")
        if given_reasons is not None and tuple(given_reasons) != reasons:
            raise ValueError(f"reasons must be {list(reasons)!r} for these fields")
        return {**data, "state": state, "reasons": reasons}

    def same_condition(self, other: PrinterStatus) -> bool:
        """True when nothing but ``since`` differs (used to report changes only)."""
        return self.model_dump(exclude={"since"}) == other.model_dump(exclude={"since"})
