"""Live estimates from the database: the state of a branch, the model learned from earlier days,
and the cache per (branch, event_seq)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queue_app.extensions import db
from queue_app.tickets import services as engine
from queue_app.waits import live
from queue_app.waits.model import BUSY, CLOSED, IDLE

from .sqlcount import first_table, statements_sent


@pytest.fixture(autouse=True)
def fresh_cache():
    live.clear_cache()
    yield
    live.clear_cache()


def serve(counter, user, *, at, minutes):
    t = engine.call_next(counter, user, now=at)
    engine.start(t, user, now=at)
    engine.finish(t, user, now=at + timedelta(minutes=minutes))
    return t


def test_state_model_and_cache(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["cs", "teller"])])
    teller = make.service(b, "teller")
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    staff = make.user(branches=[b])
    # yesterday (Monday, 10:00 WIB): five teller tickets of 10 minutes each
    yesterday = now - timedelta(days=1)
    make.open_counter(c1, staff, now=yesterday)
    for k in range(5):
        make.ticket(b, "teller", now=yesterday + timedelta(minutes=k))
    for k in range(5):
        serve(c1, staff, at=yesterday + timedelta(minutes=10 * k + 5), minutes=10)
    engine.close_counter(c1, staff, now=yesterday + timedelta(hours=2))
    session.commit()

    # today: Loket 1 serving one ticket since 10:00, three waiting, Loket 2 closed
    make.open_counter(c1, staff, now=now)
    tickets = [make.ticket(b, "teller", now=now + timedelta(seconds=k)) for k in range(4)]
    first = engine.call_next(c1, staff, now=now + timedelta(seconds=10))
    engine.start(first, staff, now=now + timedelta(seconds=10))
    session.commit()
    at = now + timedelta(seconds=70)

    state = live.branch_state(b, at)
    by_id = {c.id: c for c in state.counters}
    assert by_id[c1.id].status == BUSY and by_id[c1.id].busy_service == teller.id
    assert by_id[c2.id].status == CLOSED
    assert [w.id for w in state.waiting] == [t.id for t in tickets[1:]]
    assert state.closing_at.isoformat() == "2026-03-03T15:00:00+07:00"

    model = live.learned_model(b, at)
    # 5 x 600 s and the expected 240 s as 3 observations: (3000 + 720) / 8
    assert model.service_times.mean(teller.id) == pytest.approx(465.0)
    assert model.arrivals.per_second(teller.id, 10) == pytest.approx(5 / 3600)
    assert model.abandonment.hazard_per_s == 0.0

    result = live.branch_estimates(b, at)
    waits = [result.estimates.tickets[t.id].mean_s for t in tickets[1:]]
    assert waits == sorted(waits) and waits[0] > 0
    assert set(result.estimates.new) == {s.id for s in b.services}
    # the same event sequence: the same answer, not recomputed
    assert live.branch_estimates(b, at + timedelta(seconds=30)) is result
    assert result.remaining_s(100.0, at + timedelta(seconds=30)) == 70.0
    # a change bumps the sequence: a fresh estimate
    make.open_counter(c2, make.user(branches=[b]), now=at)
    session.commit()
    db.session.refresh(b)
    again = live.branch_estimates(b, at)
    assert again is not result
    assert by_id[c2.id].status == CLOSED
    assert {c.id: c.status for c in live.branch_state(b, at).counters}[c2.id] == IDLE
    # Loket 2 (cs first, then teller) now takes the next teller ticket at once
    assert again.estimates.tickets[tickets[1].id].mean_s == 0.0


def test_priority_share_is_learned_from_history(make, session, now):
    """Of yesterday's eight teller tickets two were in a higher priority class (elderly,
    pregnant): with ten normal arrivals as the prior the model expects 2 / 18 of today's
    arrivals to go ahead; cs had none."""
    from queue_app.tickets.models import Priority

    b = make.branch(counters=[("Loket 1", ["teller", "cs"])])
    teller, cs = make.service(b, "teller"), make.service(b, "cs")
    yesterday = now - timedelta(days=1)
    kinds = [Priority.NORMAL] * 6 + [Priority.ELDERLY, Priority.PREGNANT]
    for k, priority in enumerate(kinds):
        make.ticket(b, "teller", now=yesterday + timedelta(minutes=k), priority=priority)
    make.ticket(b, "cs", now=yesterday)
    session.commit()
    model = live.learned_model(b, now)
    assert model.arrivals.priority_share == {teller.id: pytest.approx(2 / 18)}
    assert cs.id not in model.arrivals.priority_share


def test_the_state_of_a_branch_is_two_reads_however_many_counters(make, session, now):
    """The counters come with their service links; nothing is read per counter."""
    names = [f"Loket {i}" for i in range(1, 7)]
    b = make.branch(counters=[(n, ["teller", "cs"]) for n in names])
    make.ticket(b, "teller", now=now)
    session.commit()
    session.expire_all()
    with statements_sent() as sent:
        state = live.branch_state(b, now + timedelta(seconds=5))
    assert len(state.counters) == 6
    assert all(len(c.services) == 2 for c in state.counters)
    assert [first_table(s) for s in sent if s.lstrip().upper().startswith("SELECT")] == [
        "branches",  # the branch itself, expired above
        "counters",
        "tickets",
        "services",  # the services the branch offers
    ], sent
