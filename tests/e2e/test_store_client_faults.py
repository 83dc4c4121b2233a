"""Issue 12 end to end: a print interrupted by a config change, an unusable printer
config, a cashier PC whose clock is hours off. Real broker, store client, emulators."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store_client.daemon import StoreClient
from tests.e2e.stack import (
    STORE,
    Stack,
    assert_each_once_in_order,
    eventually,
    order,
    stack,
    store_config,
)

TWO_HOURS_S = 2 * 3600.0


async def start_client(st: Stack, **settings: Any) -> StoreClient:
    """``Stack.start_client`` with changed ``ClientSettings`` (e.g. a skewed clock)."""
    st.client = StoreClient(replace(st.client_settings(), **settings))
    ready = asyncio.Event()
    st.client_task = asyncio.create_task(st.client.run(ready))
    await asyncio.wait_for(ready.wait(), 10)
    return st.client


async def put_config(st: Stack, config: dict[str, Any]) -> None:
    async with st.api() as http:
        r = await http.put(f"/v1/stores/{STORE}/config", json=config)
    assert r.status_code == 200, r.text


async def submit_all(st: Stack, orders: list[dict[str, Any]]) -> list[str]:
    return [(await st.submit(o))["order_id"] for o in orders]


async def jobs_of(st: Stack, order_id: str) -> dict[str, dict[str, Any]]:
    async with st.api() as http:
        r = await http.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return {j["printer_id"]: j for j in r.json()["jobs"]}


async def state_is(st: Stack, order_id: str, printer: str, state: str) -> bool:
    return (await jobs_of(st, order_id))[printer]["state"] == state


async def all_printed(st: Stack, order_ids: list[str]) -> bool:
    for order_id in order_ids:
        if {j["state"] for j in (await jobs_of(st, order_id)).values()} != {"printed"}:
            return False
    return True


def texts(st: Stack, printer: str) -> list[str]:
    return [r.text for r in st.printers[printer].receipts]


async def status_page(client: StoreClient) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.status_port)
    writer.write(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    page: dict[str, Any] = json.loads(body)
    return page


# -- 1. a job left in ``printing`` ------------------------------------------------------


async def test_config_change_mid_print_is_uncertain_and_the_next_job_prints(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as st:
        kitchen = st.printers["kitchen"]
        kitchen.engine.cps = 100  # a slow kitchen printer: the change lands mid-job
        await st.start_client()
        before = kitchen.engine.bytes_in
        [first] = await submit_all(st, [order(0, drinks=False)])
        await eventually(
            lambda: asyncio.sleep(0, kitchen.engine.bytes_in > before + 64), what="bytes arrive"
        )
        config = store_config(st.printers)
        config["printers"][0]["name"] = "Hot line 2"  # restarts the kitchen worker
        await put_config(st, config)
        await eventually(
            lambda: state_is(st, first, "kitchen", "uncertain"), what="interrupted job uncertain"
        )
        [second] = await submit_all(st, [order(1, drinks=False)])
        await eventually(
            lambda: state_is(st, second, "kitchen", "printed"), within=60, what="next job prints"
        )
        await asyncio.sleep(1.0)  # a second attempt at the first job would show now
        assert await state_is(st, first, "kitchen", "uncertain")  # never auto-reprinted
        assert sum("Burger 0" in t for t in texts(st, "kitchen")) <= 1
        reason = (await jobs_of(st, first))["kitchen"]["history"][-1]["reason"]
        assert "interrupted" in reason


# -- 2. an unusable printer config ------------------------------------------------------


async def test_unknown_profile_fails_the_job_with_a_readable_reason(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        config = store_config(st.printers)
        config["printers"][0]["profile"] = "Bogus-" + "x" * 58  # the longest name allowed
        await put_config(st, config)
        await st.start_client()
        [first] = await submit_all(st, [order(0)])
        await eventually(lambda: state_is(st, first, "kitchen", "failed"), what="kitchen failed")
        await eventually(lambda: state_is(st, first, "bar", "printed"), what="bar prints")
        await eventually(lambda: state_is(st, first, "receipt", "printed"), what="front prints")
        reason = (await jobs_of(st, first))["kitchen"]["history"][-1]["reason"]
        assert "Bogus-xxx" in reason and "profile" in reason and len(reason) <= 200
        assert st.printers["kitchen"].receipts == []

        config["printers"][0]["profile"] = "default"  # someone fixes the config
        await put_config(st, config)
        [second] = await submit_all(st, [order(1)])
        await eventually(lambda: all_printed(st, [second]), what="fixed printer prints")
        assert_each_once_in_order(texts(st, "kitchen"), ["Burger 1"])


# -- 3. a cashier PC whose clock is wrong ----------------------------------------------


@pytest.mark.parametrize("skew_s", [TWO_HOURS_S, -TWO_HOURS_S], ids=["ahead", "behind"])
async def test_pc_clock_two_hours_off_prints_every_job_once(tmp_path: Path, skew_s: float) -> None:
    async with stack(tmp_path) as st:
        client = await start_client(st, clock_skew_s=skew_s)
        ids = await submit_all(st, [order(n) for n in range(5)])
        await eventually(lambda: all_printed(st, ids), what="every job printed, none expired")
        assert_each_once_in_order(texts(st, "kitchen"), [f"Burger {n}" for n in range(5)])
        assert_each_once_in_order(texts(st, "bar"), [f"Tea {n}" for n in range(5)])
        assert_each_once_in_order(texts(st, "receipt"), [f"P{n}" for n in range(5)])

        # Reports carry the broker's time, not this PC's.
        history = (await jobs_of(st, ids[-1]))["kitchen"]["history"]
        printed_at = datetime.fromisoformat(history[-1]["at"])
        assert abs(printed_at - datetime.now(UTC)) < timedelta(minutes=5)

        assert client.clock.offset_s == pytest.approx(-skew_s, abs=5)
        clock = (await status_page(client))["clock"]
        assert clock["skewed"] is True and clock["offset_s"] == pytest.approx(-skew_s, abs=5)
        assert ("ahead" if skew_s > 0 else "behind") in clock["warning"]

        # An offline restart keeps the last measured offset.
        await st.stop_client()
        await st.stop_broker()
        client = await start_client(st, clock_skew_s=skew_s)
        assert client.clock.offset_s == pytest.approx(-skew_s, abs=5)


async def test_cli_clock_skew_env_makes_a_pc_run_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PASSLINE_CLOCK_SKEW_S`` (a test aid of ``passline store-client``) is honoured."""
    monkeypatch.setenv("PASSLINE_CLOCK_SKEW_S", str(TWO_HOURS_S))
    async with stack(tmp_path) as st:
        st.spawn_client()
        ids = await submit_all(st, [order(n, drinks=False) for n in range(3)])
        await eventually(lambda: all_printed(st, ids), within=60, what="printed, none expired")
        assert_each_once_in_order(texts(st, "kitchen"), [f"Burger {n}" for n in range(3)])
        log = (tmp_path / "client.log").read_text(encoding="utf-8")
        assert re.search(r"clock is 2h 0m ahead of the broker", log), log[-2000:]
