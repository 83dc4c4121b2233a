"""Shared pydantic base and constrained scalar types."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints


class Frozen(BaseModel):
    """Immutable model that refuses unknown fields (DESIGN.md §5.3: unknown fields are refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


#: Identifiers: stores, printers, stations, lines, skus. Safe in URLs, keys and file names.
Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
#: Human text printed on chits and shown on screens.
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: Longer free text (notes).
Note = Annotated[str, StringConstraints(max_length=500)]
#: ISO 8601 timestamp with an offset; naive times are refused.
Timestamp = AwareDatetime
#: A stream offset (DESIGN.md §4): monotonic per (store, epoch), starts at 0 = nothing yet.
Offset = Annotated[int, Field(ge=0, le=2**63 - 1)]
#: A stream epoch: random id, new whenever a stream had to be recreated.
Epoch = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: Optimistic version of a ticket, order or config.
Version = Annotated[int, Field(ge=0, le=2**63 - 1)]


class StreamPosition(Frozen):
    """Where a reader is in a store's stream."""

    epoch: Epoch
    """Epoch of the stream the offset belongs to."""
    offset: Offset
    """Last offset the reader has durably taken (cumulative)."""
