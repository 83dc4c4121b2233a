"""Issue #7: `passline demo` comes up on a fresh data dir and stops cleanly on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def read_until(proc: subprocess.Popen[str], marker: str, within: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + within
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"demo did not print {marker!r}: {''.join(lines)}")


def wait_for(check, within: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {within}s: {what}")


def test_demo_runs_prints_and_stops_on_sigint(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("PASSLINE_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "passline", "demo", "--port-http", "0", "--port-ws", "0",
         "--data", str(data), "--rate", "6", "--seed", "7"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = read_until(proc, "Ctrl-C", within=60)
        out = "".join(lines)
        for name in ("grill", "fry", "cold", "bar", "Expo", "Board", "HQ", "docs"):
            assert name in out, out
        info = json.loads((data / "demo.json").read_text())
        with httpx.Client(base_url=info["http"], timeout=10) as http:
            for name, url in info["urls"].items():
                page = http.get(url)
                assert page.status_code == 200, (name, url, page.status_code)
                assert "<html" in page.text.lower() or name == "API docs"
            receipts = wait_for(lambda: list((data / "receipts").glob("*.txt")), 60, "receipts")
            assert receipts and all(p.with_suffix(".bin").exists() for p in receipts)
            # An order of our own, through the same API: it shows printed jobs.
            body = {
                "store_id": "demo", "channel": "x-test", "external_id": "T-1", "service": "takeout",
                "pickup_code": "999", "placed_at": "2026-11-21T12:00:00+08:00",
                "items": [{"line_id": "1", "sku": "B01", "name": "Test burger", "qty": 1, "category": "burgers"}],
            }  # fmt: skip
            r = http.post(
                "/v1/orders",
                json=body,
                headers={"Authorization": f"Bearer {info['tokens']['ingest']}"},
            )
            assert r.status_code == 202, r.text
            hq = {"Authorization": f"Bearer {info['tokens']['hq']}"}

            def printed() -> bool:
                jobs = http.get(f"/v1/orders/{r.json()['order_id']}", headers=hq).json()["jobs"]
                return bool(jobs) and all(j["state"] == "printed" for j in jobs)

            wait_for(printed, 60, "the API shows the order's jobs printed")
            store = http.get("/v1/stores/demo", headers=hq).json()
            assert store["link"]["online"] is True
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    stderr = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, stderr
    assert "Traceback" not in stderr, stderr
