"""One discriminated union of messages per WebSocket channel (DESIGN.md §5.3)."""
