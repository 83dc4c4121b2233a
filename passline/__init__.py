"""The ``passline`` command line: wiring only, no business logic (DESIGN.md §2)."""

from protocol.version import __version__

__all__ = ["__version__"]
