"""The one exception tree of ``protocol``.

``ProtocolError`` means the *peer* sent something we cannot accept; it always carries the
WebSocket close code to answer with, and a reason short enough for a close frame.
``TransitionError`` means a caller asked a state machine for a move it does not allow (a
bug or a stale action, never bad bytes).
"""

from __future__ import annotations

from protocol.close_codes import CloseCode

#: A close frame's reason must stay under 123 bytes (RFC 6455 §5.5.1).
MAX_REASON_BYTES = 120


def truncate_reason(text: str, limit: int = MAX_REASON_BYTES) -> str:
    """Cut to ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


class PasslineProtocolError(Exception):
    """Root of every error raised by ``protocol``."""


class ProtocolError(PasslineProtocolError):
    """A frame or message from a peer was refused; ``code`` is the close code to use."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        reason = truncate_reason(reason)  # a parser's message can quote any length of input
        super().__init__(f"{int(code)} {reason}")
        self.code = code
        self.reason = reason


class TransitionError(PasslineProtocolError):
    """A state machine refused a move: ``expected X, got Y`` style message."""

    def __init__(self, kind: str, current: str, target: str, allowed: frozenset[str]) -> None:
        choices = ", ".join(sorted(allowed)) or "nothing (terminal state)"
        super().__init__(f"{kind} cannot go from {current!r} to {target!r}; allowed: {choices}")
        self.kind = kind
        self.current = current
        self.target = target
        self.allowed = allowed
