"""Gray release by store ring (issue 16, done-when 4 and 5; docs/rollout.md): five real
stores, two in ring "canary"; a chit layout staged to the canary prints there only, and
a rollback puts the old layout back on them, live. A protocol-1 and a protocol-2 store
client on the same broker both print."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from broker.app import Broker, start_broker
from printer_drivers.emulator import PrinterEmulator
from store_client.daemon import ClientSettings, StoreClient
from tests.broker.conftest import test_settings as broker_settings
from tests.broker.helpers import Endpoints, open_store, recv_msgpack, token
from tests.e2e.stack import FAST_WORKERS, eventually

ROOT = Path(__file__).resolve().parents[2]
HEADER = "NEW LAYOUT V2"
RINGS = {"s-r1": "canary", "s-r2": "canary", "s-r3": "wave-1", "s-r4": "wave-1", "s-r5": None}


@dataclass
class Store:
    store_id: str
    printer: PrinterEmulator
    client: StoreClient
    task: asyncio.Task[None]

    def chits(self) -> list[str]:
        return [r.text for r in self.printer.receipts]


def config(printer: PrinterEmulator, ring: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Ring test",
        "printers": [{"printer_id": "kitchen", "name": "Hot line",
                      "transport": f"tcp://127.0.0.1:{printer.port}"}],
        "stations": [{"station_id": "grill", "name": "Grill", "categories": ["burgers"],
                      "printer": "kitchen"}],
    }  # fmt: skip
    if ring is not None:
        body["ring"] = ring
    return body


def order(store_id: str, n: int) -> dict[str, Any]:
    return {
        "store_id": store_id, "channel": "pos", "external_id": f"{store_id}-{n}",
        "service": "takeout", "placed_at": "2026-11-29T12:00:00+08:00",
        "items": [{"line_id": "1", "sku": "B01", "name": f"Burger {n}", "qty": 1,
                   "category": "burgers"}],
    }  # fmt: skip


@contextlib.asynccontextmanager
async def fleet(
    tmp: Path, protocols: dict[str, int] | None = None
) -> AsyncIterator[tuple[Broker, Endpoints, dict[str, Store]]]:
    async with start_broker(broker_settings(f"sqlite:///{tmp / 'broker.db'}")) as broker:
        ep = Endpoints(f"http://127.0.0.1:{broker.http_port}", f"ws://127.0.0.1:{broker.ws_port}")
        stores: dict[str, Store] = {}
        async with contextlib.AsyncExitStack() as stack:
            for sid, ring in RINGS.items():
                printer = await stack.enter_async_context(PrinterEmulator(name=sid))
                async with ep.client(token("hq")) as http:
                    r = await http.put(f"/v1/stores/{sid}/config", json=config(printer, ring))
                    assert r.status_code == 200, r.text
                settings = ClientSettings(
                    broker=ep.ws, store_id=sid, token=token("store", store=sid),
                    spool_dir=tmp / f"spool-{sid}", status_port=None, workers=FAST_WORKERS,
                    protocol=(protocols or {}).get(sid, 2),
                )  # fmt: skip
                client = StoreClient(settings)
                ready = asyncio.Event()
                task = asyncio.create_task(client.run(ready))
                await asyncio.wait_for(ready.wait(), 10)
                stores[sid] = Store(sid, printer, client, task)
            try:
                yield broker, ep, stores
            finally:
                for s in stores.values():
                    s.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await s.task


async def print_round(ep: Endpoints, stores: dict[str, Store], n: int) -> dict[str, str]:
    """One order per store; each store's chit for it, once printed."""
    async with ep.client(token("ingest")) as http:
        for sid in stores:
            r = await http.post("/v1/orders", json=order(sid, n))
            assert r.status_code == 202, r.text

    def printed() -> bool:
        return all(any(f"Burger {n}" in t for t in s.chits()) for s in stores.values())

    await eventually(lambda: asyncio.sleep(0, printed()), what=f"round {n} printed")
    return {sid: next(t for t in s.chits() if f"Burger {n}" in t) for sid, s in stores.items()}


def same(a: str, b: str) -> bool:
    """The same chit layout: equal but for the order's number."""

    def norm(t: str) -> str:
        return re.sub(r"(#s-r\d-|Burger )\d+", r"\1N", t)

    return norm(a) == norm(b)


async def configs_at(stores: dict[str, Store], want: dict[str, int]) -> None:
    """Each store client runs the config version the broker answered (pushed live)."""

    def there() -> bool:
        return all(stores[sid].client.config().version >= v for sid, v in want.items())

    await eventually(lambda: asyncio.sleep(0, there()), what=f"configs {want}")


