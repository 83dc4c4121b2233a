"""Rate limits (DESIGN.md §7) and the broker's commands (DESIGN.md §5.1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from broker.auth import verify_token
from broker.limits import RateLimiter
from tests.broker.helpers import SECRET, WAIT, order, token

ROOT = Path(__file__).resolve().parents[2]
memory_only = pytest.mark.parametrize("storage", ["memory"], indirect=True)


@memory_only
async def test_ingest_is_rate_limited_per_token(broker_with: Any) -> None:
    async with broker_with(ingest_rate=0.5, ingest_burst=2) as (_, ep):
        tok = token("ingest")
        async with ep.client(tok) as http:
            codes = [
                (await http.post("/v1/orders", json=order(external_id=f"r{i}"))).status_code
                for i in range(3)
            ]
            assert codes == [202, 202, 429]
            r = await http.post("/v1/orders", json=order(external_id="r9"))
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert r.headers["content-type"] == "application/problem+json"
        async with ep.client(token("ingest")) as other:  # another token has its own bucket
            assert (await other.post("/v1/orders", json=order(external_id="o1"))).status_code == 202


@memory_only
async def test_websocket_hellos_are_limited_per_address(broker_with: Any) -> None:
    async with broker_with(hello_rate=0.1, hello_burst=2) as (_, ep):
        url = f"{ep.ws}/v1/ws/kds"
        for _ in range(2):
            ws = await connect(url, subprotocols=["passline.v1.json"], open_timeout=WAIT)  # type: ignore[list-item]
            await ws.close()
        with pytest.raises(InvalidStatus) as info:
            await connect(url, subprotocols=["passline.v1.json"], open_timeout=WAIT)  # type: ignore[list-item]
        assert info.value.response.status_code == 429


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.5
    assert limiter.take("a") == 0.0


def test_rate_limiter_forgets_buckets_that_filled_up_again() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        limiter.take(key)
    assert len(limiter) == 3
    now[0] = 0.5
    limiter.take("c")  # "a" and "b" are half a token short of full: kept
    assert len(limiter) == 3
    now[0] = 1.2
    limiter.take("d")  # "a" and "b" are full again; "c" (taken twice) is not
    assert len(limiter) == 2
    assert limiter.take("c") == 0.0
    assert limiter.take("c") > 0.0  # what "c" still owed was not forgotten


def run(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSLINE_")}
    if secret:
        env["PASSLINE_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "passline", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_token_issue_prints_the_token_alone(tmp_path: Path) -> None:
    out = run(
        "token", "issue", "--scope", "kds", "--store", "s-001", "--station", "grill", "--ttl", "2h"
    )
    assert out.returncode == 0, out.stderr
    claims = verify_token(SECRET, out.stdout.strip())
    assert (claims.scope.value, claims.store, claims.station) == ("kds", "s-001", "grill")
    assert out.stdout.count("\n") == 1
    conf = tmp_path / "broker.toml"
    conf.write_text(f'[broker]\nsecret = "{SECRET}"\n')
    out = run(
        "token",
        "issue",
        "--scope",
        "ingest",
        "--store",
        "a",
        "--store",
        "b",
        "--config",
        str(conf),
        secret=None,
    )
    assert out.returncode == 0 and verify_token(SECRET, out.stdout.strip()).stores == ("a", "b")
    bad = run("token", "issue", "--scope", "store")
    assert bad.returncode != 0 and "--store" in bad.stderr and "Traceback" not in bad.stderr


def test_broker_refuses_to_start_without_a_secret() -> None:
    out = run("broker", "--store", "memory://", secret=None)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "PASSLINE_SECRET" in out.stderr
    out = run("broker", "--http", "nonsense", "--store", "memory://")
    assert out.returncode == 1 and "HOST:PORT" in out.stderr and "Traceback" not in out.stderr
    assert "broker" in run("--help").stdout and "token" in run("--help").stdout


def test_broker_says_in_one_line_when_redis_is_unreachable() -> None:
    out = run("broker", "--store", "redis://127.0.0.1:1/0", "--http", "127.0.0.1:0")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "cannot reach redis at redis://127.0.0.1:1/0" in out.stderr
