"""The one exception tree of ``protocol``.

``ProtocolError`` means the *peer* sent something we cannot accept; it always carries the
WebSocket close code to answer with. ``TransitionError`` means a caller asked a state
machine for a move it does not allow (a bug or a stale action, never bad bytes).
"""

from __future__ import annotations

from protocol.close_codes import CloseCode


class PasslineProtocolError(Exception):
    """Root of every error raised by ``protocol``."""


class ProtocolError(PasslineProtocolError):
    """A frame or message from a peer was refused; ``code`` is the close code to use."""

    def __init__(self, code: CloseCode, reason: str) -> None:
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
