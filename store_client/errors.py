"""The one exception tree of ``store_client``."""


class StoreClientError(Exception):
    """Root of every error raised by ``store_client``."""


class SpoolError(StoreClientError):
    """The spool database cannot be opened or written."""


class LinkRefused(StoreClientError):
    """The broker refused this client for good (terminal close code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"broker closed the link with {code}: {reason or 'no reason given'}")
        self.code = code
        self.reason = reason
