"""What an idle store link holds (issue 13, ``bench/link_memory.py``): the connection's
instance dict stays CPython's compact split dict, it logs through websockets' logger
without an adapter of its own, and websockets' queue of received frames
is a list (``broker.ws.FrameQueue``) that does what the deque it replaces did."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from broker.ws import FrameQueue
from tests.broker.helpers import open_store, recv_msgpack, store_config, token
from tests.broker.test_store_link import NOW, PRINTED_HISTORY, eventually, state_is, submit

memory_only = pytest.mark.parametrize("storage", ["memory"], indirect=True)

#: CPython 3.11-3.13 keep an instance dict "split" (values only; keys shared by the class)
#: only while it has fewer than 30 keys; from the 30th it is a full table of 1.5 KiB.
SPLIT_DICT_KEYS = 30


@memory_only
async def test_a_live_link_keeps_a_compact_dict_and_reads_a_burst_of_frames(
    broker_with: Any,
) -> None:
    async with broker_with() as (b, ep):
        async with ep.client(token("hq")) as http:
            r = await http.put("/v1/stores/s-001/config", json=store_config())
            assert r.status_code == 200
        ws, _ = await open_store(ep, "s-001")
        conn = b.ws.links["s-001"].conn
        assert type(conn.recv_messages.frames.queue) is FrameQueue
        assert len(vars(conn)) < SPLIT_DICT_KEYS, sorted(vars(conn))
        assert conn.logger is conn.protocol.logger is logging.getLogger("websockets.server")

        [sub] = await submit(ep, 1)
        job = await recv_msgpack(ws)
        job_id = job["job"]["job_id"]
        ack = msgpack.packb({"type": "ack", "offset": job["offset"]}, use_bin_type=True)
        await ws.send([ack[:3], ack[3:7], ack[7:]])  # one message in three frames
        for state in ("printing", "printed"):  # and two more right behind it
            report = {"type": "job_state", "job_id": job_id, "state": state, "at": NOW}
            await ws.send(msgpack.packb(report, use_bin_type=True))
        view = await eventually(state_is(ep, job_id, "printed"))
        assert [h["state"] for h in view["history"]] == PRINTED_HISTORY
        assert sub["jobs"][0]["job_id"] == job_id
        await ws.close()


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 99)),
        st.tuples(st.just("popleft"), st.none()),
        st.tuples(st.just("extendleft"), st.lists(st.integers(0, 99), max_size=4)),
    ),
    max_size=40,
)


def frame(n: int) -> Frame:
    return Frame(Opcode.BINARY, bytes([n]))


@given(ops)
def test_the_frame_queue_does_what_a_deque_does(script: list[tuple[str, Any]]) -> None:
    """The calls websockets' ``SimpleQueue`` makes, on both, give the same frames."""
    ours: FrameQueue = FrameQueue()
    theirs: deque[Frame] = deque()
    for op, arg in script:
        if op == "append":
            ours.append(frame(arg))
            theirs.append(frame(arg))
        elif op == "popleft":
            if not theirs:
                assert not ours and len(ours) == 0
                continue
            assert ours.popleft() == theirs.popleft()
        else:
            frames = [frame(n) for n in arg]
            ours.extendleft(reversed(frames))  # as SimpleQueue.put_back calls it
            theirs.extendleft(reversed(frames))
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
