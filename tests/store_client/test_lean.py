"""The store client's deferred standard-library imports (store_client/lean.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from store_client import lean

ROOT = Path(__file__).resolve().parents[2]

#: What ``passline store-client`` imports, in its order, after ``lean.defer()``.
_PROBE = """
import json, sys
from store_client import lean
deferred = lean.defer()
import passline.cli, passline.cmd_store_client, passline.runtime
import store_client.daemon, store_client.status_page, store_client.worker
from protocol.jobs import Job  # models built: pydantic's plugin loader has run
loaded = [m for m in ("zipfile", "csv", "email.message", "http.client", "tempfile")
          if m in sys.modules]
stand_ins = {n: type(sys.modules[n]).__name__ for n in deferred}
import importlib.metadata, urllib.request
version = importlib.metadata.version("websockets")
proxies = urllib.request.getproxies_environment()
after = {n: type(sys.modules[n]).__name__ for n in deferred}
print(json.dumps({"deferred": deferred, "loaded": loaded, "stand_ins": stand_ins,
                  "version": version, "proxies": proxies, "after": after}))
"""


def _probe() -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_daemon_imports_without_metadata_or_urllib_request_machinery() -> None:
    seen = _probe()
    assert seen["deferred"] == ["importlib.metadata", "urllib.request"]
    assert seen["loaded"] == []  # zipfile, csv, email, http.client, tempfile: none
    assert seen["stand_ins"] == {"importlib.metadata": "Deferred", "urllib.request": "Deferred"}


def test_a_deferred_module_works_on_first_use_and_is_then_the_real_one() -> None:
    seen = _probe()
    import websockets

    assert seen["version"] == websockets.__version__
    assert seen["proxies"] == {}
    assert seen["after"] == {"importlib.metadata": "module", "urllib.request": "module"}


def test_a_function_bound_before_loading_calls_the_real_one() -> None:
    stand_in = lean.Deferred("json", frozenset({"dumps"}))
    dumps = stand_in.dumps  # bound now, as ``from importlib.metadata import entry_points``
    assert stand_in._deferred_real is None
    assert dumps({"a": 1}) == '{"a": 1}'
    assert stand_in._deferred_real is json
    assert stand_in.loads("[1]") == [1]
    with pytest.raises(AttributeError):
        stand_in.__path__  # noqa: B018 - the import system's probe must not load it


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {}, None),
        ("linux", {"HTTPS_PROXY": ""}, None),
        ("linux", {"https_proxy": "http://proxy:3128"}, True),
        ("linux", {"NO_PROXY": "10.0.0.0/8"}, True),
        ("win32", {}, True),
        ("darwin", {}, True),
    ],
)
def test_proxies_are_looked_up_wherever_there_may_be_one(
    monkeypatch: pytest.MonkeyPatch, platform: str, env: dict[str, str], expected: bool | None
) -> None:
    for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert lean.proxy_setting() is expected