async def versions(ep: Endpoints) -> dict[str, int]:
    async with ep.client(token("hq")) as http:
        return {s["store_id"]: s["config_version"] for s in (await http.get("/v1/stores")).json()}


async def test_a_layout_staged_to_canary_prints_there_only_and_rolls_back_live(
    tmp_path: Path,
) -> None:
    async with fleet(tmp_path) as (_, ep, stores):
        before = await print_round(ep, stores, 1)
        assert not any(HEADER in t for t in before.values())

        async with ep.client(token("hq")) as http:
            body = {"release_id": "layout-v2", "rings": ["canary"],
                    "patch": {"chit": {"header": HEADER, "big_items": True}}}  # fmt: skip
            r = await http.post("/v1/releases", json=body)
            assert r.status_code == 201, r.text
            assert r.json()["state"] == "staged" and r.json()["stores"] == 2
            rings = {g["ring"]: g for g in (await http.get("/v1/rings")).json()}
        assert rings["canary"]["stores"] == ["s-r1", "s-r2"]
        assert rings["canary"]["releases"] == ["layout-v2"] and rings["wave-1"]["releases"] == []
        assert sum(rings["canary"]["client_versions"].values()) == 2
        await configs_at(stores, await versions(ep))

        staged = await print_round(ep, stores, 2)
        assert {sid for sid, t in staged.items() if HEADER in t} == {"s-r1", "s-r2"}
        assert same(staged["s-r3"], before["s-r3"])  # untouched

        async with ep.client(token("hq")) as http:
            view = (await http.get("/v1/stores/s-r1")).json()
            assert view["releases"] == ["layout-v2"] and view["ring"] == "canary"
            r = await http.post("/v1/releases/layout-v2/rollback")
            assert r.status_code == 200 and r.json()["state"] == "rolled_back"
            assert r.json()["stores"] == 0
        await configs_at(stores, await versions(ep))
        back = await print_round(ep, stores, 3)  # the same store clients: no restart
        assert not any(HEADER in t for t in back.values())
        assert same(back["s-r1"], before["s-r1"])


async def test_promote_to_a_ring_then_everywhere(tmp_path: Path) -> None:
    async with fleet(tmp_path) as (_, ep, stores):
        async with ep.client(token("hq")) as http:
            body = {"release_id": "hdr", "rings": ["canary"], "patch": {"chit": {"header": HEADER}}}
            assert (await http.post("/v1/releases", json=body)).status_code == 201
            r = await http.post("/v1/releases/hdr/promote", json={"rings": ["wave-1"]})
            assert r.status_code == 200 and r.json()["stores"] == 4
        await configs_at(stores, await versions(ep))
        chits = await print_round(ep, stores, 1)
        assert {sid for sid, t in chits.items() if HEADER in t} == {"s-r1", "s-r2", "s-r3", "s-r4"}
        async with ep.client(token("hq")) as http:
            r = await http.post("/v1/releases/hdr/promote", json={"everywhere": True})
            assert r.json()["stores"] == 5 and r.json()["everywhere"] is True
            bad = await http.post("/v1/releases/hdr/promote", json={})
            assert bad.status_code == 422
            again = await http.post("/v1/releases", json=body)
            assert again.status_code == 409
        await configs_at(stores, await versions(ep))
        assert all(HEADER in t for t in (await print_round(ep, stores, 2)).values())


async def test_protocol_1_and_protocol_2_clients_on_one_broker_both_print(
    tmp_path: Path,
) -> None:
    async with fleet(tmp_path, protocols={"s-r1": 1}) as (_, ep, stores):
        async with ep.client(token("hq")) as http:
            body = {"release_id": "layout-v2", "rings": ["canary"],
                    "patch": {"chit": {"header": HEADER}}}  # fmt: skip
            assert (await http.post("/v1/releases", json=body)).status_code == 201
        await configs_at(stores, await versions(ep))
        chits = await print_round(ep, stores, 1)
        # both canary stores run the release; the protocol-1 client was sent its config
        # without the protocol-2 fields and prints the standard chit, as it always did
        assert HEADER in chits["s-r2"] and HEADER not in chits["s-r1"]
        assert stores["s-r1"].client.config().chit is None
        assert stores["s-r1"].client.link.protocol == 1
        assert stores["s-r2"].client.config().releases == ("layout-v2",)


