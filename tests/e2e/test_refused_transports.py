"""Issue 14 point 3: a store config is not a way onto the cashier PC's disk or network.

A config whose printers name ``file:///…`` or a host beyond the store's LAN never opens
that target on the PC; the printer shows as offline with the reason, its jobs fail with
it, and HQ sees both through the API (DESIGN.md §8.3).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import STORE, Stack, eventually, order, stack, store_config

OFF_LAN = "203.0.113.9"  # TEST-NET-3: never the store's LAN


async def printers_of(st: Stack) -> dict[str, dict[str, Any]]:
    async with st.api() as http:
        r = await http.get(f"/v1/stores/{STORE}")
    assert r.status_code == 200, r.text
    return {p["printer_id"]: p for p in r.json()["printers"]}


async def test_a_file_or_off_lan_printer_is_refused_and_hq_sees_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "etc" / "cron.d" / "passline"  # stands in for any file on the PC
    target.parent.mkdir(parents=True)
    dialled: list[str] = []
    real_open_connection = asyncio.open_connection

    async def recording(host: str, port: int, **kw: Any) -> Any:
        dialled.append(str(host))
        return await real_open_connection(host, port, **kw)

    monkeypatch.setattr(asyncio, "open_connection", recording)  # what the tcp transport uses
    async with stack(tmp_path / "stack") as st:
        config = store_config(st.printers)
        config["printers"][0]["transport"] = f"file://{target}"  # kitchen
        config["printers"][1]["transport"] = f"tcp://{OFF_LAN}:9100"  # bar
        async with st.api() as http:
            r = await http.put(f"/v1/stores/{STORE}/config", json=config)
            assert r.status_code == 200, r.text
        await st.start_client()
        order_id = (await st.submit(order(1)))["order_id"]

        async def settled() -> bool:
            states = await st.job_states(order_id)
            return states == {"kitchen": "failed", "bar": "failed", "receipt": "printed"}

        await eventually(settled, what="kitchen and bar failed, the receipt printed")
        async with st.api() as http:
            jobs = (await http.get(f"/v1/orders/{order_id}")).json()["jobs"]
        reasons = {j["printer_id"]: j["history"][-1]["reason"] for j in jobs}
        assert reasons["kitchen"].startswith(f"transport not allowed on this PC: file://{target}")
        assert reasons["bar"].startswith(f"transport not allowed on this PC: tcp://{OFF_LAN}:9100")

        async def shown() -> bool:
            printers = await printers_of(st)
            return all(printers[p]["status"] is not None for p in ("kitchen", "bar"))

        await eventually(shown, what="the refused printers' status at the broker")
        printers = await printers_of(st)
        for printer_id in ("kitchen", "bar"):
            status = printers[printer_id]["status"]
            assert status["state"] == "offline"
            assert status["detail"] == reasons[printer_id]
        assert printers["receipt"]["status"]["detail"] is None
    assert not target.exists()
    assert OFF_LAN not in dialled
    assert "127.0.0.1" in dialled  # the receipt printer, on this PC, was reached as usual
