"""Fuzz the REST bodies (DESIGN.md §5.2, §7) through the real broker over HTTP on
127.0.0.1: submit, batch, amend, cancel, reprint and a store config, with a token that
may send them, so every body reaches its decoder. Valid bodies mutated field by field,
mutated JSON text and random bytes: the answer is a 2xx or a 4xx problem+json (a 422
names each failing field with ``loc`` and ``path``), never a 5xx, never a hang."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from tests.broker.helpers import WAIT, auth, order, store_config, token
from tests.security.fuzzing import fuzz, never_hangs

PROBLEM = "application/problem+json"
FUZZ_STORE = "s-fuzz"  # configs are fuzzed on their own store; s-001 keeps its routing
AMENDMENT = {
    "add": [{"line_id": "9", "sku": "C01", "name": "Cola", "qty": 1, "category": "drinks"}],
    "change": [{"line_id": "1", "qty": 3, "modifiers": ["no ice"]}],
    "void": ["3"],
}
TEMPLATES: dict[str, Any] = {
    "submit": order(external_id="fuzz"),
    "batch": {"orders": [order(external_id="fuzz-b1"), order(external_id="fuzz-b2")]},
    "amend": AMENDMENT,
    "cancel": {"reason": "customer left"},
    "reprint": {"templates": ["kitchen"], "printer_id": "kitchen"},
    "config": store_config(name="Fuzz Noodle House"),
}
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "s-001", "1", "drinks", "kitchen", "2026-11-21T12:03:00+08:00"]),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "\u202e宫保"]),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths_of(value, (*prefix, i))
    return out


def mutate_tree(body: Any, draw: st.DrawFn) -> Any:
    """Replace, delete, add, repeat or wrap what sits at a random path of the body."""
    body = json.loads(json.dumps(body))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths_of(body)))
        op = draw(st.sampled_from(["replace", "delete", "add", "repeat", "wrap"]))
        if not path:
            body = draw(VALUES) if op == "replace" else [body] if op == "wrap" else body
            continue
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        if op == "replace":
            parent[key] = draw(VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(VALUES)
        elif op == "repeat" and isinstance(parent, list):
            parent[key:key] = [parent[key]] * draw(st.integers(1, 30))
        elif op == "wrap":
            parent[key] = [parent[key]]
    return body


def mutate_text(raw: bytes, draw: st.DrawFn) -> bytes:
    buf = bytearray(raw)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(buf)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "nest"]))
        if op == "flip" and pos < len(buf):
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del buf[pos : pos + draw(st.integers(1, 40))]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            depth = draw(st.integers(1, 3000))
            buf[pos:pos] = b"[" * depth + b"1" + b"]" * depth
    return bytes(buf)


@st.composite
def bodies(draw: st.DrawFn, route: str) -> bytes:
    template = TEMPLATES[route]
    kind = draw(st.sampled_from(["tree", "tree", "text", "bytes"]))
    if kind == "tree":
        return json.dumps(mutate_tree(template, draw)).encode()
    if kind == "text":
        return mutate_text(json.dumps(template, ensure_ascii=False).encode(), draw)
    return draw(st.binary(max_size=512))


def request_for(route: str, order_id: str, tokens: dict[str, str]) -> tuple[str, str, str]:
    """(method, path, token) of a route."""
    if route == "config":
        return "PUT", f"/v1/stores/{FUZZ_STORE}/config", tokens["hq"]
    if route in ("submit", "batch"):
        return "POST", "/v1/orders" + (":batch" if route == "batch" else ""), tokens["ingest"]
    return "POST", f"/v1/orders/{order_id}/{route}", tokens["ingest"]


def check_problem(status: int, body: Any, where: str) -> None:
    assert isinstance(body, dict) and body.get("status") == status, where
    assert isinstance(body.get("title"), str), where
    if status == 422:
        assert body.get("errors"), f"{where}: a 422 without errors"
        for err in body["errors"]:
            loc = err.get("loc")
            assert isinstance(loc, list), f"{where}: {err}"
            assert err.get("path") == ".".join(str(p) for p in loc), f"{where}: {err}"


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def check_answer(response: httpx.Response, body: bytes, where: str) -> None:
    status = response.status_code
    assert status in ANSWERS, f"{where}: {status} {response.text[:300]}"
    if status >= 400:
        assert response.headers["content-type"] == PROBLEM, where
        check_problem(status, response.json(), where)
        if body and not is_json(body):  # refused whole: no field to name, no offset posing as one
            assert status == 422 and all(e["loc"] == [] for e in response.json()["errors"])
        return
    answer = response.json()
    if status == 207:
        for result in answer["results"]:
            assert result["status"] < 500, f"{where}: {result}"
            if result["status"] >= 400:
                check_problem(result["status"], result["body"], where)


ROUTES = sorted(TEMPLATES)
#: What a body can earn with a token that may send it (docs/rest.md#errors-problemjson).
ANSWERS = {200, 202, 207, 404, 409, 422}
# Before: these reached FastAPI's json.loads and came back 400 "There was an error parsing
# the body" with no field named (bad UTF-8, nesting past the recursion limit, an integer
# of 5,000 digits), or 422 with the byte offset 0 posing as a field path.
BAD_UTF8 = b'{"reason": "\xff"}'
DEEP = b"[" * 5000 + b"]" * 5000
LONG_INT = b'{"change": [{"line_id": "1", "qty": ' + b"9" * 5000 + b"}]}"


def fuzz_routes(http_url: str, order_id: str) -> None:
    tokens = {"ingest": token("ingest"), "hq": token("hq")}
    with httpx.Client(base_url=http_url, timeout=WAIT) as http:

        @fuzz(weight=1.0)
        @given(st.sampled_from(ROUTES).flatmap(lambda r: st.tuples(st.just(r), bodies(r))))
        @example(("cancel", BAD_UTF8))
        @example(("batch", DEEP))
        @example(("config", DEEP))
        @example(("amend", LONG_INT))
        @example(("reprint", b"\xff\xfe"))
        @example(("submit", DEEP))
        def one(case: tuple[str, bytes]) -> None:
            route, body = case
            method, path, tok = request_for(route, order_id, tokens)
            headers = {**auth(tok), "Content-Type": "application/json"}
            with never_hangs(f"{method} {path}"):
                response = http.request(method, path, content=body, headers=headers)
            check_answer(response, body, f"{method} {path} {body[:200]!r}")

        one()


async def test_rest_bodies_get_a_2xx_or_a_4xx_problem(broker_with: Any) -> None:
    async with broker_with() as (_, ep):
        async with ep.client(token("hq")) as http:
            r = await http.put(f"/v1/stores/{FUZZ_STORE}/config", json=TEMPLATES["config"])
            assert r.status_code == 200, r.text
        async with ep.client(token("ingest")) as http:
            r = await http.post("/v1/orders", json=order(external_id=f"seed-{random.random()}"))
            assert r.status_code == 202, r.text
        # hypothesis drives blocking requests from a thread; this loop serves the broker
        await asyncio.to_thread(fuzz_routes, ep.http, r.json()["order_id"])
