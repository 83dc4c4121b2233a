"""The kitchen's refusals. Callers map them in one place each: the broker's order service
to 422 problem+json (``InvalidRequest``), its KDS service to an ``error`` reply."""

from __future__ import annotations

from typing import Any

from protocol.messages.common import ErrorCode


class KitchenError(Exception):
    """Root of every refusal raised by ``kitchen``."""


class Refused(KitchenError):
    """An order, amendment or reprint that cannot be planned.

    ``errors`` are pydantic-style ``{"loc": [...], "msg": ...}`` items naming each field at
    fault; ``detail`` is the first one's message.
    """

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @classmethod
    def from_errors(cls, errors: list[dict[str, Any]]) -> Refused:
        return cls(str(errors[0]["msg"]), errors)


class Unroutable(Refused):
    """A line no station takes (no station, category route or default station)."""


class BadAmendment(Refused):
    """An amendment naming unknown or existing lines, or voiding every line."""


class NothingToReprint(Refused):
    """A reprint whose templates and printer match no chit of the order."""


class ActionRefused(KitchenError):
    """A KDS action the kitchen's rules refuse, with the wire code the screen gets."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StaleVersion(KitchenError):
    """The screen acted on a version that is no longer current."""
