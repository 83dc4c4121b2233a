"""What the broker insists on at start, and TLS end to end (issue 14 point 2d): a short
signing secret is refused with one clear line; a broker with ``--tls-cert/--tls-key`` is
reached by a store client that pins its CA with ``--ca``, and refused by one that trusts
only the system's CAs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.app import Broker, start_broker
from tests.broker.conftest import test_settings as broker_settings
from tests.broker.helpers import SECRET, WAIT, auth, store_config, token
from tests.e2e.stack import stable_port

ROOT = Path(__file__).resolve().parents[2]
SHORT = "only-31-bytes-long-secret-12345"  # MIN_SECRET_BYTES is 32
POLL_S = 0.2


def env_without_passline(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSLINE_")}
    return {**env, **extra}


def passline(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "passline", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env_without_passline(**env),
        timeout=60,
    )


@pytest.mark.parametrize("where", ["environment", "config file"])
def test_a_short_secret_is_refused_with_one_line(where: str, tmp_path: Path) -> None:
    args = ["broker", "--store", "memory://", "--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]
    env = {}
    if where == "environment":
        env["PASSLINE_SECRET"] = SHORT
    else:
        conf = tmp_path / "broker.toml"
        conf.write_text(f'[broker]\nsecret = "{SHORT}"\n', encoding="utf-8")
        args += ["--config", str(conf)]
    out = passline(*args, **env)
    assert out.returncode == 1
    assert out.stderr == "Error: the signing secret must be at least 32 bytes\n"
    assert SHORT not in out.stdout + out.stderr and "listening" not in out.stdout


# -- TLS ---------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A private CA and a certificate it signed for 127.0.0.1 (the ``cryptography`` package
    is not a dependency: the openssl command makes them)."""
    assert shutil.which("openssl"), "the openssl command is needed (scripts/test installs it)"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=passline test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp_path)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
            cwd=tmp_path)  # fmt: skip
    (tmp_path / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
            cwd=tmp_path)  # fmt: skip
    yield {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "server.pem",
        "key": tmp_path / "server.key",
    }


@contextlib.asynccontextmanager
async def tls_broker(files: dict[str, Path]) -> AsyncIterator[tuple[Broker, httpx.AsyncClient]]:
    settings = broker_settings("memory://", tls_cert=str(files["cert"]), tls_key=str(files["key"]))
    async with start_broker(settings) as broker:
        base = f"https://127.0.0.1:{broker.http_port}"
        async with httpx.AsyncClient(
            base_url=base, verify=ssl.create_default_context(cafile=files["ca"]), timeout=WAIT
        ) as http:
            r = await http.put(
                "/v1/stores/s-001/config", json=store_config(), headers=auth(token("hq"))
            )
            assert r.status_code == 200, r.text
            yield broker, http


@contextlib.asynccontextmanager
async def store_client_process(
    broker: Broker, spool: Path, status_port: int, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``passline store-client`` for s-001 against the broker's wss:// port."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "passline", "store-client",
        "--broker", f"wss://127.0.0.1:{broker.ws_port}", "--store", "s-001",
        "--token", token("store", store="s-001"), "--spool", str(spool),
        "--status-port", str(status_port), *extra,
        cwd=ROOT, env=env_without_passline(PASSLINE_SECRET=SECRET),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), WAIT)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll another process until ``check`` holds (nothing here to wait on but its answers)."""
    for _ in range(int(3 * WAIT / POLL_S)):  # the "never hangs" guard: a client starts in ~1 s
        if found := await check():
            return found
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"not within {3 * WAIT:g}s: {what}")


async def status_page(port: int) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(timeout=WAIT) as http:
            r = await http.get(f"http://127.0.0.1:{port}/status")
    except httpx.TransportError:
        return None  # not up yet
    page: dict[str, Any] = r.json()
    return page


async def test_tls_store_client_with_the_pinned_ca_connects(
    tls_files: dict[str, Path], tmp_path: Path
) -> None:
    async with tls_broker(tls_files) as (broker, http):

        async def online() -> bool:
            r = await http.get("/v1/stores/s-001", headers=auth(token("hq")))
            return bool(r.json()["link"]["online"])

        port = stable_port()
        async with store_client_process(broker, tmp_path / "a", port, "--ca", str(tls_files["ca"])):
            await eventually(online, "the store client with --ca came online")
            page = await eventually(lambda: status_page(port), "status page")
            assert page["link"]["state"] == "online"


async def test_tls_store_client_without_the_ca_refuses_the_broker(
    tls_files: dict[str, Path], tmp_path: Path
) -> None:
    async with tls_broker(tls_files) as (broker, http):
        port = stable_port()
        async with store_client_process(broker, tmp_path / "b", port):

            async def refused() -> dict[str, Any] | None:
                page = await status_page(port)
                error = (page or {}).get("link", {}).get("last_error") or ""
                return page if "CERTIFICATE_VERIFY_FAILED" in error else None

            page = await eventually(refused, "the store client refused the broker's certificate")
            assert page["link"]["state"] != "online"
        r = await http.get("/v1/stores/s-001", headers=auth(token("hq")))
        assert r.json()["link"]["online"] is False
