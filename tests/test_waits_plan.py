"""The live state reads the counters' plan (`branches/plans.py`): breaks still ahead, an early
closing, and a paused counter inside a planned break coming back at its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_app.tickets import services as engine
from queue_app.waits import live
from queue_app.waits.estimator import estimate
from queue_app.waits.model import BUSY, IDLE, PAUSED


@pytest.fixture(autouse=True)
def fresh_cache():
    live.clear_cache()
    yield
    live.clear_cache()


def wib(hour: int, minute: int = 0) -> datetime:
    """Tuesday 3 March 2026 (the `now` fixture's day) at a local time in Jakarta (UTC+7)."""
    return datetime(2026, 3, 3, hour - 7, minute, tzinfo=UTC)


@pytest.fixture
def tellers(make, session, now):
    """Two teller counters, both open; Loket 1 serving since 10:00, eight tickets waiting."""
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    staff, staff2 = make.user(branches=[b]), make.user(branches=[b])
    make.open_counter(c1, staff, now=now)
    make.open_counter(c2, staff2, now=now)
    first = make.ticket(b, "teller", now=now)
    engine.start(engine.call_next(c1, staff, now=now), staff, now=now)
    second = make.ticket(b, "teller", now=now)
    engine.start(engine.call_next(c2, staff2, now=now), staff2, now=now)
    waiting = [make.ticket(b, "teller", now=now + timedelta(seconds=k)) for k in range(8)]
    session.commit()
    assert first.counter_id == c1.id and second.counter_id == c2.id
    return b, c1, c2, staff, waiting


def waits(b, at, tickets):
    state = live.branch_state(b, at)
    result = estimate(state, live.learned_model(b, at), runs=200, seed=7)
    return [result.tickets[t.id].mean_s for t in tickets]


def test_a_break_ahead_makes_the_waiting_tickets_wait_longer(tellers, session):
    b, c1, c2, _staff, waiting = tellers
    at = wib(10, 1)
    before = waits(b, at, waiting)
    state = live.branch_state(b, at)
    assert all(c.breaks == () and c.closes_at is None for c in state.counters)

    c2.plan = {"tue": {"breaks": [["09:00", "09:30"], ["10:05", "10:50"]]}}
    session.commit()
    state = live.branch_state(b, at)
    by_id = {c.id: c for c in state.counters}
    # only what is still ahead, as aware instants; Loket 1 has no plan
    assert by_id[c2.id].status == BUSY
    assert by_id[c2.id].breaks == ((wib(10, 5), wib(10, 50)),)
    assert by_id[c1.id].breaks == ()
    after = waits(b, at, waiting)
    # the last tickets in line wait clearly longer (one of two counters away for 45 minutes)
    assert after[-1] > before[-1] + 600
    assert sum(after) > sum(before)


def test_a_plan_for_another_weekday_changes_nothing(tellers, session):
    b, _c1, c2, _staff, waiting = tellers
    at = wib(10, 1)
    before = waits(b, at, waiting)
    c2.plan = {"wed": {"hours": ["08:00", "10:30"], "breaks": [["09:00", "09:30"]]}}
    session.commit()
    assert waits(b, at, waiting) == before
    assert all(c.breaks == () and c.closes_at is None for c in live.branch_state(b, at).counters)


def test_a_counter_closing_early(tellers, session):
    b, c1, c2, _staff, waiting = tellers
    at = wib(10, 1)
    before = waits(b, at, waiting)
    c2.plan = {"tue": {"hours": ["08:00", "10:15"]}}
    session.commit()
    state = live.branch_state(b, at)
    by_id = {c.id: c for c in state.counters}
    assert by_id[c2.id].closes_at == wib(10, 15)
    assert by_id[c1.id].closes_at is None  # the branch's closing is the state's
    assert state.closing_at == wib(15)
    after = waits(b, at, waiting)
    # Loket 2 takes no ticket after 10:15: the last in line are left to Loket 1 alone
    assert after[-1] > before[-1] + 120
    assert sum(after) > sum(before)
    # after its own closing it is not given a closing in the past
    late = live.branch_state(b, wib(10, 30))
    assert {c.id: c.closes_at for c in late.counters}[c2.id] is None


def test_a_paused_counter_in_a_planned_break_returns_at_its_end(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    staff = make.user(branches=[b])
    make.open_counter(c1, staff, now=wib(11, 55))
    engine.pause_counter(c1, staff, now=wib(12), reason="istirahat")
    c1.plan = {"tue": {"breaks": [["12:00", "13:00"], ["14:00", "14:15"]]}}
    session.commit()
    state = live.branch_state(b, wib(12, 5))
    counter = {c.id: c for c in state.counters}[c1.id]
    assert counter.status == PAUSED
    # the plan, not the 15-minute guess; its later break still counts
    assert counter.returns_at == wib(13)
    assert counter.breaks == ((wib(14), wib(14, 15)),)
    # paused outside its plan: the guess, as before
    c2_staff = make.user(branches=[b])
    make.open_counter(c2, c2_staff, now=wib(10))
    engine.pause_counter(c2, c2_staff, now=wib(10, 30))
    session.commit()
    other = {c.id: c for c in live.branch_state(b, wib(10, 35)).counters}[c2.id]
    assert other.returns_at == wib(10, 45)


def test_an_open_counter_in_a_planned_break_works_through_it(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"])])
    c1 = make.counter(b, "Loket 1")
    make.open_counter(c1, make.user(branches=[b]), now=wib(11))
    c1.plan = {"tue": {"breaks": [["12:00", "12:30"], ["14:00", "14:15"]]}}
    session.commit()
    counter = live.branch_state(b, wib(12, 10)).counters[0]
    assert counter.status == IDLE
    assert counter.breaks == ((wib(14), wib(14, 15)),)  # the one it works through is left out


def test_a_paused_counter_before_its_own_opening_or_after_its_closing(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"])])
    c1 = make.counter(b, "Loket 1")
    staff = make.user(branches=[b])
    make.open_counter(c1, staff, now=wib(8))
    engine.pause_counter(c1, staff, now=wib(8, 5))
    c1.plan = {"tue": {"hours": ["09:30", "13:00"]}}
    session.commit()
    morning = live.branch_state(b, wib(8, 10)).counters[0]
    assert (morning.returns_at, morning.closes_at) == (wib(9, 30), wib(13))
    evening = live.branch_state(b, wib(13, 30)).counters[0]
    assert evening.status == PAUSED and evening.returns_at is None  # not back today
