"""Settings of the store edge (``--lan``), apart from ``edge.py`` so the daemon can name
them without importing the web stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeSettings:
    host: str
    port: int
    """0: any free port (tests); the bound one is ``StoreClient.lan_port``."""
