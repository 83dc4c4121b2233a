"""Customer pickup board messages, ``/v1/ws/board`` (JSON; docs/kds.md#pickup-board).

The board is read-only: it sends its ``hello`` and nothing else. It is told order numbers
and their pickup state only, never items, notes, tables' guests or (unless the store's
``board.names`` says so) customer names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, TypeAdapter

from protocol.base import Epoch, Frozen, Ident, Offset, StreamPosition, Text, Timestamp
from protocol.messages.kds import Token

#: A pickup code, ``T`` + a table, or the tail of an order id.
Number = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PickupState(StrEnum):
    PREPARING = "preparing"  # at the stations, or done there and waiting for expo
    READY = "ready"  # expo bumped it (no expo: every station did): come and get it


class BoardHello(Frozen):
    """board → broker, first and only message."""

    type: Literal["hello"] = "hello"
    token: Token
    store: Ident
    resume: StreamPosition | None = None
    """The last position the board applied: the broker looks back from there for
    orders that became ready or left meanwhile (else over its recent stream)."""


class BoardOrder(Frozen):
    """One number on the board."""

    order_id: Ident
    """The key the board updates and removes by."""
    number: Number
    """What the guest looks for: pickup code, else ``T`` + table, else the tail of the
    channel's order id."""
    state: PickupState
    since: Timestamp
    """When it entered ``state`` (fired to the stations; served by expo or bumped by
    the last station)."""
    name: Text | None = None
    """The customer's name, only where the store's ``board.names`` is on."""


class BoardSnapshot(Frozen):
    """broker → board, after the hello: everything on the board now."""

    type: Literal["snapshot"] = "snapshot"
    epoch: Epoch
    offset: Offset
    now: Timestamp
    """The broker's clock: the board ages ready orders against it, not its own."""
    title: Text
    """The store's name."""
    ready_s: int = Field(ge=1)
    """A ready order leaves the board this long after ``since``."""
    preparing: tuple[BoardOrder, ...] = ()
    ready: tuple[BoardOrder, ...] = ()
    """Orders ready within ``ready_s`` that the broker found in the stream it looked at
    (from ``resume``, else its recent history): merge them with what the board shows."""
    gone: tuple[Ident, ...] = ()
    """Orders cancelled (or no longer shown) in that part of the stream."""


class BoardUpdate(Frozen):
    """An order appears or changes state (a chime when it turns ``ready``)."""

    type: Literal["board_order"] = "board_order"
    offset: Offset
    order: BoardOrder


class BoardRemoved(Frozen):
    """An order leaves the board before its time (cancelled)."""

    type: Literal["board_removed"] = "board_removed"
    offset: Offset
    order_id: Ident


BoardScreenMessage = Annotated[BoardHello, Field(discriminator="type")]
BoardBrokerMessage = Annotated[
    BoardSnapshot | BoardUpdate | BoardRemoved, Field(discriminator="type")
]
BoardMessage = Annotated[
    BoardHello | BoardSnapshot | BoardUpdate | BoardRemoved, Field(discriminator="type")
]

BOARD_SCREEN: TypeAdapter[BoardScreenMessage] = TypeAdapter(BoardScreenMessage)
BOARD_BROKER: TypeAdapter[BoardBrokerMessage] = TypeAdapter(BoardBrokerMessage)
BOARD: TypeAdapter[BoardMessage] = TypeAdapter(BoardMessage)
