"""passline's wire protocol: models, messages, codecs, close codes, state machines.

Pure: no I/O, and nothing else of passline is imported here (DESIGN.md §2).
"""

from protocol.base import Frozen, StreamPosition
from protocol.close_codes import CloseCode, is_retryable, is_terminal
from protocol.codec import MAX_FRAME_BYTES, decode_json, decode_msgpack, encode_json, encode_msgpack
from protocol.config import PrinterConfig, StationConfig, StoreConfig, VersionedStoreConfig
from protocol.errors import PasslineProtocolError, ProtocolError, TransitionError
from protocol.jobs import (
    JOB_TRANSITIONS,
    TERMINAL_JOB_STATES,
    DocLine,
    Job,
    JobState,
    TicketDoc,
    job_id,
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
from protocol.status import Paper, PrinterState, PrinterStatus, StatusSource
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
from protocol.version import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS, __version__

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
    "ticket_state",
]
