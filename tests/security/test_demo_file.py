"""``passline demo`` writes its tokens to ``demo.json`` private from the first byte (issue
14 point 2c). Before, the file was written with the umask's mode (0644: anyone on the
machine could read the HQ token) and made private only afterwards."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from broker.auth import verify_token
from passline.demo import Demo, DemoOptions


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022): files are made world-readable unless made otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make "write it, then chmod it" leave the file as it was created."""
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(os, "fchmod", lambda *a, **k: None)
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)


def write_info(data_dir: Path) -> tuple[Demo, Path]:
    demo = Demo(DemoOptions(data_dir=data_dir), out=io.StringIO())
    demo.broker = SimpleNamespace(http_port=8080, ws_port=8765)  # type: ignore[assignment]
    return demo, demo._write_run_info()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask", "no_chmod")
def test_demo_json_is_created_private(tmp_path: Path) -> None:
    demo, path = write_info(tmp_path)
    assert path == (tmp_path / "demo.json").resolve()
    assert mode(path) == 0o600
    info = json.loads(path.read_text(encoding="utf-8"))
    assert verify_token(demo.secret, info["tokens"]["hq"]).scope.value == "hq"
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]  # no temporary left


@pytest.mark.usefixtures("open_umask", "no_chmod")
def test_an_old_readable_demo_json_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    old = tmp_path / "demo.json"
    old.write_text("{}")  # as an older passline left it: 0644 under this umask
    assert mode(old) == 0o644
    _, path = write_info(tmp_path)
    assert mode(path) == 0o600 and json.loads(path.read_text())["tokens"]
