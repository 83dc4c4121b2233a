"""A bare websockets relay: the baseline the broker is measured against (docs/benchmarks.md).

One publisher connection sends ``{"to": i, ...}`` frames; the relay forwards each frame
as-is to client ``i``. No auth, no storage, no routing: what the websockets library alone
costs to move one message from one socket to another on this machine.

    python bench/relay_baseline.py --port 0     # prints "listening ws=HOST:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, serve

clients: dict[str, ServerConnection] = {}


async def handler(ws: ServerConnection) -> None:
    assert ws.request is not None
    path = ws.request.path
    if path.startswith("/sub/"):
        name = path.removeprefix("/sub/")
        clients[name] = ws
        try:
            async for _ in ws:  # acks: read and drop
                pass
        finally:
            clients.pop(name, None)
        return
    async for frame in ws:  # the publisher
        peer = clients.get(json.loads(frame)["to"])
        if peer is not None:
            await peer.send(frame)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**20) as server:
        print(f"listening ws=127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.port))
    except KeyboardInterrupt:
        sys.exit(0)
