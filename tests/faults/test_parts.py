"""The fault run's own parts, without the processes: the schedule, the ledger's
categories, the proxy's cut and stall."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.ledger import Category, build_ledger, classify
from tests.faults.load import Submission, marker
from tests.faults.proxy import LinkProxy
from tests.faults.schedule import PRINTER_FAULTS, Fault, kinds_for, make_schedule

# -- the schedule ----------------------------------------------------------------------------------


def test_same_seed_same_schedule_and_another_seed_another() -> None:
    a = make_schedule(5, 600, "redis", nodes=("A", "B"))
    assert a == make_schedule(5, 600, "redis", nodes=("A", "B"))
    assert a != make_schedule(6, 600, "redis", nodes=("A", "B"))


@pytest.mark.parametrize("storage", ["sqlite", "redis"])
def test_ten_minutes_see_every_kind_that_applies(storage: str) -> None:
    events = make_schedule(1, 600, storage, nodes=("A", "B"))
    assert {e.kind for e in events} == set(kinds_for(storage))
    assert (Fault.REDIS_RESTART in {e.kind for e in events}) == (storage == "redis")
    # offsets in the generated plan (pure data, no clock is read): all inside the run
    assert all(3 <= e.at_s and e.at_s + e.duration_s <= 597 for e in events)


def test_faults_in_one_lane_never_overlap() -> None:
    events = make_schedule(3, 600, "redis", nodes=("A", "B"))
    for lane in (True, False):
        mine = [e for e in events if (e.kind in PRINTER_FAULTS) is lane]
        for before, after in itertools.pairwise(mine):
            assert before.at_s + before.duration_s <= after.at_s  # plan offsets, not timings


# -- the ledger ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paper", "state", "history", "expected"),
    [
        (1, "printed", ["printing", "printed"], Category.PRINTED_ONCE),
        (1, "uncertain", ["printing", "uncertain"], Category.PRINTED_ONCE),
        (0, "printed", ["printing", "printed"], Category.LOST),
        (0, "held", ["spooled", "held"], Category.LOST),
        (0, "missing", [], Category.LOST),
        (0, "uncertain", ["printing", "uncertain"], Category.UNCERTAIN),
        (0, "expired", ["held", "expired"], Category.EXPIRED),
        (2, "printed", ["printing", "printed"], Category.DOUBLED),
        (2, "uncertain", ["printing", "uncertain"], Category.DOUBLED_UNCERTAIN),
    ],
)
def test_categories(paper: int, state: str, history: list[str], expected: Category) -> None:
    assert classify(paper, state, history) is expected


def test_ledger_counts_paper_per_printer_and_names_strays() -> None:
    sub = Submission(7, {"external_id": "X-7"}, order_id="o-1")
    sub.jobs = [
        {"job_id": "j-k", "printer_id": "kitchen", "template": "kitchen", "state": "queued"},
        {"job_id": "j-r", "printer_id": "receipt", "template": "receipt", "state": "queued"},
    ]
    view = {"jobs": [{"job_id": "j-k", "printer_id": "kitchen", "template": "kitchen",
                      "state": "printed", "history": [{"state": "printed"}]}]}  # fmt: skip
    chit = f"#7\nNOTE: {marker(7)}"
    receipts = {"kitchen": [chit, chit], "bar": [chit, "garbage"], "receipt": []}
    ledger = build_ledger([sub, Submission(8, {"external_id": "X-8"})], {"o-1": view}, receipts)
    rows = {r.job_id: r for r in ledger.rows}
    assert rows["j-k"].category is Category.DOUBLED and rows["j-k"].paper == 2
    assert rows["j-r"].category is Category.LOST and rows["j-r"].state == "missing"
    assert ledger.stray_receipts == {"bar": 2}
    assert [n["external_id"] for n in ledger.never_accepted] == ["X-8"]
    assert not ledger.ok and "FAIL" in ledger.table()


# -- the proxy -------------------------------------------------------------------------------------


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_a_stall_delays_bytes_without_losing_them(echo_port: int) -> None:
    proxy = LinkProxy(echo_port)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            s.sendall(b"one")
            assert s.recv(16) == b"one"
            proxy.stall()
            s.sendall(b"two")
            s.settimeout(0.5)
            with pytest.raises(TimeoutError):
                s.recv(16)
            proxy.resume()
            s.settimeout(5)
            assert s.recv(16) == b"two"
    finally:
        proxy.close()


def test_a_cut_closes_the_connection(echo_port: int) -> None:
    proxy = LinkProxy(echo_port)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            s.sendall(b"one")
            assert s.recv(16) == b"one"
            deadline = time.monotonic() + 5
            while proxy.cut() == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                assert s.recv(16) == b""
            except ConnectionResetError:
                pass
    finally:
        proxy.close()


def test_an_expiry_before_expires_at_is_flagged_as_early() -> None:
    sub = Submission(1, {"external_id": "X-1"}, order_id="o-1")
    job = {"job_id": "j-1", "printer_id": "bar", "template": "kitchen", "state": "expired",
           "history": [{"state": "expired", "reason": "not printed by …"}]}  # fmt: skip
    future = dict(job, expires_at="2999-01-01T00:00:00+00:00")
    past = dict(job, job_id="j-2", expires_at="2000-01-01T00:00:00+00:00")
    ledger = build_ledger([sub], {"o-1": {"jobs": [future, past]}}, {"bar": []})
    assert ledger.ok and ledger.counts()[Category.EXPIRED] == 2
    assert [r.job_id for r in ledger.expired_early] == ["j-1"]
    assert "expired early" in ledger.table()


def test_a_receipt_with_two_chits_counts_for_both() -> None:
    subs = [Submission(n, {"external_id": f"X-{n}"}, order_id=f"o-{n}") for n in (1, 2)]
    view = {
        f"o-{n}": {"jobs": [{"job_id": f"j-{n}", "printer_id": "bar", "template": "kitchen",
                             "state": "printed", "history": []}]}
        for n in (1, 2)
    }  # fmt: skip
    merged = f"NOTE: {marker(1)}\n…\nNOTE: {marker(2)}"
    ledger = build_ledger(subs, view, {"bar": [merged]})
    assert [r.category for r in ledger.rows] == [Category.PRINTED_ONCE] * 2
    assert ledger.merged_receipts == {"bar": 1} and ledger.stray_receipts == {}
