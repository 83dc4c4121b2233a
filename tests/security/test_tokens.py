"""What a token is good for (issue 14 point 5): an ingest token named for store A is
refused for store B however it was made, one without a store serves the whole brand;
tokens carry ``iss``/``aud`` and a broker refuses one made for another deployment; a
token's lifetime is bounded so a revocation by id outlives it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from broker.app import start_broker
from tests.broker.conftest import test_settings as settings_for
from tests.broker.helpers import SECRET, Endpoints, order, store_config, token
from tests.security.helpers import Bystander

ROOT = Path(__file__).resolve().parents[2]


def forge(scope: str, **claims: Any) -> str:
    """A token signed with the broker's secret, with exactly these claims (plus the
    usual ones): what an older issuer or a hand-written script may have made."""
    now = int(time.time())
    body = {"sub": "x", "scope": scope, "iat": now, "exp": now + 600, "jti": f"j{now}"}
    return jwt.encode({**body, **claims}, SECRET, algorithm="HS256")


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PASSLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "passline", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**clean, "PASSLINE_SECRET": SECRET, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


def cli_token(*args: str, **env: str) -> str:
    out = cli("token", "issue", *args, **env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


async def configured(ep: Endpoints, *stores: str) -> None:
    async with ep.client(token("hq")) as http:
        for store in stores:
            r = await http.put(f"/v1/stores/{store}/config", json=store_config())
            assert r.status_code == 200, r.text


async def test_an_ingest_token_for_store_a_is_refused_for_store_b(broker_with: Any) -> None:
    made_for_a = {
        "cli --store s-001": cli_token("--scope", "ingest", "--store", "s-001"),
        "issue_token(store=)": token("ingest", store="s-001"),
        "store claim only": forge("ingest", store="s-001", iss="passline", aud="passline"),
    }
    async with broker_with() as (_, ep):
        await configured(ep, "s-002")
        bystander = await Bystander.open(ep)
        async with ep.client(token("ingest")) as http:  # brand-wide: every store
            for i, store in enumerate(("s-001", "s-002")):
                r = await http.post("/v1/orders", json=order(store, external_id=f"w{i}"))
                assert r.status_code == 202, r.text
            b_order = r.json()["order_id"]
        for how, tok in made_for_a.items():
            async with ep.client(tok) as http:
                mine = await http.post("/v1/orders", json=order("s-001", external_id=how))
                assert mine.status_code == 202, (how, mine.text)
                theirs = [
                    await http.post("/v1/orders", json=order("s-002", external_id=how)),
                    await http.post(f"/v1/orders/{b_order}/cancel", json={}),
                    await http.post(
                        f"/v1/orders/{b_order}/amend", json={"change": [{"line_id": "1", "qty": 3}]}
                    ),
                    await http.post(
                        "/v1/orders:batch", json={"orders": [order("s-002", external_id="b")]}
                    ),
                ]
            for r in theirs[:1]:  # the body names the store: 403 naming it
                assert r.status_code == 403, (how, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                assert "s-002" in r.json()["detail"], r.text
            for r in theirs[1:3]:  # by id: refused as for an order it cannot see
                assert r.status_code in (403, 404), (how, r.request.url, r.text)
                assert r.headers["content-type"] == "application/problem+json"
            result = theirs[3].json()["results"][0]
            assert result["status"] == 403 and "s-002" in result["body"]["detail"], how
        async with ep.client(token("hq")) as http:
            view = (await http.get(f"/v1/orders/{b_order}")).json()
        assert (view["revision"], view["cancelled"]) == (1, False)  # untouched
        await bystander.gets_a_job()
        await bystander.close()


def test_issue_refuses_tokens_that_mean_nothing_or_live_too_long() -> None:
    for args, words in [
        (["--scope", "hq", "--store", "s-001"], "takes no --store"),
        (["--scope", "ingest", "--ttl", "401d"], "400d"),
    ]:
        out = cli("token", "issue", *args)
        assert out.returncode != 0 and words in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    claims = jwt.decode(
        cli_token("--scope", "hq", "--ttl", "400d"), SECRET, ["HS256"], audience="passline"
    )
    assert claims["iss"] == "passline" and claims["exp"] - claims["iat"] == 400 * 86400
    assert claims["jti"]


async def test_a_token_for_another_audience_or_issuer_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('[broker]\ntoken_audience = "acme-prod"\n', encoding="utf-8")
    acme = cli_token("--scope", "hq", "--config", str(config))
    staging = cli_token("--scope", "hq", PASSLINE_TOKEN_AUDIENCE="acme-staging")
    assert jwt.decode(acme, SECRET, ["HS256"], audience="acme-prod")["aud"] == "acme-prod"
    async with start_broker(settings_for("memory://", token_audience="acme-prod")) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        cases = {
            acme: 200,
            staging: 401,
            token("hq"): 401,  # the default audience is another deployment's
            forge("hq", iss="passline", aud=["acme-prod", "other"]): 200,  # RFC 7519 list
            forge("hq", iss="mallory", aud="acme-prod"): 401,
            forge("hq"): 401,  # neither: made before iss/aud, refused unless legacy_tokens
        }
        async with ep.client() as http:
            for tok, status in cases.items():
                r = await http.get("/v1/stores", headers={"Authorization": f"Bearer {tok}"})
                assert r.status_code == status, r.text


@pytest.mark.parametrize("legacy", [False, True])
async def test_legacy_tokens_only_when_the_setting_says_so(broker_with: Any, legacy: bool) -> None:
    old = forge("hq")
    async with broker_with(legacy_tokens=legacy) as (_, ep):
        async with ep.client(old) as http:
            assert (await http.get("/v1/stores")).status_code == (200 if legacy else 401)
        async with ep.client(forge("hq", aud="elsewhere")) as http:
            assert (await http.get("/v1/stores")).status_code == 401  # present: must match
