"""Standard-library modules the store client imports but an idle daemon never uses.

Two imports cost a 2 GB cashier PC about 2.5 MB of RSS for nothing (``bench/store_client.py
--imports``):

- ``importlib.metadata`` (zipfile, csv, email, importlib.resources): websockets imports it
  for a version string it does not read in a release, and pydantic's plugin loader binds
  ``entry_points`` from it on the first model. The daemon turns pydantic plugins off, so
  ``entry_points`` is never called.
- ``urllib.request`` (http.client, email, tempfile): websockets imports it to look up
  proxies, which :func:`proxy_setting` only does when the environment names one.

:func:`defer` puts a stand-in module in ``sys.modules`` for each; the real module is
imported the first time anything reads one of its attributes, and from then on
``sys.modules`` holds the real one. A stand-in for ``importlib.metadata`` hands out its
public functions as thin wrappers, so ``from importlib.metadata import entry_points`` at
import time does not load it. Call :func:`defer` before importing websockets or pydantic;
modules already imported stay as they are.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Callable
from typing import Any, Literal

#: Functions of ``importlib.metadata`` that may be bound at import time and called later.
_METADATA_FUNCTIONS = frozenset(
    {
        "distribution", "distributions", "entry_points", "files", "metadata",
        "packages_distributions", "requires", "version",
    }
)  # fmt: skip


class Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __init__(self, name: str, functions: frozenset[str] = frozenset()) -> None:
        super().__init__(name)
        self._deferred_functions = functions
        self._deferred_real: types.ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # the import system probes __path__, __file__ …
            raise AttributeError(attr)
        if attr in self._deferred_functions and self._deferred_real is None:
            return self._wrapper(attr)
        return getattr(self.load(), attr)

    def _wrapper(self, attr: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(self.load(), attr)(*args, **kwargs)

        call.__name__ = call.__qualname__ = attr
        return call

    def load(self) -> types.ModuleType:
        """The real module, imported now if it was not yet."""
        if self._deferred_real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            self._deferred_real = importlib.import_module(self.__name__)
        return self._deferred_real


def defer() -> list[str]:
    """Install the stand-ins; returns the names deferred (those not imported already)."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    deferred = []
    for name, functions in (
        ("importlib.metadata", _METADATA_FUNCTIONS),
        ("urllib.request", frozenset()),
    ):
        if name in sys.modules:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = importlib.import_module(parent_name)
        stand_in = Deferred(name, functions)
        sys.modules[name] = stand_in
        setattr(parent, child, stand_in)
        deferred.append(name)
    return deferred


def proxy_setting() -> Literal[True] | None:
    """``proxy=`` for websockets' ``connect``: look proxies up only where there may be one.

    On Linux, urllib finds proxies in ``*_proxy`` environment variables only; with none set
    the lookup would answer "direct" after importing ``urllib.request``. Windows and macOS
    also read system settings, so there the lookup always runs.
    """
    if sys.platform != "linux":
        return True
    return True if any(v and k.lower().endswith("_proxy") for k, v in os.environ.items()) else None
