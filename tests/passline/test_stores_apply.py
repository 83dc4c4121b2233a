"""`passline stores apply stores.toml` against a real broker (issue #7)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from broker.app import start_broker
from passline.cmd_stores import describe_problem
from tests.broker.conftest import test_settings as broker_settings
from tests.broker.helpers import token

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "stores.toml"

BAD_TRANSPORT = """
[stores.s-009]
name = "Broken"
printers = [{ printer_id = "p1", name = "P1", transport = "lpt1" }]
"""
BAD_ID = """
[stores."bad id!"]
name = "Bad id"
"""


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with start_broker(broker_settings("memory://")) as b:
        base = f"http://127.0.0.1:{b.http_port}"
        headers = {"Authorization": f"Bearer {token('hq')}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            yield client


async def passline(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a thread, so the broker on this test's loop keeps serving."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("PASSLINE_TOKEN", "PASSLINE_BROKER_HTTP")
    }
    full_env.update(PYTHONPATH=str(ROOT), **(env or {}))
    cmd = [sys.executable, "-m", "passline", *args]
    return await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, env=full_env, timeout=60
    )


def apply_args(http: httpx.AsyncClient, path: Path, *more: str) -> list[str]:
    return ["stores", "apply", str(path), "--broker", str(http.base_url).rstrip("/"), *more]


async def config_version(http: httpx.AsyncClient, store_id: str) -> int | None:
    r = await http.get(f"/v1/stores/{store_id}")
    return r.json()["config_version"] if r.status_code == 200 else None


def lines(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split(maxsplit=2)[1:] for line in out.splitlines()}


async def test_applies_every_store_and_each_apply_bumps_the_version(
    http: httpx.AsyncClient,
) -> None:
    out = await passline(*apply_args(http, EXAMPLE, "--token", token("hq")))
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines(out.stdout) == {"s-001": ["ok", "version 1"], "s-002": ["ok", "version 1"]}
    assert await config_version(http, "s-001") == 1
    r = await http.get("/v1/stores/s-002")
    assert r.json()["name"] == "川味小馆 人民路店"

    again = await passline(
        *apply_args(http, EXAMPLE, "--only", "s-002"), env={"PASSLINE_TOKEN": token("hq")}
    )
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout) == {"s-002": ["ok", "version 2"]}
    assert await config_version(http, "s-001") == 1
    assert await config_version(http, "s-002") == 2


async def test_bad_stores_are_reported_with_their_field_path_and_the_rest_applied(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "stores.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + BAD_TRANSPORT + BAD_ID, encoding="utf-8")
    out = await passline(*apply_args(http, path, "--token", token("hq")))
    assert out.returncode == 1
    got = lines(out.stdout)
    assert got["s-001"] == ["ok", "version 1"] and got["s-002"] == ["ok", "version 1"]
    status, text = got["s-009"]
    assert status == "invalid" and text.startswith("printers.0.transport: ") and "not sent" in text
    assert out.stdout.splitlines()[-1].startswith("bad id!")
    assert "error    422 path.store_id: " in out.stdout.splitlines()[-1]
    assert await config_version(http, "s-009") is None
    assert "Traceback" not in out.stderr


async def test_dry_run_sends_nothing(http: httpx.AsyncClient) -> None:
    out = await passline(*apply_args(http, EXAMPLE, "--dry-run"))
    assert out.returncode == 0, out.stderr
    assert [v[0] for v in lines(out.stdout).values()] == ["valid", "valid"]
    assert "would PUT /v1/stores/s-002/config" in out.stdout and "川味小馆" in out.stdout
    assert await config_version(http, "s-001") is None


async def test_a_token_without_hq_scope_stops_at_the_first_store(http: httpx.AsyncClient) -> None:
    out = await passline(*apply_args(http, EXAMPLE, "--token", token("ingest")))
    assert out.returncode == 1
    assert out.stdout.splitlines() == ["s-001  error    403 a ingest token may not use the HQ API"]
    assert out.stderr.strip() == "Error: stopped: 1 store(s) not sent"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("[stores.s-001\nname = 1", "is not valid TOML"),
        ("title = 'no stores here'", "expected one or more [stores.STORE_ID] tables"),
    ],
)
async def test_a_bad_file_is_one_clear_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "stores.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    out = await passline("stores", "apply", str(path), "--token", "x")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


async def test_without_a_token_it_says_so() -> None:
    out = await passline("stores", "apply", str(EXAMPLE))
    assert out.returncode == 2 and "--token (or PASSLINE_TOKEN) is required" in out.stderr


def test_problem_details_become_field_paths() -> None:
    body = {
        "title": "Invalid request",
        "status": 422,
        "errors": [
            {"loc": ["printers", 0, "transport"], "path": "printers.0.transport", "msg": "bad"},
            {"loc": [], "path": "", "msg": "Value error, duplicate printer_id 'a'"},
        ],
    }
    r = httpx.Response(422, json=body, headers={"content-type": "application/problem+json"})
    assert (
        describe_problem(r)
        == "422 printers.0.transport: bad; Value error, duplicate printer_id 'a'"
    )
    assert describe_problem(httpx.Response(502, text="<html>")) == "502 Bad Gateway"


HOOKS = """
[webhooks.ops]
url = "https://ops.example.com/hooks/passline"
events = ["printer.alert", "printer.recovered"]
secret_env = "OPS_WEBHOOK_SECRET"

[webhooks.sms]
url = "https://sms.example.com/ready"
events = ["order.ready"]
stores = ["s-002"]
secret_env = "OPS_WEBHOOK_SECRET"
"""


async def test_webhooks_in_the_file_are_added_once(http: httpx.AsyncClient, tmp_path: Path) -> None:
    """`[webhooks.NAME]` tables (docs/webhooks.md): added when the broker has no such
    subscription, left alone when it has; the secret comes from the environment."""
    path = tmp_path / "stores.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + HOOKS, encoding="utf-8")
    env = {"PASSLINE_TOKEN": token("hq"), "OPS_WEBHOOK_SECRET": "whsec-0123456789abcdef"}
    out = await passline(*apply_args(http, path), env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    tail = out.stdout.splitlines()[-2:]
    assert tail[0].startswith("webhook ops  ok       added as wh_"), tail
    assert tail[1].startswith("webhook sms  ok       added as wh_"), tail
    subs = (await http.get("/v1/webhooks")).json()
    assert sorted(s["url"] for s in subs) == [
        "https://ops.example.com/hooks/passline",
        "https://sms.example.com/ready",
    ]
    again = await passline(*apply_args(http, path), env=env)
    assert again.returncode == 0 and "exists as wh_" in again.stdout
    assert len((await http.get("/v1/webhooks")).json()) == 2  # nothing added twice

    dry = await passline(*apply_args(http, path, "--dry-run"), env=env)
    assert "would POST /v1/webhooks" in dry.stdout and "whsec" not in dry.stdout
    unset = await passline(*apply_args(http, path, "--dry-run"))
    assert unset.returncode == 1
    assert unset.stderr.strip() == "Error: webhooks.ops: secret_env must name a set variable"
    path.write_text(HOOKS.replace('secret_env = "OPS_WEBHOOK_SECRET"', 'secret = "x"', 1)
                    + EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")  # fmt: skip
    inline = await passline(*apply_args(http, path, "--dry-run"), env=env)
    assert "not in the file" in inline.stderr and "Traceback" not in inline.stderr
