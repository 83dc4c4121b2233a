"""Settings of the store edge (``--lan``), apart from ``edge.py`` so the daemon can name
them without importing the web stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeSettings:
    host: str
    port: int
    """0: any free port (tests); the bound one is ``StoreClient.lan_port``."""
    token: str | None = None
    """``--lan-token``: the one bearer token LAN devices must send. Unset, the edge takes
    the store's own token, which also opens the store link (and could take it over): set
    one so the POS never holds the store token."""
