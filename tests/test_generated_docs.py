"""docs/protocol-reference.md and docs/openapi.json are generated: the committed files must
match what the scripts make from today's code (issue #7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from broker.app import start_broker
from broker.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SECRET = "generated-docs-test-secret-0123456789abcdef"


@pytest.mark.parametrize(
    ("script", "output"),
    [
        ("gen_protocol_docs.py", "docs/protocol-reference.md"),
        ("gen_openapi.py", "docs/openapi.json"),
    ],
)
def test_committed_file_is_up_to_date(script: str, output: str, tmp_path: Path) -> None:
    check = [sys.executable, str(ROOT / "scripts" / script), "--check"]
    result = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{output} is stale: run scripts/{script}\n{result.stderr}"
    fresh = tmp_path / Path(output).name
    write = subprocess.run([*check[:2], "--out", str(fresh)], capture_output=True, text=True)
    assert write.returncode == 0, write.stderr
    assert fresh.read_text(encoding="utf-8") == (ROOT / output).read_text(encoding="utf-8")


def test_the_reference_covers_every_message() -> None:
    from typing import get_args

    from protocol.messages import hq, kds, store

    text = (ROOT / "docs/protocol-reference.md").read_text(encoding="utf-8")
    for union in (store.StoreMessage, kds.KdsMessage, hq.HqMessage):
        for model in get_args(get_args(union)[0]):
            assert f"({model.__name__})" in text, model.__name__


async def test_openapi_json_is_what_the_broker_serves(tmp_path: Path) -> None:
    settings = Settings(http="127.0.0.1:0", ws="127.0.0.1:0", store="memory://", secret=SECRET)
    async with start_broker(settings) as b:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http_port}") as http:
            served = (await http.get("/openapi.json")).json()
    committed = json.loads((ROOT / "docs/openapi.json").read_text(encoding="utf-8"))
    assert committed == served
    for path in ("/v1/orders", "/v1/orders:batch", "/v1/stores/{store_id}/config", "/metrics"):
        assert path in committed["paths"]
