"""The installed ``passline`` command: --help, --version, schema."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import jsonschema
import pytest

from protocol.version import PROTOCOL_VERSION, __version__

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str, exe: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [exe] if exe else [sys.executable, "-m", "passline"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_and_version() -> None:
    out = run("--help")
    assert out.returncode == 0 and "schema" in out.stdout
    out = run("--version")
    assert (
        out.returncode == 0
        and out.stdout.strip() == f"passline {__version__} (protocol {PROTOCOL_VERSION})"
    )


def test_schema_writes_valid_json_schemas(tmp_path: Path) -> None:
    out = run("schema", "--out", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "s").glob("*.schema.json"))
    names = {f.name.removesuffix(".schema.json") for f in files}
    assert {"ws-kds", "ws-hq", "order", "store-config", "submit-result", "problem"} <= names
    for f in files:
        jsonschema.Draft202012Validator.check_schema(json.loads(f.read_text()))
    kds = jsonschema.Draft202012Validator(
        json.loads((tmp_path / "s/ws-kds.schema.json").read_text())
    )
    assert kds.is_valid({"type": "bump", "ref": "r1", "ticket_id": "t1", "version": 3})
    assert not kds.is_valid({"type": "bump", "ref": "r1", "ticket_id": "t1"})


def test_schema_error_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run("schema", "--out", str(blocker / "sub"))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0
    assert "cannot write schemas" in out.stderr


def test_unknown_command_is_one_clear_error() -> None:
    out = run("frobnicate")
    assert out.returncode == 2 and "No such command 'frobnicate'" in out.stderr


def test_pip_install_into_fresh_venv(tmp_path: Path) -> None:
    """`pip install .` gives a working `passline` (deps borrowed from this venv: no network)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    # A plain path line: this venv's deps become importable, its .pth files (our editable
    # install) are not processed, so `passline` can only come from the new install.
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    exe = str(env_dir / "bin" / "passline")
    out = run("--version", exe=exe, cwd=tmp_path)
    assert out.returncode == 0 and __version__ in out.stdout
    where = subprocess.check_output(
        [py, "-c", "import protocol; print(protocol.__file__)"], cwd=tmp_path, text=True
    )
    assert str(env_dir) in where  # the installed copy, not the source tree
    assert run("schema", "--out", str(tmp_path / "s"), exe=exe, cwd=tmp_path).returncode == 0


def test_store_client_does_not_import_the_broker() -> None:
    """The cashier PC's daemon must not load FastAPI/uvicorn just because the CLI is shared."""
    code = (
        "import sys; from passline.cli import cli; import click; "
        "cli.get_command(click.Context(cli), 'store-client'); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'broker') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_store_client_daemon_loads_no_idle_weight() -> None:
    """DESIGN.md §7 (under 40 MB idle): the daemon loads neither uvloop nor python-escpos's
    printer classes and YAML database (Pillow, qrcode, PyYAML come with them), nor the
    web stack of the store edge unless ``--lan`` asks for it."""
    code = (
        "import sys; import passline.cmd_store_client, passline.runtime, store_client.daemon, "
        "store_client.status_page; heavy = ('uvloop', 'PIL', 'qrcode', 'barcode', 'yaml', "
        "'escpos.printer', 'escpos.capabilities', 'fastapi', 'broker', 'uvicorn', "
        "'starlette', 'store_client.edge'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_store_client_refuses_a_bad_clock_skew() -> None:
    """``PASSLINE_CLOCK_SKEW_S`` (a test aid) must be seconds; anything else is one line."""
    from click.testing import CliRunner

    from passline.cli import cli

    args = ["store-client", "--broker", "ws://127.0.0.1:1", "--store", "s", "--token", "t"]
    out = CliRunner().invoke(cli, args, env={"PASSLINE_CLOCK_SKEW_S": "2h"})
    assert out.exit_code == 2 and "PASSLINE_CLOCK_SKEW_S" in out.output and "'2h'" in out.output


@pytest.mark.parametrize("value", ["8088", "host:", ":8088", "host:99999", "host:http"])
def test_store_client_refuses_a_bad_lan_address(value: str) -> None:
    from click.testing import CliRunner

    from passline.cli import cli

    args = ["store-client", "--broker", "ws://127.0.0.1:1", "--store", "s", "--token", "t",
            "--lan", value]  # fmt: skip
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 2 and "--lan" in out.output and "HOST:PORT" in out.output


def test_store_client_refuses_a_short_lan_token() -> None:
    from click.testing import CliRunner

    from passline.cli import cli

    args = ["store-client", "--broker", "ws://127.0.0.1:1", "--store", "s", "--token", "t",
            "--lan", "127.0.0.1:0", "--lan-token", "short"]  # fmt: skip
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 2 and "--lan-token" in out.output and "32 characters" in out.output
