"""One estimate per branch change for the whole network (`EWT_SHARED`, `waits/shared.py`):
the processes sharing a Redis make each branch's estimate once and read it from there.

Against the real Redis on 127.0.0.1:6379, database 11 (emptied before and after each test).
A second process is simulated by emptying this process's cache (`live.clear_cache()`: what a
process that never read the branch has), and one test runs a real second process.

Hand-computed waits as in test_waits_wiring.py: no history, so each service takes exactly its
expected duration (teller 240 s), no arrivals, no abandonment.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select

from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.waits import live, shared
from queue_app.waits.estimator import Estimate, Estimates

from .servers import free_port

REDIS_URL = "redis://127.0.0.1:6379/11"
ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """The monotonic clock, stopped: the test moves it by hand (other reads of the same process,
    the quote at issue, use the real one)."""

    def __init__(self):
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(app, monkeypatch):
    """Shared estimates on, in Redis database 11; the raw client for the test to look in."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    monkeypatch.setitem(app.config, "EWT_SHARED", True)
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_URL)
    shared.reset()
    live.clear_cache()
    yield client
    live.clear_cache()
    shared.reset()
    client.flushdb()


@pytest.fixture
def teller_floor(make, now, store):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["cs"])])
    staff = make.user(branches=[b])
    make.open_counter(make.counter(b, "Loket 1"), staff, now=now)
    db.session.commit()
    return b


def _fresh(b: Branch) -> Branch:
    return db.session.scalar(select(Branch).where(Branch.id == b.id))


def _seq(b: Branch) -> int:
    return db.session.scalar(select(Branch.event_seq).where(Branch.id == b.id))


def _another_process() -> None:
    """From here on the reader is a process that has estimated nothing itself."""
    live.clear_cache()


def _change(make, b, now, seconds) -> None:
    make.ticket(b, "teller", now=now + timedelta(seconds=seconds))
    db.session.commit()


def _backdate(client, branch_id: int, seconds: float) -> None:
    """The stored estimate as it will be `seconds` later: made that much earlier."""
    name = shared.key(branch_id, live.DEFAULT_RUNS)
    data = json.loads(client.get(name))
    data["made"] -= seconds
    client.set(name, json.dumps(data), ex=shared.TTL_S)


def test_another_process_uses_the_estimate_made_for_the_change(make, now, teller_floor, store):
    b = teller_floor
    teller = make.service(b, "teller").id
    _change(make, b, now, 1)
    before = live.runs_made
    first = live.branch_estimates(_fresh(b))  # process A
    assert live.runs_made == before + 1
    assert first.seq == _seq(b)
    assert first.new_wait(teller).mean_s == 240.0  # after the one Loket 1 calls at once
    stored = store.get(shared.key(b.id, live.DEFAULT_RUNS))
    assert json.loads(stored)["seq"] == first.seq  # JSON, with the sequence it was made for
    assert 0 < store.ttl(shared.key(b.id, live.DEFAULT_RUNS)) <= shared.TTL_S
    assert not store.exists(shared.claim_key(b.id, live.DEFAULT_RUNS))  # released

    _another_process()  # process B: the same numbers, no run
    second = live.branch_estimates(_fresh(b))
    assert live.runs_made == before + 1
    assert second == first and second is not first
    assert live.pending(b.id) is None
    assert live.last_estimates(b.id) is second
    assert live.branch_estimates(_fresh(b)) is second  # kept in B's cache

    # a change: estimated once, by whichever process reads first (B)
    _change(make, b, now, 2)
    third = live.branch_estimates(_fresh(b))
    assert live.runs_made == before + 2
    assert third.seq == _seq(b) and third.new_wait(teller).mean_s == 480.0
    _another_process()  # process A again
    assert live.branch_estimates(_fresh(b)) == third
    assert live.runs_made == before + 2
    # the test helper: no shared estimate left, the next reader makes one
    store.set("not-ours", "1")
    shared.clear()
    assert store.keys("queue_app:ewt:*") == [] and store.get("not-ours") == b"1"
    _another_process()
    assert live.branch_estimates(_fresh(b)) == third
    assert live.runs_made == before + 3


