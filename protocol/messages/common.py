"""Pieces shared by the channel unions."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints

Ref = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class ErrorCode(StrEnum):
    """Application error codes carried by ``error`` messages."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    VERSION_CONFLICT = "version_conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    INTERNAL = "internal"
