"""Store edge figures (issue #15; results in docs/benchmarks.md).

A real ``passline broker`` (SQLite) and ``passline store-client --lan`` run as subprocesses;
three emulated printers, a TCP proxy between the store client and the broker (the uplink,
``tests/faults/proxy.py``) and the load generator run in this process.

1. Idle with the edge on: RSS and CPU of the store client over ``--idle-seconds``, with
   ``--screens`` kitchen screens (websockets) connected through the edge (relayed to the
   broker), as the issue's budget asks: <= 60 MB, <= 2 % CPU with three screens.
2. Latency, uplink up: orders at ``--rate`` per second, the same number to the LAN edge and
   to the broker, interleaved; for each kitchen chit, submit call → chit cut, p50/p99.
3. Outage: the uplink is black-holed for ``--cut-seconds``; ``--outage-orders`` orders are
   posted to the edge, spread over the cut (and a few to the broker, as a delivery
   platform would); every chit must print once, offline. Then the uplink returns: the time
   until the broker has every order with every job ``printed``, and a check that no chit
   printed twice.

    .venv/bin/python bench/store_edge.py --idle-seconds 120 --rate 10 --seconds 30 \\
        --cut-seconds 300 --outage-orders 200
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from broker.auth import issue_token  # noqa: E402
from protocol.ids import order_id_for  # noqa: E402
from tests.faults.proxy import LinkProxy  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_store_client", ROOT / "bench/store_client.py")
assert _spec is not None and _spec.loader is not None
sc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sc)

STORE, SECRET = sc.STORE, sc.SECRET
STORE_TOKEN = issue_token(SECRET, "store", store=STORE)


async def start_edge_client(tmp: Path, ws_port: int, lan_port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "PASSLINE_TOKEN": STORE_TOKEN}
    cmd = [sys.executable, "-m", "passline", "store-client", "--broker", f"ws://127.0.0.1:{ws_port}",
           "--store", STORE, "--spool", str(tmp / "spool"), "--status-port", str(sc.free_port()),
           "--lan", f"127.0.0.1:{lan_port}", "--log-level", "warning"]  # fmt: skip
    return await asyncio.create_subprocess_exec(*cmd, cwd=tmp, env=env)


async def open_screens(lan_port: int, count: int) -> list[Any]:
    """``count`` kitchen screens on the edge's websocket, each past its snapshot."""
    from websockets.asyncio.client import connect

    screens = []
    for n in range(count):
        station = ("grill", "bar")[n % 2]
        ws = await connect(
            f"ws://127.0.0.1:{lan_port}/v1/ws/kds",
            subprotocols=["passline.v1.json"],  # type: ignore[list-item]
        )
        tok = issue_token(SECRET, "kds", store=STORE)
        await ws.send(
            json.dumps({"type": "hello", "token": tok, "store": STORE, "station": station})
        )
        first = json.loads(await ws.recv())
        assert first["type"] == "snapshot", first
        screens.append(ws)
    return screens


async def wait_edge(lan: httpx.AsyncClient, link: str = "online", within: float = 60) -> None:
    async with asyncio.timeout(within):
        while True:
            try:
                r = await lan.get("/healthz")
                if r.status_code == 200 and r.json()["link"] == link:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def steady(
    lan: httpx.AsyncClient, cloud: httpx.AsyncClient, kitchen: Any, rate: float, seconds: float
) -> dict[str, Any]:
    """Orders alternately to the edge and to the broker; submit → kitchen chit cut."""
    sent: dict[str, tuple[str, float]] = {}
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
        via = "lan" if n % 2 == 0 else "broker"
        key = f"B{n}"
        sent[key] = (via, time.monotonic())
        r = await (lan if via == "lan" else cloud).post("/v1/orders", json=sc.order(n))
        r.raise_for_status()
        n += 1
    async with asyncio.timeout(60):
        while len([k for k in sent if k in kitchen.cut_at]) < len(sent):
            await asyncio.sleep(0.1)
    out: dict[str, Any] = {"rate": rate}
    for via in ("lan", "broker"):
        lat = [1000 * (kitchen.cut_at[k] - t) for k, (v, t) in sent.items() if v == via]
        out[via] = sc.summary(lat, orders=len(lat))
    return out


