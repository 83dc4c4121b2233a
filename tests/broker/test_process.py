"""``passline broker`` as a real process: kill -9 loses nothing acknowledged; SIGTERM drains."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.broker.helpers import (
    SECRET,
    WAIT,
    Endpoints,
    open_store,
    order,
    recv_msgpack,
    store_config,
    token,
)

pytestmark = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening http=([\d.]+):(\d+) ws=([\d.]+):(\d+)")
BURST = 1000
KILL_AFTER = 300  # acknowledged submits before the kill -9


@asynccontextmanager
async def broker_process(url: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, Endpoints]]:
    env = {**os.environ, "PASSLINE_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "passline",
        "broker",
        "--http",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
        "--store",
        url,
        "--log-level",
        "warning",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        m = LISTENING.search(line)
        assert m, (
            f"unexpected first line {line!r}; stderr: {(await proc.stderr.read()).decode() if proc.stderr else ''}"
        )
        yield proc, Endpoints(f"http://127.0.0.1:{m.group(2)}", f"ws://127.0.0.1:{m.group(4)}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_kill_9_during_a_burst_loses_nothing_acknowledged(storage: str) -> None:
    acked: dict[str, dict[str, Any]] = {}
    async with broker_process(storage) as (proc, ep):
        async with ep.client(token("hq")) as http:
            assert (
                await http.put("/v1/stores/s-001/config", json=store_config())
            ).status_code == 200
        _, first_welcome = await _welcome(ep)
        killed = asyncio.Event()

        async def worker(ids: list[int]) -> None:
            async with httpx.AsyncClient(
                base_url=ep.http,
                headers={"Authorization": f"Bearer {token('ingest')}"},
                timeout=WAIT,
            ) as http:
                for i in ids:
                    if killed.is_set():
                        return
                    try:
                        r = await http.post("/v1/orders", json=order(external_id=f"burst-{i}"))
                    except httpx.HTTPError:
                        return
                    if r.status_code == 202:
                        acked[f"burst-{i}"] = r.json()
                    if len(acked) >= KILL_AFTER and not killed.is_set():
                        killed.set()
                        proc.send_signal(signal.SIGKILL)

        await asyncio.gather(*(worker(list(range(w, BURST, 20))) for w in range(20)))
        await proc.wait()
    assert len(acked) >= KILL_AFTER

    async with broker_process(storage) as (proc, ep):
        async with ep.client(token("ingest")) as http:
            for ext, body in acked.items():
                r = await http.get(f"/v1/orders/{body['order_id']}")
                assert r.status_code == 200, ext
                again = await http.post("/v1/orders", json=order(external_id=ext))
                assert again.status_code == 200 and again.json()["duplicate"] is True
        # the store client gets every acknowledged job exactly once, from its old offset
        ws, welcome = await open_store(
            ep, resume={"epoch": first_welcome["epoch"], "offset": first_welcome["offset"]}
        )
        assert welcome["recovered"] is True
        seen: list[str] = []
        while len(seen) < 3 * BURST:
            try:
                msg = await recv_msgpack(ws, within=1.0)
            except TimeoutError:
                break
            seen.append(msg["job"]["job_id"])
        assert len(seen) == len(set(seen)), "a job was delivered twice"
        wanted = {j["job_id"] for body in acked.values() for j in body["jobs"]}
        assert wanted <= set(seen)
        await ws.close()
        async with ep.client() as http:  # the process tuned its collector and times it
            text = (await http.get("/metrics")).text
        assert 'passline_gc_pause_seconds_count{generation="0"}' in text


async def _welcome(ep: Endpoints) -> tuple[Any, dict[str, Any]]:
    ws, welcome = await open_store(ep)
    await ws.close()
    return None, welcome


async def test_sigterm_drains_and_exits_0(storage: str) -> None:
    async with broker_process(storage) as (proc, ep):
        async with ep.client(token("hq")) as http:
            assert (
                await http.put("/v1/stores/s-001/config", json=store_config())
            ).status_code == 200
        ws, _ = await open_store(ep)
        async with ep.client(token("ingest")) as http:
            sub = (await http.post("/v1/orders", json=order())).json()
        assert (await recv_msgpack(ws))["type"] == "job"
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_msgpack(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    async with broker_process(storage) as (proc, ep):
        async with ep.client(token("hq")) as http:
            r = await http.get(f"/v1/orders/{sub['order_id']}")
            assert r.status_code == 200
            assert (await http.get("/v1/stores/s-001")).json()["link"]["online"] is False