def test_live_round_trips_exactly_through_json():
    at = datetime(2026, 3, 3, 10, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Jakarta"))
    original = live.Live(
        at=at,
        estimates=Estimates(
            tickets={
                7: Estimate(0.1 + 0.2, 1 / 3, math.inf, 0.97),
                12: Estimate(0, 0, 0, 1.0),
            },
            new={3: Estimate(240.0, 200.5, 301.25, 1.0), 4: Estimate(math.inf, 0.0, 7.0, 0.0)},
        ),
        serving=frozenset({3, 4}),
        open_counters=frozenset({21}),
        seq=41,
    )
    decoded, made = shared.decode(shared.encode(original, 1234.5))
    assert decoded == original and made == 1234.5
    assert decoded.at.tzinfo == ZoneInfo("Asia/Jakarta") and decoded.at == at
    assert decoded.at.utcoffset() == at.utcoffset()
    assert all(type(k) is int for k in decoded.estimates.tickets)
    assert all(type(k) is int for k in decoded.estimates.new)
    assert type(decoded.estimates.tickets[12].mean_s) is int  # as made, not turned into a float
    assert isinstance(decoded.serving, frozenset) and isinstance(decoded.open_counters, frozenset)
    utc = live.Live(at=datetime(2026, 3, 3, 3, 0, tzinfo=UTC), estimates=Estimates({}, {}))
    back, _ = shared.decode(shared.encode(utc, 0.0))
    assert back == utc and back.seq is None and back.at.utcoffset() == timedelta(0)
    assert shared.decode(b'{"v": 999}') is None  # another format: made again
    other = json.loads(shared.encode(original, 1.0))
    other["fields"] = ["mean_s", "low_s", "high_s"]  # another version of Estimate
    assert shared.decode(json.dumps(other)) is None
    assert shared.decode(b"not json") is None


def test_within_the_interval_the_stored_estimate_is_pending(
    app, make, now, teller_floor, store, monkeypatch
):
    monkeypatch.setitem(app.config, "EWT_MIN_INTERVAL_S", 30.0)
    b = teller_floor
    before = live.runs_made
    first = live.branch_estimates(_fresh(b))  # process A
    assert live.runs_made == before + 1

    _another_process()  # process B, on its own clock, after a change a moment later
    clock = Clock()
    _change(make, b, now, 1)
    got = live.branch_estimates(_fresh(b), clock=clock)
    assert got == first and got.seq == _seq(b) - 1
    assert live.runs_made == before + 1
    asked, moment = live.pending(b.id)
    assert asked == _seq(b)
    # the end of A's interval on B's clock: at most 30 s from now
    assert clock.t < moment <= clock.t + 30.0
    assert live.last_estimates_pending(b.id, clock=clock) == (got, True)
    assert live.branch_estimates(_fresh(b), clock=clock) is got  # still pending
    assert live.runs_made == before + 1

    # the interval is over (for B's clock and for the moment stored): one new estimate
    clock.t += 31.0
    _backdate(store, b.id, 31.0)
    fresh = live.branch_estimates(_fresh(b), clock=clock)
    assert live.runs_made == before + 2
    assert fresh.seq == _seq(b) and fresh != first
    assert live.pending(b.id) is None
    _another_process()
    assert live.branch_estimates(_fresh(b)) == fresh  # A: stored, no run
    assert live.runs_made == before + 2


def test_a_reader_that_loses_the_claim_gets_the_stored_one_as_pending(
    make, now, teller_floor, store
):
    b = teller_floor
    before = live.runs_made
    first = live.branch_estimates(_fresh(b))
    _another_process()
    _change(make, b, now, 1)
    # another process is making the estimate of the change right now
    assert store.set(shared.claim_key(b.id, live.DEFAULT_RUNS), "other", nx=True, px=5000)
    got = live.branch_estimates(_fresh(b))
    assert got == first and live.runs_made == before + 1
    asked, moment = live.pending(b.id)
    assert asked == _seq(b)
    assert moment > time.monotonic()  # the realtime pusher asks again a moment later
    # ... and the claim is still someone else's: its owner releases it
    assert store.get(shared.claim_key(b.id, live.DEFAULT_RUNS)) == b"other"
    store.delete(shared.claim_key(b.id, live.DEFAULT_RUNS))
    fresh = live.branch_estimates(_fresh(b))
    assert fresh.seq == _seq(b) and live.runs_made == before + 2
    assert live.pending(b.id) is None


def test_a_reader_without_an_estimate_never_waits_for_the_claimer(
    make, now, teller_floor, store, monkeypatch
):
    """A reader that loses the claim on a branch it has no estimate of makes its own at once:
    a reader that waited (the realtime pusher has one thread for every branch) would hold up
    the whole network. What it made is stored for the others; the claim stays its owner's."""
    b = teller_floor
    _change(make, b, now, 1)
    store.flushdb()  # cold: no estimate anywhere (the quote at issue made one)
    live.clear_cache()
    claim = shared.claim_key(b.id, live.DEFAULT_RUNS)
    assert store.set(claim, "other", nx=True, px=5000)  # another process is making it

    def no_waiting(_seconds):
        raise AssertionError("the reader waited for the claimer")

    monkeypatch.setattr(live.time, "sleep", no_waiting)
    before = live.runs_made
    got = live.branch_estimates(_fresh(b))
    assert got.seq == _seq(b) and live.runs_made == before + 1
    assert store.get(claim) == b"other"
    # another process reads it from Redis instead of making it again
    _another_process()
    assert live.branch_estimates(_fresh(b)).seq == _seq(b)
    assert live.runs_made == before + 1


def test_redis_down_still_answers_per_process(app, make, now, teller_floor, monkeypatch, caplog):
    b = teller_floor
    teller = make.service(b, "teller").id
    _change(make, b, now, 1)
    monkeypatch.setitem(app.config, "REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    before = live.runs_made
    with caplog.at_level(logging.WARNING, logger="queue_app.waits.shared"):
        got = live.branch_estimates(_fresh(b))
    assert got.seq == _seq(b) and got.new_wait(teller).mean_s == 240.0
    assert live.runs_made == before + 1
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert live.branch_estimates(_fresh(b)) is got  # this process's cache
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="queue_app.waits.shared"):
        _change(make, b, now, 2)
        again = live.branch_estimates(_fresh(b))
    assert again.new_wait(teller).mean_s == 480.0 and live.runs_made == before + 2
    assert caplog.records == []  # one warning a while, not one per read


_CHILD = """
import json, sys
from queue_app import create_app
from queue_app.branches.models import Branch
from queue_app.core.db import read_only
from queue_app.extensions import db
from queue_app.waits import live, shared

app = create_app("testing", SQLALCHEMY_DATABASE_URI=sys.argv[1], EWT_SHARED=True,
                 REDIS_URL=sys.argv[2])
with app.app_context():
    read_only(db.session)
    got = live.branch_estimates(db.session.get(Branch, int(sys.argv[3])))
    print(json.dumps({"runs_made": live.runs_made, "live": shared.encode(got, 0.0)}))
"""


def _child(app, branch_id: int) -> tuple[int, live.Live]:
    """Read the branch's estimate in a new process: (its runs, the estimate)."""
    db.session.rollback()  # SQLite: no transaction of this process holds the write lock
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            app.config["SQLALCHEMY_DATABASE_URI"],
            REDIS_URL,
            str(branch_id),
        ],
        cwd=ROOT,
        env={**os.environ, "QUEUE_APP_PROFILE": "testing", "SCHEDULER_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return answer["runs_made"], shared.decode(answer["live"])[0]


def test_a_second_real_process_shares_the_estimates(app, make, now, teller_floor):
    b = teller_floor
    _change(make, b, now, 1)
    before = live.runs_made
    here = live.branch_estimates(_fresh(b))
    assert live.runs_made == before + 1
    runs, there = _child(app, b.id)
    assert (runs, there) == (0, here)  # the other process made nothing
    # the other process reads a change first: it makes it, this one reads it
    _change(make, b, now, 2)
    db.session.remove()
    runs, there = _child(app, b.id)
    assert runs == 1 and there.seq == _seq(b)
    assert live.branch_estimates(_fresh(b)) == there
    assert live.runs_made == before + 1