async def outage(
    lan: httpx.AsyncClient,
    cloud: httpx.AsyncClient,
    hq: httpx.AsyncClient,
    emus: dict[str, Any],
    proxy: LinkProxy,
    cut_s: float,
    count: int,
) -> dict[str, Any]:
    first = 100_000
    proxy.stall()
    proxy.cut()
    await wait_edge(lan, link="disconnected")
    t0 = time.monotonic()
    lan_ns = list(range(first, first + count))
    cloud_ns = list(range(first + count, first + count + max(1, count // 20)))
    for i, n in enumerate(lan_ns):
        await asyncio.sleep(max(0.0, t0 + i * cut_s / count - time.monotonic()))
        r = await lan.post("/v1/orders", json=sc.order(n))
        assert r.status_code == 202, r.text
    for n in cloud_ns:
        (await cloud.post("/v1/orders", json=sc.order(n))).raise_for_status()
    async with asyncio.timeout(120):
        while not all(f"B{n}" in emus["kitchen"].cut_at for n in lan_ns):
            await asyncio.sleep(0.1)
    printed_offline = time.monotonic() - t0
    await asyncio.sleep(max(0.0, t0 + cut_s - time.monotonic()))
    proxy.resume()
    t1 = time.monotonic()
    oids = [order_id_for(STORE, "pos", f"B-{n}") for n in lan_ns + cloud_ns]
    async with asyncio.timeout(600):
        pending = list(oids)
        while pending:
            r = await hq.get(f"/v1/orders/{pending[0]}")
            if r.status_code == 200 and {j["state"] for j in r.json()["jobs"]} == {"printed"}:
                pending.pop(0)
            else:
                await asyncio.sleep(0.2)
    reconciled = time.monotonic() - t1
    twice = {}
    for name, emu in emus.items():
        counts = Counter(m.group(1) for r in emu.receipts if (m := re.search(r"#(B\d+)", r.text)))
        twice[name] = sorted(k for k, c in counts.items() if c > 1)
    return {
        "cut_s": cut_s,
        "lan_orders": count,
        "cloud_orders_during_cut": len(cloud_ns),
        "all_lan_chits_printed_offline_after_s": round(printed_offline, 1),
        "broker_has_everything_printed_s_after_uplink": round(reconciled, 1),
        "chits_printed_twice": twice,
    }


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="passline-bench-edge-"))
    async with (
        sc.TimedEmulator(name="kitchen") as kitchen,
        sc.TimedEmulator(name="bar") as bar,
        sc.TimedEmulator(name="receipt") as front,
    ):
        emus = {"kitchen": kitchen, "bar": bar, "receipt": front}
        broker, http_port, ws_port = await sc.start_broker(tmp)
        proxy = LinkProxy(ws_port)
        hq_tok, ingest = issue_token(SECRET, "hq"), issue_token(SECRET, "ingest")
        http = f"http://127.0.0.1:{http_port}"
        lan_port = sc.free_port()
        async with (
            httpx.AsyncClient(base_url=http, headers={"Authorization": f"Bearer {hq_tok}"}) as hq,
            httpx.AsyncClient(
                base_url=http, headers={"Authorization": f"Bearer {ingest}"}
            ) as cloud,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{lan_port}",
                headers={"Authorization": f"Bearer {STORE_TOKEN}"},
            ) as lan,
        ):
            r = await hq.put(
                f"/v1/stores/{STORE}/config", json=sc.config({k: e.port for k, e in emus.items()})
            )
            r.raise_for_status()
            client = await start_edge_client(tmp, proxy.port, lan_port)
            try:
                await wait_edge(lan)
                await sc.wait_printers_polled(emus)
                screens = await open_screens(lan_port, args.screens)
                result: dict[str, Any] = {"idle": await sc.idle(client.pid, args.idle_seconds)}
                result["idle"]["screens"] = len(screens)
                for ws in screens:
                    await ws.close()
                result["steady"] = await steady(lan, cloud, kitchen, args.rate, args.seconds)
                result["outage"] = await outage(
                    lan, cloud, hq, emus, proxy, args.cut_seconds, args.outage_orders
                )
                result["rss_mb_after"] = round(sc.rss_mb(client.pid), 1)
            finally:
                client.terminate()
                await client.wait()
                broker.terminate()
                await broker.wait()
                proxy.close()
    print(json.dumps(result, indent=2))
    out = ROOT / "bench/results"
    out.mkdir(exist_ok=True)
    (out / f"store_edge-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle-seconds", type=float, default=120)
    parser.add_argument("--screens", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--cut-seconds", type=float, default=300)
    parser.add_argument("--outage-orders", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
