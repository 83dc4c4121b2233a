"""Static browser apps (station screen, expo, HQ dashboard) served by the broker."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
