"""WebSocket close codes (DESIGN.md §5.3, after Centrifugo's reconnect/terminal split)."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    ABNORMAL = 1006  # never sent: what a client sees when the TCP connection just died
    UNDECODABLE = 1007  # bytes are not msgpack/JSON/UTF-8
    POLICY = 1008  # auth failure, unknown message type, invalid message
    TOO_BIG = 1009  # frame over the configured limit
    INTERNAL_ERROR = 1011
    SERVER_RESTART = 1012  # node draining: reconnect (to another node)
    TRY_AGAIN_LATER = 1013
    # 4000-4499: the client may reconnect and resume
    SLOW_CONSUMER = 4001
    HELLO_TIMEOUT = 4002
    RATE_LIMITED = 4003
    LINK_RATE = 4008  # one link sent messages faster than its limit (DESIGN.md §8.5)
    # 4500-4999: terminal, reconnecting cannot help
    TOKEN_REVOKED = 4501
    PROTOCOL_UNSUPPORTED = 4502
    TAKEN_OVER = 4503


_RETRYABLE_STANDARD = frozenset({1000, 1001, 1006, 1011, 1012, 1013})


def is_retryable(code: int) -> bool:
    """True when a client should reconnect (with backoff) after this close code."""
    return code in _RETRYABLE_STANDARD or 4000 <= code <= 4499


def is_terminal(code: int) -> bool:
    """True when reconnecting with the same settings cannot succeed."""
    return not is_retryable(code)
