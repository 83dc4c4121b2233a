"""passline's wire protocol: models, messages, codecs, close codes, state machines.

Pure: no I/O, and nothing else of passline is imported here (DESIGN.md §2).

The names below are loaded from their modules on first use (PEP 562), so importing one
light module (``protocol.version``, ``protocol.close_codes``) does not build every model:
the CLI and the store client start without paying for models they do not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol.base import (
        Frozen,
        StreamPosition,
    )
    from protocol.close_codes import (
        CloseCode,
        is_retryable,
        is_terminal,
    )
    from protocol.codec import (
        MAX_FRAME_BYTES,
        decode_json,
        decode_msgpack,
        encode_json,
        encode_msgpack,
    )
    from protocol.config import (
        PrinterConfig,
        StationConfig,
        StoreConfig,
        VersionedStoreConfig,
    )
    from protocol.errors import (
        PasslineProtocolError,
        ProtocolError,
        TransitionError,
    )
    from protocol.ids import job_id, order_id_for, ticket_id_for
    from protocol.jobs import (
        JOB_TRANSITIONS,
        TERMINAL_JOB_STATES,
        DocLine,
        Job,
        JobState,
        TicketDoc,
        job_transition,
    )
    from protocol.orders import (
        Amendment,
        CancelRequest,
        Item,
        LineChange,
        Order,
        Priority,
        ReprintRequest,
        Service,
        Template,
    )
    from protocol.status import (
        Paper,
        PrinterState,
        PrinterStatus,
        StatusSource,
    )
    from protocol.tickets import (
        LINE_TRANSITIONS,
        ExpoOrder,
        LineAction,
        LineState,
        Ticket,
        TicketLine,
        TicketState,
        line_transition,
        ticket_state,
    )
    from protocol.version import (
        PROTOCOL_VERSION,
        SUPPORTED_PROTOCOLS,
        __version__,
    )

#: Exported name → the module that defines it.
_EXPORTS = {
    "Frozen": "protocol.base",
    "StreamPosition": "protocol.base",
    "CloseCode": "protocol.close_codes",
    "is_retryable": "protocol.close_codes",
    "is_terminal": "protocol.close_codes",
    "MAX_FRAME_BYTES": "protocol.codec",
    "decode_json": "protocol.codec",
    "decode_msgpack": "protocol.codec",
    "encode_json": "protocol.codec",
    "encode_msgpack": "protocol.codec",
    "PrinterConfig": "protocol.config",
    "StationConfig": "protocol.config",
    "StoreConfig": "protocol.config",
    "VersionedStoreConfig": "protocol.config",
    "PasslineProtocolError": "protocol.errors",
    "ProtocolError": "protocol.errors",
    "TransitionError": "protocol.errors",
    "JOB_TRANSITIONS": "protocol.jobs",
    "TERMINAL_JOB_STATES": "protocol.jobs",
    "DocLine": "protocol.jobs",
    "Job": "protocol.jobs",
    "JobState": "protocol.jobs",
    "TicketDoc": "protocol.jobs",
    "job_id": "protocol.ids",
    "order_id_for": "protocol.ids",
    "ticket_id_for": "protocol.ids",
    "job_transition": "protocol.jobs",
    "Amendment": "protocol.orders",
    "CancelRequest": "protocol.orders",
    "Item": "protocol.orders",
    "LineChange": "protocol.orders",
    "Order": "protocol.orders",
    "Priority": "protocol.orders",
    "ReprintRequest": "protocol.orders",
    "Service": "protocol.orders",
    "Template": "protocol.orders",
    "Paper": "protocol.status",
    "PrinterState": "protocol.status",
    "PrinterStatus": "protocol.status",
    "StatusSource": "protocol.status",
    "LINE_TRANSITIONS": "protocol.tickets",
    "ExpoOrder": "protocol.tickets",
    "LineAction": "protocol.tickets",
    "LineState": "protocol.tickets",
    "Ticket": "protocol.tickets",
    "TicketLine": "protocol.tickets",
    "TicketState": "protocol.tickets",
    "line_transition": "protocol.tickets",
    "ticket_state": "protocol.tickets",
    "PROTOCOL_VERSION": "protocol.version",
    "SUPPORTED_PROTOCOLS": "protocol.version",
    "__version__": "protocol.version",
}

__all__ = [
    "JOB_TRANSITIONS",
    "LINE_TRANSITIONS",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOLS",
    "TERMINAL_JOB_STATES",
    "Amendment",
    "CancelRequest",
    "CloseCode",
    "DocLine",
    "ExpoOrder",
    "Frozen",
    "Item",
    "Job",
    "JobState",
    "LineAction",
    "LineChange",
    "LineState",
    "Order",
    "Paper",
    "PasslineProtocolError",
    "PrinterConfig",
    "PrinterState",
    "PrinterStatus",
    "Priority",
    "ProtocolError",
    "ReprintRequest",
    "Service",
    "StationConfig",
    "StatusSource",
    "StoreConfig",
    "StreamPosition",
    "Template",
    "Ticket",
    "TicketDoc",
    "TicketLine",
    "TicketState",
    "TransitionError",
    "VersionedStoreConfig",
    "__version__",
    "decode_json",
    "decode_msgpack",
    "encode_json",
    "encode_msgpack",
    "is_retryable",
    "is_terminal",
    "job_id",
    "job_transition",
    "line_transition",
    "order_id_for",
    "ticket_id_for",
    "ticket_state",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'protocol' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
