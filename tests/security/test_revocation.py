"""Token revocation and expiry on open sockets (issue 14 point 5, DESIGN.md §8.3–§8.5):
a revoked token's open store, KDS and HQ sockets close with 4501 on every node, REST
answers it 401, ``passline token revoke`` reaches a running broker through its storage, a
token that expires while its socket is open closes it too — and well-behaved clients on
the same broker keep working throughout.

Real brokers on sqlite and redis (two nodes on one Redis for the cross-node case), real
sockets, the real CLI in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close

from broker.app import start_broker
from broker.storage import open_storage
from tests.broker.conftest import storage_url
from tests.broker.conftest import test_settings as settings_for
from tests.broker.helpers import (
    SECRET,
    WAIT,
    Endpoints,
    open_hq,
    open_kds,
    open_store,
    order,
    recv_json,
    store_config,
    token,
)
from tests.broker.test_board import open_board
from tests.security.helpers import Bystander

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return storage_url(request.param, tmp_path, redis)


@contextlib.asynccontextmanager
async def node(url: str, **settings: object) -> AsyncIterator[Endpoints]:
    """A broker with stores s-001 and s-002 configured as in DESIGN.md §6."""
    async with start_broker(settings_for(url, **settings)) as b:
        ep = Endpoints(f"http://127.0.0.1:{b.http_port}", f"ws://127.0.0.1:{b.ws_port}")
        async with ep.client(token("hq")) as http:
            for store in ("s-001", "s-002"):
                r = await http.put(f"/v1/stores/{store}/config", json=store_config())
                assert r.status_code == 200, r.text
        yield ep


def jti_of(tok: str) -> str:
    jti: str = jwt.decode(tok, options={"verify_signature": False})["jti"]
    return jti


async def close_of(ws: ClientConnection) -> Close:
    """The close frame the broker sends, whatever frames come before it."""
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert info.value.rcvd is not None, "closed without a close frame"
    return info.value.rcvd


async def revoke(ep: Endpoints, tok: str) -> dict[str, Any]:
    async with ep.client(token("hq")) as http:
        r = await http.post("/v1/tokens/revoke", json={"jti": jti_of(tok)})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def refused_soon(http: httpx.AsyncClient) -> None:
    """401 once the node has read the deny-list (the WAIT guard only: no timing goal)."""
    async with asyncio.timeout(WAIT):
        while True:
            r = await http.post("/v1/orders", json=order(external_id="after-revoke"))
            if r.status_code == 401:
                assert r.json()["detail"] == "token revoked"
                return
            await asyncio.sleep(0.1)


@dataclass
class Doomed:
    """A store link (s-002), a grill screen, an HQ dashboard and a pickup board, each on
    its own token."""

    store_tok: str
    kds_tok: str
    hq_tok: str
    board_tok: str
    sockets: dict[str, ClientConnection]

    @classmethod
    async def open(cls, ep: Endpoints, **ttl: int) -> Doomed:
        store_tok = token("store", store="s-002", **ttl)
        kds_tok = token("kds", store="s-001", **ttl)
        hq_tok = token("hq", **ttl)
        store_ws, _ = await open_store(ep, store="s-002", tok=store_tok)
        kds_ws, snapshot = await open_kds(ep, tok=kds_tok)
        assert snapshot["type"] == "snapshot", snapshot
        hq_ws, fleet = await open_hq(ep, tok=hq_tok)
        assert fleet["type"] == "fleet", fleet
        board_tok = token("board", store="s-001", **ttl)
        board_ws, board = await open_board(ep, tok=board_tok)
        assert board["type"] == "snapshot", board
        sockets = {"store": store_ws, "kds": kds_ws, "hq": hq_ws, "board": board_ws}
        return cls(store_tok, kds_tok, hq_tok, board_tok, sockets)

    @property
    def tokens(self) -> list[str]:
        return [self.store_tok, self.kds_tok, self.hq_tok, self.board_tok]

    async def closes(self) -> dict[str, tuple[int, str]]:
        names = list(self.sockets)
        frames = await asyncio.gather(*(close_of(self.sockets[n]) for n in names))
        return {n: (f.code, f.reason) for n, f in zip(names, frames, strict=True)}


@dataclass
class WellBehaved:
    """A store link (s-001) and a grill screen on tokens nobody revokes."""

    link: Bystander
    kds: ClientConnection

    @classmethod
    async def open(cls, ep: Endpoints) -> WellBehaved:
        kds, _ = await open_kds(ep)
        return cls(await Bystander.open(ep), kds)

    async def keep_working(self) -> None:
        await self.link.gets_a_job()  # an order for s-001: a job here, a ticket on grill
        async with asyncio.timeout(WAIT):
            while (await recv_json(self.kds))["type"] != "ticket":
                pass

    async def close(self) -> None:
        await self.link.close()
        await self.kds.close()


async def test_revoked_token_closes_store_kds_hq_and_board_sockets_4501(url: str) -> None:
    async with node(url) as ep:
        good = await WellBehaved.open(ep)
        doomed = await Doomed.open(ep)
        for tok in doomed.tokens:
            assert (await revoke(ep, tok))["jti"] == jti_of(tok)
        expected = (4501, "token revoked")
        assert await doomed.closes() == dict.fromkeys(doomed.sockets, expected)
        await good.keep_working()
        with pytest.raises(ConnectionClosed) as again:  # a screen cannot come back with it
            await open_kds(ep, tok=doomed.kds_tok)
        assert again.value.rcvd is not None and again.value.rcvd.code == 4501
        with pytest.raises(InvalidStatus) as refused:  # nor a store link
            await open_store(ep, store="s-002", tok=doomed.store_tok)
        assert refused.value.response.status_code == 401
        assert b"token revoked" in refused.value.response.body
        await good.close()


async def test_rest_answers_a_revoked_token_401_at_once(url: str) -> None:
    async with node(url) as ep:
        ingest, other = token("ingest"), token("ingest")
        async with ep.client(ingest) as http:
            assert (await http.post("/v1/orders", json=order(external_id="r1"))).status_code == 202
            await revoke(ep, ingest)
            r = await http.post("/v1/orders", json=order(external_id="r2"))
            assert r.status_code == 401, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["detail"] == "token revoked" and ingest not in r.text
            assert (await http.get(f"/v1/orders/{'o-x1'}")).status_code == 401
        async with ep.client(other) as http:  # the same scope on another token goes on
            assert (await http.post("/v1/orders", json=order(external_id="r3"))).status_code == 202
        async with ep.client(token("hq")) as http:
            for body in ({}, {"jti": ""}, {"jti": "x", "extra": 1}):
                assert (await http.post("/v1/tokens/revoke", json=body)).status_code == 422
        async with ep.client(token("ingest")) as http:  # hq scope only
            r = await http.post("/v1/tokens/revoke", json={"jti": jti_of(other)})
            assert r.status_code == 403, r.text


async def test_revocation_reaches_every_node(redis_url: str) -> None:
    url = storage_url("redis", Path("."), redis_url)
    async with node(url) as a, node(url) as b:
        good = await WellBehaved.open(b)
        doomed = await Doomed.open(b)
        ingest = token("ingest")
        async with b.client(ingest) as http:
            r = await http.post("/v1/orders", json=order(external_id="x1"))
            assert r.status_code == 202, r.text
        for tok in [*doomed.tokens, ingest]:
            await revoke(a, tok)  # on node A; the sockets and the REST caller are on B
        expected = (4501, "token revoked")
        assert await doomed.closes() == dict.fromkeys(doomed.sockets, expected)
        async with b.client(ingest) as http:
            await refused_soon(http)  # within B's next read of the deny-list
        await good.keep_working()
        await good.close()


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSLINE_")}
    return {**env, "PYTHONPATH": str(ROOT)}


async def passline(*args: str) -> tuple[int, str, str]:
    """The real CLI in a process of its own, while this test's broker keeps running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "passline", *args,
        cwd=ROOT, env=cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_revoke_reaches_a_running_broker(url: str, tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(f'[broker]\nstore = "{url}"\nsecret = "{SECRET}"\n', encoding="utf-8")
    async with node(url) as ep:
        good = await WellBehaved.open(ep)
        doomed = await Doomed.open(ep)
        ingest = token("ingest")
        # by id (what the broker logs), and the store link's by the token itself
        by_id = [jti_of(doomed.kds_tok), jti_of(doomed.hq_tok), jti_of(doomed.board_tok)]
        for arg in [*by_id, doomed.store_tok, ingest]:
            code, out, err = await passline("token", "revoke", arg, "--config", str(config))
            assert code == 0, err
            assert out.count("\n") == 1 and out.startswith("revoked jti="), out
            assert "." not in arg or arg not in out + err  # a token is never echoed
        expected = (4501, "token revoked")
        assert await doomed.closes() == dict.fromkeys(doomed.sockets, expected)
        async with ep.client(ingest) as http:
            await refused_soon(http)
        await good.keep_working()
        await good.close()


async def test_cli_revoke_refuses_what_it_cannot_reach(tmp_path: Path) -> None:
    memory = tmp_path / "memory.toml"
    memory.write_text('[broker]\nstore = "memory://"\n', encoding="utf-8")
    missing = tmp_path / "missing.toml"
    missing.write_text(f'[broker]\nstore = "sqlite:///{tmp_path / "nope.db"}"\n')
    for config, words in [(memory, "POST /v1/tokens/revoke"), (missing, "no broker database")]:
        code, _, err = await passline("token", "revoke", "abc123", "--config", str(config))
        assert code != 0 and words in err and "Traceback" not in err, err
    assert not (tmp_path / "nope.db").exists()
    code, _, err = await passline("token", "revoke", "not a jti!", "--config", str(memory))
    assert code != 0 and "Traceback" not in err


async def test_a_token_that_expires_while_its_socket_is_open_closes_it(url: str) -> None:
    async with node(url) as ep:
        good = await WellBehaved.open(ep)
        doomed = await Doomed.open(ep, ttl_s=3)  # checked every second or so after that
        expected = (4501, "token expired")
        assert await doomed.closes() == dict.fromkeys(doomed.sockets, expected)
        await good.keep_working()
        await good.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
async def test_the_deny_list_keeps_an_entry_as_long_as_its_token_lives(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    redis = request.getfixturevalue("redis_url") if kind == "redis" else ""
    storage = await open_storage(storage_url(kind, tmp_path, redis))
    now = int(time.time())
    try:
        denylist = storage.denylist
        await denylist.deny("gone", now - 10)  # its token expired already
        await denylist.deny("a", now + 3600)
        await denylist.deny("a", now + 60)  # a second revocation never shortens the first
        await denylist.deny("b", now + 5)
        assert await denylist.denied(now) == {"a": now + 3600, "b": now + 5}
        assert await denylist.denied(now + 10) == {"a": now + 3600}
        assert await denylist.denied(0) == {"a": now + 3600, "b": now + 5}  # "gone" is gone
    finally:
        await storage.aclose()
