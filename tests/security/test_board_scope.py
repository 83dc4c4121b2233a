"""A ``board`` token shows one store's pickup board and reads nothing else (issue 17
done-when 3): every REST route the broker serves answers it 403, the store link's
handshake 403, the KDS and HQ websockets close 1008; only ``/v1/ws/board`` of its own
store opens. The routes come from the running broker's own OpenAPI document, so a route
added later is in this matrix without anyone remembering to add it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.broker.helpers import WAIT, Endpoints, auth, open_hq, open_kds, order, recv_json, token
from tests.broker.test_board import open_board
from tests.security.test_tokens import cli, cli_token

#: Routes anyone may call (docs/security.md#scopes).
OPEN = {"/healthz", "/readyz", "/metrics"}


async def path_values(ep: Endpoints) -> dict[str, str]:
    """Real ids for every path parameter, so a 403 is not a 404 in disguise."""
    async with ep.client(token("ingest")) as http:
        sub = (await http.post("/v1/orders", json=order(external_id="board-matrix"))).json()
    async with ep.client(token("hq")) as http:
        hook = await http.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["order.ready"], "secret": "s" * 20},
        )
        assert hook.status_code == 201, hook.text
    return {
        "order_id": sub["order_id"],
        "job_id": sub["jobs"][0]["job_id"],
        "store_id": "s-001",
        "webhook_id": hook.json()["webhook_id"],
        "release_id": "r-1",
        "adapter": "meituan",
    }


@pytest.mark.parametrize("scope", ["board", "kds", "store"])
async def test_a_screen_token_is_refused_by_every_rest_route(broker_with: Any, scope: str) -> None:
    """Board, kitchen-screen and store-link tokens are for websockets only."""
    async with broker_with() as (_, ep):
        values = await path_values(ep)
        async with ep.client() as anonymous:
            spec = (await anonymous.get("/openapi.json")).json()
        calls = [
            (method.upper(), re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path))
            for path, methods in spec["paths"].items()
            if path not in OPEN
            for method in methods
        ]
        assert len(calls) >= 20, calls
        answers = {}
        async with ep.client(token(scope, store="s-001")) as http:
            for method, path in calls:
                body = {} if method in ("POST", "PUT") else None
                r = await http.request(method, path, json=body)
                answers[f"{method} {path}"] = r.status_code
                if r.status_code == 403:
                    assert r.headers["content-type"] == "application/problem+json"
                    assert scope in r.json()["detail"]
        assert {k: v for k, v in answers.items() if v != 403} == {}


async def test_a_board_token_opens_no_other_websocket(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        board = token("board", store="s-001")
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                f"{ep.ws}/v1/ws/store",
                subprotocols=["passline.v1.msgpack"],  # type: ignore[list-item]
                additional_headers=auth(board),
                open_timeout=WAIT,
            )
        assert refused.value.response.status_code == 403
        for opener in (open_kds, open_hq):
            with pytest.raises(ConnectionClosed) as closed:
                await opener(ep, tok=board)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, opener
            assert "hq token" in closed.value.rcvd.reason or "kds token" in closed.value.rcvd.reason
        ws, snapshot = await open_board(ep, tok=board)  # its own feed opens
        assert snapshot["type"] == "snapshot"
        await ws.close()


async def test_the_board_feed_carries_no_order_contents(broker_with: Any) -> None:
    """What a board token can read at all: numbers and states."""
    async with broker_with() as (_, ep):
        ws, snapshot = await open_board(ep)
        async with ep.client(token("ingest")) as http:
            await http.post("/v1/orders", json=order(external_id="board-contents"))
        update = await recv_json(ws)
        assert set(update["order"]) == {"order_id", "number", "state", "since", "name"}
        assert update["order"]["name"] is None  # "Li": names are off unless configured
        assert set(snapshot) == {
            "type", "epoch", "offset", "now", "title", "ready_s", "preparing", "ready", "gone"
        }  # fmt: skip
        await ws.close()


async def test_passline_token_issue_makes_board_tokens_for_one_store(broker_with: Any) -> None:
    made = cli_token("--scope", "board", "--store", "s-001", "--ttl", "1h")
    no_store = cli("token", "issue", "--scope", "board")
    assert no_store.returncode != 0 and "a board token needs exactly one --store" in no_store.stderr
    station = cli("token", "issue", "--scope", "board", "--store", "s-001", "--station", "grill")
    assert station.returncode != 0 and "--station is only for kds tokens" in station.stderr
    async with broker_with() as (_, ep):
        ws, snapshot = await open_board(ep, tok=made)
        assert snapshot["type"] == "snapshot"
        await ws.close()
        async with ep.client(made) as http:
            assert (await http.get("/v1/stores/s-001")).status_code == 403
