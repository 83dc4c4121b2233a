"""What only the redis backend does: wake other nodes, share HQ deltas, notice dead nodes,
survive Redis going away (DESIGN.md §5.5)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from broker.errors import ConfigError, StorageError
from broker.storage import Entry, EntryKind, Kind, NewEntry, Put, Tx, open_storage
from broker.storage.redis import RedisStorage
from tests.e2e.stack import eventually
from tests.redis_server import RedisServer, fail_one_subscribe, isolated


@pytest.fixture
async def two_nodes(redis_url: str) -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    url = isolated(redis_url)
    prefix = url.rsplit("prefix=", 1)[1]
    base = url.split("?", 1)[0]
    # no periodic sweep: a wake-up must come through pub/sub
    a = RedisStorage(base, prefix=prefix, sweep_s=3600)
    b = RedisStorage(base, prefix=prefix, sweep_s=3600)
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()


def job(n: int) -> NewEntry:
    return NewEntry(EntryKind.JOB, f'{{"n":{n}}}', f"j{n}")


async def test_a_commit_on_one_node_wakes_the_node_watching_the_store(
    two_nodes: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = two_nodes
    woken: list[tuple[str, str, int, int]] = []

    def on_b(store: str, epoch: str, head: int, entries: Sequence[Entry]) -> None:
        woken.append((store, epoch, head, len(entries)))

    b.listen(on_b)
    a.listen(lambda *args: None)
    await b.watch("s1")
    c1 = await a.commit("s1", Tx([], [job(1), job(2)]))
    await a.commit("s2", Tx([], [job(1)]))  # not watched by b: no wake-up
    await eventually(lambda: asyncio.sleep(0, woken), within=10, what="b woken")
    assert woken == [("s1", c1.epoch, 2, 0)]  # head and epoch only: b reads the gap itself
    got = await b.read("s1", 0, 10)
    assert [e.payload for e in got.entries] == ['{"n":1}', '{"n":2}']
    await b.unwatch("s1")
    await a.commit("s1", Tx([], [job(3)]))
    await asyncio.sleep(0.3)
    assert len(woken) == 1


async def test_hq_deltas_reach_every_node_with_hq_screens(
    two_nodes: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = two_nodes
    seen_a: list[str] = []
    seen_b: list[str] = []
    a.listen_hq(seen_a.append)
    b.listen_hq(seen_b.append)
    b.watch_hq(True)
    a.watch_hq(True)
    await asyncio.sleep(0.2)  # the readers have taken their starting point
    a.publish_hq('{"n":1}')
    b.publish_hq('{"n":2}')
    want = ['{"n":1}', '{"n":2}']
    await eventually(lambda: asyncio.sleep(0, len(seen_a) == len(seen_b) == 2), within=10)
    assert sorted(seen_a) == sorted(seen_b) == want


async def test_a_node_that_stops_beating_is_claimed_once(
    two_nodes: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = two_nodes
    await a.redis.zadd(f"{a.prefix}:nodes", {"gone-1": time.time() - 1})
    claims = await asyncio.gather(a.claim_dead_nodes(), b.claim_dead_nodes())
    assert sorted(claims, key=len) == [[], ["gone-1"]]
    assert await a.claim_dead_nodes() == []


async def test_redis_down_is_a_storage_error_and_recovery_is_automatic(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", aof=True)
    server.start()
    try:
        store = RedisStorage(server.url, sweep_s=3600)
        await store.start()
        seen: list[int] = []
        store.listen(lambda s, e, head, entries: seen.append(head))
        await store.watch("s1")
        first = await store.commit("s1", Tx([Put(Kind.ORDER, "o1", "{}", 1, 0)], [job(1)]))
        server.stop()
        with pytest.raises(StorageError):
            await store.commit("s1", Tx([], [job(2)]))
        with pytest.raises(StorageError):
            await store.ping()
        with pytest.raises(StorageError):
            await store.get(Kind.ORDER, "o1")
        server.start()  # AOF: what was acknowledged is back
        await eventually(lambda: pings(store), within=20, what="ping after restart")
        got = await store.read("s1", 0, 10)
        assert got.epoch == first.epoch and [e.offset for e in got.entries] == [1]
        other = await open_storage(server.url)  # another node: its commit must wake this one
        again = await other.commit("s1", Tx([], [job(2)]))
        assert again.offsets == (2,) and again.epoch == first.epoch
        await eventually(lambda: asyncio.sleep(0, 2 in seen), within=10, what="resubscribed")
        assert (await store.get(Kind.ORDER, "o1")) is not None
        await store.watch("s-new")  # a store first linked after the restart is woken too
        born = await other.commit("s-new", Tx([], [job(1)]))
        await eventually(lambda: asyncio.sleep(0, born.head in seen), within=10, what="new")
        await other.aclose()
        await store.aclose()
    finally:
        server.stop()


async def test_a_failed_subscribe_is_mended_and_later_watches_work(
    two_nodes: tuple[RedisStorage, RedisStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_nodes
    woken: list[tuple[str, int]] = []
    b.listen(lambda store, epoch, head, entries: woken.append((store, head)))
    a.listen(lambda *args: None)
    fired = fail_one_subscribe(monkeypatch, "s1")
    with contextlib.suppress(StorageError):  # that link may be refused: try again later
        await b.watch("s1")
    assert fired
    await b.watch("s2")  # a new link after the hiccup, without restarting anything
    await b.watch("s1")
    assert await pings(b)
    for n, store in enumerate(("s2", "s1"), start=1):
        await a.commit(store, Tx([], [job(n)] * n))
        await eventually(lambda s=store, h=n: asyncio.sleep(0, (s, h) in woken), within=10)


async def pings(store: object) -> bool:
    try:
        await store.ping()  # type: ignore[attr-defined]
    except StorageError:
        return False
    return True


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:1/0", "redis://127.0.0.1:6379/0?prefix=a:b", "redis://h/0?record_ttl_s=x"],
)
async def test_bad_redis_urls_say_what_is_wrong(url: str) -> None:
    with pytest.raises((ConfigError, StorageError)) as info:
        await open_storage(url)
    assert ("redis" in str(info.value)) and len(str(info.value).splitlines()) == 1


async def test_reads_after_a_redis_restart_reconnect_instead_of_failing(tmp_path: Path) -> None:
    """Every pooled read connection is dead after a restart: a read retries on a fresh one
    (it failed with 503 "Connection closed by server" once per stale connection)."""
    server = RedisServer(tmp_path / "redis", aof=True)
    server.start()
    try:
        store = RedisStorage(server.url, sweep_s=3600, max_connections=4)
        await store.start()
        await store.commit("s1", Tx([Put(Kind.ORDER, "o1", "{}", 1, 0)], [job(1)]))
        # fill the pool: four connections, each used once
        await asyncio.gather(*(store.get(Kind.ORDER, "o1") for _ in range(16)))
        server.stop()
        server.start()
        probe = aioredis.Redis.from_url(server.url)  # up again, asked on its own connection
        await eventually(lambda: _answers(probe), within=20, what="redis back")
        await probe.aclose()
        for _ in range(8):  # whichever pooled connection each read gets
            assert (await store.get(Kind.ORDER, "o1")) is not None
        assert (await store.read("s1", 0, 10)).head == 1
        await store.aclose()
    finally:
        server.stop()


async def _answers(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False


def test_the_commit_arguments_follow_the_one_layout_the_script_is_generated_from() -> None:
    from broker.storage.base import EntryKind, Kind, NewEntry, Put, Tally, Tx
    from broker.storage.redis_commit import (
        COMMIT_LUA,
        ENTRY,
        HEADER,
        PUT,
        PUT_KEYS,
        TALLY,
        Layout,
        commit_args,
    )

    tx = Tx(
        [Put(Kind.JOB, "j-1", "{}", 1, 0, True), Put(Kind.CONFIG, "s-1", "{}", 2, 1)],
        [NewEntry(EntryKind.JOB, "{}", "j-1")],
        [Tally("sos/2031-05-06", "a", "2,")],
    )
    layout = Layout(lambda sid, *parts: ":".join((sid, *parts)), "chan", 100, 60, "node-a", 90)
    keys, args = commit_args("s-1", tx, layout)
    assert len(keys) == 2 + 2 * len(PUT_KEYS) + 1
    assert keys[-1] == "s-1:t:sos/2031-05-06"
    assert len(args) == len(HEADER) + 2 * len(PUT) + len(TALLY) + len(ENTRY) + 1
    header = dict(zip(HEADER, args[: len(HEADER)], strict=True))
    assert (header["ntally"], header["tally_ttl"]) == ("1", "90")
    second_put = args[len(HEADER) + len(PUT) : len(HEADER) + 2 * len(PUT)]
    assert dict(zip(PUT, second_put, strict=True))["mode"] == "fleet"
    tally_at = len(HEADER) + 2 * len(PUT)
    assert args[tally_at : tally_at + len(TALLY)] == ["a", "2,"]
    assert args[-1] == "node-a"
    # the script reads the node id where commit_args put it
    node_at = len(HEADER) + 1 + 2 * len(PUT) + len(TALLY) + len(ENTRY)
    lua_node = (
        f"ARGV[{len(HEADER) + 1} + nput * {len(PUT)} + ntally * {len(TALLY)} + nent * {len(ENTRY)}]"
    )
    assert lua_node in COMMIT_LUA
    assert args[node_at - 1] == "node-a"


async def test_a_tally_lives_report_ttl_s_after_its_last_addition(redis_url: str) -> None:
    """Report tallies have their own retention (docs/reports.md#retention), longer than
    the orders and tickets they were measured from."""
    from broker.storage import Tally

    url = isolated(redis_url)
    store = await open_storage(url + "&record_ttl_s=60&report_ttl_s=1200")
    try:
        assert isinstance(store, RedisStorage)
        tx = Tx([Put(Kind.TICKET, "t1", "{}", 1, 0)], [], [Tally("d", "a", "5,")])
        await store.commit("s1", tx)
        r = store.redis
        ttl = await r.ttl(store._sk("s1", "t", "d"))
        assert 1100 < ttl <= 1200
        assert 0 < await r.ttl(store._sk("s1", "r", "ticket", "t1")) <= 60
        assert await store.tallies("s1", ["d"]) == [{"a": "5,"}]
    finally:
        await store.aclose()


async def test_a_wake_up_lost_while_redis_py_reconnects_the_channel_is_caught_up(
    two_nodes: tuple[RedisStorage, RedisStorage],
) -> None:
    """The server drops the wake-up channel's connection (a restart, a proxy, CLIENT KILL):
    redis-py reconnects and subscribes again by itself, and a commit published meanwhile
    never reaches the channel. The node must read what it missed, not wait for the next
    sweep (an hour here): CI saw this as a node that never heard of a commit after a Redis
    restart (test_redis_down_is_a_storage_error_and_recovery_is_automatic)."""
    a, b = two_nodes
    seen: list[int] = []
    b.listen(lambda store, epoch, head, entries: seen.append(head))
    a.listen(lambda *args: None)
    await b.watch("s1")
    first = await a.commit("s1", Tx([], [job(1)]))
    await eventually(lambda: asyncio.sleep(0, first.head in seen), within=10, what="live")
    killer = aioredis.Redis.from_url(a.url, decode_responses=True)
    try:
        await killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        missed = await a.commit("s1", Tx([], [job(2)]))  # published before b is back
    finally:
        await killer.aclose()
    await eventually(lambda: asyncio.sleep(0, missed.head in seen), within=10, what="caught up")
