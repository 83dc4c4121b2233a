"""The one exception tree of ``store_client``."""


class StoreClientError(Exception):
    """Root of every error raised by ``store_client``."""


class SpoolError(StoreClientError):
    """The spool database cannot be opened or written."""
