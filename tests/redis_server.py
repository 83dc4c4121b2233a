"""A real ``redis-server`` for the tests: the one the test command started
(``PASSLINE_TEST_REDIS_URL``), or one of our own on a free port."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ENV = "PASSLINE_TEST_REDIS_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` in ``workdir`` (AOF on unless told otherwise), restartable."""

    def __init__(self, workdir: Path, port: int | None = None, aof: bool = True) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed: run the tests with ./scripts/test")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        args += ["--save", "", "--logfile", str(self.workdir / "redis.log")]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else []
        args += [] if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start; see {self.workdir / 'redis.log'}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()  # SIGTERM: redis flushes the AOF and exits
        self.proc.wait(timeout=20)
        self.proc = None


def shared_url() -> tuple[str, RedisServer | None]:
    """The test command's Redis, or a new one (the caller stops it)."""
    url = os.environ.get(ENV)
    if url:
        return url, None
    import tempfile

    server = RedisServer(Path(tempfile.mkdtemp(prefix="passline-redis-")), aof=False)
    server.start()
    return server.url, server


def isolated(url: str) -> str:
    """``url`` with a key prefix of its own: tests sharing one Redis never meet."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}prefix=t{secrets.token_hex(6)}"


def fail_one_subscribe(monkeypatch: Any, store: str) -> list[str]:
    """Fault injection: the next SSUBSCRIBE naming ``store``'s channel fails as a reset
    connection would, while the wake-up channel's own connection stays up (a Redis
    hiccup that the subscriber loop never sees). Returns a list that gets ``store`` once
    the fault fired."""
    from redis.asyncio.client import PubSub
    from redis.exceptions import ConnectionError as RedisConnectionError

    real = PubSub.ssubscribe
    fired: list[str] = []

    async def ssubscribe(self: PubSub, *args: Any, **kw: Any) -> Any:
        if not fired and any(f"{{{store}}}" in str(a) for a in args):
            fired.append(store)
            raise RedisConnectionError("injected: connection reset by peer")
        return await real(self, *args, **kw)

    monkeypatch.setattr(PubSub, "ssubscribe", ssubscribe)
    return fired