async def test_the_wire_per_protocol_and_the_minimum_client_version(tmp_path: Path) -> None:
    async with start_broker(broker_settings(f"sqlite:///{tmp_path / 'b.db'}")) as broker:
        await _wire(
            Endpoints(f"http://127.0.0.1:{broker.http_port}", f"ws://127.0.0.1:{broker.ws_port}")
        )


async def _wire(ep: Endpoints) -> None:
    async with ep.client(token("hq")) as http:
        for sid in ("s-001", "s-002"):
            body = {"name": "Wire", "ring": "canary" if sid == "s-001" else "late"}
            assert (await http.put(f"/v1/stores/{sid}/config", json=body)).status_code == 200
        body = {"release_id": "look", "rings": ["canary"], "patch": {"chit": {"big_items": True}}}
        assert (await http.post("/v1/releases", json=body)).status_code == 201

    async def welcome(protocol: int) -> dict[str, Any]:
        ws, first = await open_store(ep, store="s-001", protocol_version=protocol)
        await ws.close()
        return first

    p1, p2 = await welcome(1), await welcome(2)
    assert p2["config"]["chit"] == {"header": None, "big_items": True}
    assert p2["config"]["releases"] == ["look"] and p2["config"]["ring"] == "canary"
    assert not {"chit", "releases", "ring", "min_client_version", "timezone"} & set(p1["config"])
    assert p2["config"]["timezone"] == "UTC"
    assert p1["config"]["version"] == p2["config"]["version"]

    async with ep.client(token("hq")) as http:  # store clients older than 9.0 refused
        body = {"release_id": "min-9", "rings": ["late"], "patch": {"min_client_version": "9.0"}}
        assert (await http.post("/v1/releases", json=body)).status_code == 201
    with pytest.raises(ConnectionClosed) as info:
        ws, _ = await open_store(ep, store="s-002")
        await recv_msgpack(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4502
    assert "older than 9.0" in info.value.rcvd.reason and "upgrade" in info.value.rcvd.reason
    ws, first = await open_store(ep, store="s-001")  # another ring: unharmed
    assert first["type"] == "welcome"
    await ws.close()
    async with httpx.AsyncClient(base_url=ep.http, timeout=10) as http:
        r = await http.post(
            "/v1/releases",
            json={"release_id": "bad", "rings": ["canary"], "patch": {"ring": "x"}},
            headers={"Authorization": f"Bearer {token('hq')}"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "patch"
        r = await http.post(
            "/v1/releases",
            json={"release_id": "bad", "rings": ["canary"], "patch": {"job_ttl_s": 1}},
            headers={"Authorization": f"Bearer {token('hq')}"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "patch.job_ttl_s"
        assert "store s-001" in r.json()["errors"][0]["msg"]


async def test_the_rollout_cli_one_command_each(tmp_path: Path) -> None:
    async with start_broker(broker_settings(f"sqlite:///{tmp_path / 'b.db'}")) as broker:
        http_url = f"http://127.0.0.1:{broker.http_port}"
        async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
            for sid, ring in (("s-001", "canary"), ("s-002", "wave-1")):
                r = await http.put(
                    f"/v1/stores/{sid}/config",
                    json={"name": "CLI", "ring": ring},
                    headers={"Authorization": f"Bearer {token('hq')}"},
                )
                assert r.status_code == 200

        async def cli(*args: str) -> tuple[int, str, str]:
            env = {**os.environ, "PASSLINE_TOKEN": token("hq"), "PASSLINE_BROKER_HTTP": http_url}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "passline", "rollout", *args, env=env, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode is not None
            return proc.returncode, out.decode(), err.decode()

        code, out, _ = await cli(
            "stage", "cli-1", "--ring", "canary", "--patch", '{"chit": {"header": "CLI"}}'
        )
        assert code == 0 and out.startswith("cli-1  staged  rings canary  1 store(s)"), out
        code, out, _ = await cli("status")
        assert "ring canary: 1 store(s)" in out and "releases cli-1" in out
        assert "ring wave-1: 1 store(s); clients unknown x1; releases -" in out
        code, out, _ = await cli("promote", "cli-1", "--everywhere")
        assert code == 0 and "promoted  every store  2 store(s)" in out
        code, out, _ = await cli("rollback", "cli-1")
        assert code == 0 and "rolled_back" in out and "0 store(s)" in out
        code, _, err = await cli("rollback", "nope")
        assert code == 1 and err.strip() == "Error: 404 no release 'nope'"
        code, _, err = await cli("stage", "x", "--ring", "canary", "--patch", "{oops")
        assert code == 2 and "not JSON" in err
