"""The Redis commit script and its argument layout, from one place.

A commit is one ``EVALSHA``: a header, then one group of fields per put, then one per
tally, then one per stream entry, then this node's id. The field lists below are the only
statement of that layout: ``commit_args`` builds ``ARGV`` from them, and ``COMMIT_LUA`` is
generated from them (every ``ARGV[...]`` offset in it is computed here), so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from broker.storage.base import Kind, Tx
from broker.storage.memory import new_epoch

#: ``ARGV`` header, in order.
HEADER = ("nput", "ntally", "nent", "maxlen", "epoch", "channel", "ttl", "tally_ttl")
#: The fields of one put.
PUT = ("key", "version", "expect", "live", "doc", "mode")
#: The fields of one tally mark (appended to a field of the tally's hash, ``KEYS``).
TALLY = ("field", "mark")
#: The fields of one stream entry.
ENTRY = ("kind", "tag", "payload")
#: ``KEYS`` per put after the store's two (``m``, ``x``).
PUT_KEYS = ("record", "live_set", "all_set")

FLEET_KINDS = frozenset({Kind.CONFIG, Kind.LINK, Kind.PRINTER, Kind.BASE, Kind.RELEASE})
UNINDEXED_LIVE = frozenset({Kind.ORDER})  # never scanned: no live set to grow forever


def _h(name: str) -> str:
    """``ARGV[n]`` of a header field (Lua counts from 1)."""
    return f"ARGV[{HEADER.index(name) + 1}]"


def _p(name: str) -> str:
    """A put field's offset from its group's first field ``o``."""
    n = PUT.index(name)
    return "ARGV[o]" if n == 0 else f"ARGV[o + {n}]"


def _e(name: str) -> str:
    n = ENTRY.index(name)
    return "ARGV[e]" if n == 0 else f"ARGV[e + {n}]"


def _t(name: str) -> str:
    n = TALLY.index(name)
    return "ARGV[a]" if n == 0 else f"ARGV[a + {n}]"


_PUTS_AT = len(HEADER) + 1  # the first put field's index in ARGV
_NK = len(PUT_KEYS)

COMMIT_LUA = f"""
local nput = tonumber({_h("nput")})
local ntally = tonumber({_h("ntally")})
local nent = tonumber({_h("nent")})
local maxlen = {_h("maxlen")}
local ttl = tonumber({_h("ttl")})
local tally_ttl = tonumber({_h("tally_ttl")})
for i = 1, nput do
  local o = {_PUTS_AT} + (i - 1) * {len(PUT)}
  local cur = tonumber(redis.call('HGET', KEYS[2 + (i - 1) * {_NK} + 1], 'v') or '0')
  if cur ~= tonumber({_p("expect")}) then return {{'conflict', i, cur}} end
end
for i = 1, nput do
  local base = 2 + (i - 1) * {_NK}
  local rk, lk, ak = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local o = {_PUTS_AT} + (i - 1) * {len(PUT)}
  local key, live, mode = {_p("key")}, {_p("live")}, {_p("mode")}
  redis.call('HSET', rk, 'v', {_p("version")}, 'l', live, 'd', {_p("doc")})
  if mode == 'fleet' then
    redis.call('SADD', ak, key)
  else
    redis.call('EXPIRE', rk, ttl)
    if mode == 'live' then
      if live == '1' then redis.call('SADD', lk, key) else redis.call('SREM', lk, key) end
    end
  end
end
for j = 1, ntally do
  local a = {_PUTS_AT} + nput * {len(PUT)} + (j - 1) * {len(TALLY)}
  local tk = KEYS[2 + nput * {_NK} + j]
  local marks = redis.call('HGET', tk, {_t("field")}) or ''
  redis.call('HSET', tk, {_t("field")}, marks .. {_t("mark")})
  redis.call('EXPIRE', tk, tally_ttl)
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = {_h("epoch")}
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'head', 0)
end
local head = tonumber(redis.call('HGET', KEYS[1], 'head'))
if nent > 0 then
  local e = {_PUTS_AT} + nput * {len(PUT)} + ntally * {len(TALLY)}
  for j = 1, nent do
    head = head + 1
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, head .. '-0',
               'k', {_e("kind")}, 't', {_e("tag")}, 'p', {_e("payload")})
    e = e + {len(ENTRY)}
  end
  redis.call('HSET', KEYS[1], 'head', head)
  local node = ARGV[{_PUTS_AT} + nput * {len(PUT)} + ntally * {len(TALLY)} + nent * {len(ENTRY)}]
  redis.call('SPUBLISH', {_h("channel")}, head .. ':' .. epoch .. ':' .. node)
end
return {{'ok', epoch, head, redis.call('XLEN', KEYS[2])}}
"""


class Layout(NamedTuple):
    """What a commit's keys and header need from the storage."""

    store_key: Callable[..., str]  # (store_id, *parts) -> key with the store's hash tag
    channel: str
    max_len: int
    ttl: int
    node_id: str
    tally_ttl: int


def put_mode(kind: Kind) -> str:
    if kind in FLEET_KINDS:
        return "fleet"
    return "ttl" if kind in UNINDEXED_LIVE else "live"


def commit_args(store_id: str, tx: Tx, layout: Layout) -> tuple[list[str], list[str]]:
    """``KEYS`` and ``ARGV`` of one commit, in ``HEADER``/``PUT``/``ENTRY`` order."""
    sk = layout.store_key
    keys = [sk(store_id, "m"), sk(store_id, "x")]
    header = {
        "nput": str(len(tx.puts)),
        "nent": str(len(tx.entries)),
        "maxlen": str(layout.max_len),
        "epoch": new_epoch(),
        "channel": layout.channel,
        "ttl": str(layout.ttl),
        "ntally": str(len(tx.tallies)),
        "tally_ttl": str(layout.tally_ttl),
    }
    args = [header[name] for name in HEADER]
    for p in tx.puts:
        k = p.kind.value
        put_keys = {
            "record": sk(store_id, "r", k, p.key),
            "live_set": sk(store_id, "live", k),
            "all_set": sk(store_id, "all", k),
        }
        keys += [put_keys[name] for name in PUT_KEYS]
        fields = {
            "key": p.key,
            "version": str(p.version),
            "expect": str(p.expect),
            "live": "1" if p.live else "0",
            "doc": p.doc,
            "mode": put_mode(p.kind),
        }
        args += [fields[name] for name in PUT]
    for t in tx.tallies:
        keys.append(sk(store_id, "t", t.key))
        tally = {"field": t.field, "mark": t.mark}
        args += [tally[name] for name in TALLY]
    for e in tx.entries:
        fields = {"kind": e.kind.value, "tag": e.tag, "payload": e.payload}
        args += [fields[name] for name in ENTRY]
    args.append(layout.node_id)  # this node's own wake-ups are skipped: it has the entries
    return keys, args
