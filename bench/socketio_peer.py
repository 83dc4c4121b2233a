"""A python-socketio + Redis peer: what passline is compared with (issue 13, docs/benchmarks.md).

The small app a team would write instead of passline: a python-socketio ``AsyncServer``
with ``AsyncRedisManager`` (so that more processes could share the rooms), served by
uvicorn (uvloop, httptools, websockets — the same stack as the broker). Each store's
client joins the room named after its store; ``POST /orders`` routes the order's lines to
printers as the bench store config does and emits one ``job`` event per printer to the
store's room, with a socket.io acknowledgement; the client acks each delivery. The job
carries the same fields and values as passline's ``Job``, JSON-encoded as socket.io does.
Nothing is stored: an order for a store whose client is away is lost, a job is not
retried, and there is no auth — what passline does beyond this is the difference.

    python bench/socketio_peer.py --redis redis://127.0.0.1:6379/0 --jobs-per-order 1
    # prints "listening ws=127.0.0.1:PORT http=127.0.0.1:PORT" once it accepts

``GET /stats`` answers ``{"orders", "emitted", "acked"}`` (acks as seen by the server).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import socketio
import uvicorn

JOB_TTL = timedelta(minutes=30)  # passline's default job_ttl_s
ALL = None  # a route that takes every line (the receipt)


@dataclass(frozen=True)
class Route:
    printer_id: str
    template: str
    station: str | None
    categories: frozenset[str] | None


# The printers of broker_load.py's store configs: one job per order (every category on the
# grill's kitchen printer), or three (grill, bar, receipt).
ROUTES = {
    1: (Route("kitchen", "kitchen", "Grill", frozenset({"burgers", "mains", "drinks"})),),
    3: (
        Route("kitchen", "kitchen", "Grill", frozenset({"burgers", "mains"})),
        Route("bar", "kitchen", "Bar", frozenset({"drinks"})),
        Route("receipt", "receipt", None, ALL),
    ),
}


def doc_line(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "qty": item["qty"],
        "name": item["name"],
        "modifiers": item.get("modifiers", []),
        "note": item.get("note"),
        "allergens": item.get("allergens", []),
        "course": item.get("course", 1),
        "change": None,
    }


def make_jobs(
    order: dict[str, Any], routes: tuple[Route, ...], now: datetime
) -> list[dict[str, Any]]:
    """One job per route with lines, shaped like passline's ``Job`` (DESIGN.md §5.3)."""
    key = f"{order['store_id']}|{order['channel']}|{order['external_id']}"
    order_id = "o-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    stamp = now.isoformat().replace("+00:00", "Z")
    jobs = []
    for r in routes:
        items = [i for i in order["items"] if r.categories is None or i["category"] in r.categories]
        if not items:
            continue
        doc = {
            "template": r.template,
            "store_name": "Bench store",
            "station": r.station,
            "order_ref": order.get("pickup_code") or order["external_id"],
            "channel": order["channel"],
            "service": order["service"],
            "table": order.get("table"),
            "customer": order.get("customer"),
            "guests": order.get("guests"),
            "note": order.get("note"),
            "placed_at": order["placed_at"],
            "due_at": order.get("due_at"),
            "priority": order.get("priority", "normal"),
            "revision": 1,
            "reprint": False,
            "rerouted_from": None,
            "pickup_code": order.get("pickup_code"),
            "lines": [doc_line(i) for i in items],
        }
        jid = hashlib.sha256(f"{order_id}|{r.printer_id}|{r.template}".encode()).hexdigest()
        jobs.append(
            {
                "job_id": "j-" + jid[:32],
                "order_id": order_id,
                "revision": 1,
                "printer_id": r.printer_id,
                "template": r.template,
                "doc": doc,
                "copies": 1,
                "created_at": stamp,
                "expires_at": (now + JOB_TTL).isoformat().replace("+00:00", "Z"),
            }
        )
    return jobs


class Peer:
    """The socket.io server, its Redis manager and the plain-ASGI order endpoint."""

    def __init__(self, redis_url: str, routes: tuple[Route, ...]) -> None:
        self.routes = routes
        self.counts = {"orders": 0, "emitted": 0, "acked": 0}
        manager = socketio.AsyncRedisManager(redis_url, channel="bench")
        self.sio = socketio.AsyncServer(
            async_mode="asgi", client_manager=manager, cors_allowed_origins=[]
        )
        self.sio.on("join", self.join)
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=self.http)

    async def join(self, sid: str, store: str) -> bool:
        await self.sio.enter_room(sid, store)
        return True

    def acked(self, *_: Any) -> None:
        self.counts["acked"] += 1

    async def submit(self, body: bytes) -> tuple[int, dict[str, Any]]:
        order = json.loads(body)
        jobs = make_jobs(order, self.routes, datetime.now(UTC))
        self.counts["orders"] += 1
        for job in jobs:
            await self.sio.emit("job", job, to=order["store_id"], callback=self.acked)
            self.counts["emitted"] += 1
        return 202, {"order_id": jobs[0]["order_id"] if jobs else None, "jobs": jobs_refs(jobs)}

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/orders":
            status, answer = await self.submit(body)
        elif scope["method"] == "GET" and scope["path"] == "/stats":
            status, answer = 200, self.counts
        else:
            status, answer = 404, {"detail": "not found"}
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def jobs_refs(jobs: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"job_id": j["job_id"], "printer_id": j["printer_id"]} for j in jobs]


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def main(args: argparse.Namespace) -> None:
    peer = Peer(args.redis, ROUTES[args.jobs_per_order])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        peer.app,
        loop="none",  # uvloop.run below
        http="httptools",
        ws="auto",  # websockets-sansio since uvicorn 0.50, what a default app gets
        ws_per_message_deflate=False,  # as passline's store link: small frames, no compression
        ws_ping_interval=None,  # Engine.IO pings on its own (25 s)
        log_level="warning",
        access_log=False,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it
            return
        await asyncio.sleep(0.05)
    print(f"listening ws=127.0.0.1:{port} http=127.0.0.1:{port}", flush=True)
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--jobs-per-order", type=int, choices=sorted(ROUTES), default=1)
    parser.add_argument("--port", type=int, default=0)
    import uvloop

    uvloop.run(main(parser.parse_args()))
