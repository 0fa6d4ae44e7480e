"""Every surface's estimated wait comes from `waits.live`: the rate limit per branch, the range
in the payloads, "no estimate" while no counter is open, the quote at issue on both paths.

Hand-computed: no history, so each service takes exactly its expected duration (EWT_PRIOR_CV =
0 in tests: the learned model's prior), no arrivals, no abandonment; an idle open counter calls
the oldest waiting ticket at once. Teller 240 s, cs 720 s (tests/factories.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.realtime import payloads
from queue_app.tickets import queries
from queue_app.tickets import services as engine
from queue_app.tickets.models import Ticket
from queue_app.waits import live


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def teller_floor(make, now):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["cs"])])
    staff = make.user(branches=[b])
    make.open_counter(make.counter(b, "Loket 1"), staff, now=now)
    db.session.commit()
    return b


def _fresh(b: Branch) -> Branch:
    return db.session.scalar(select(Branch).where(Branch.id == b.id))


def test_the_estimator_runs_at_most_once_per_interval(app, make, now, teller_floor):
    b = teller_floor
    clock = Clock()
    app.config["EWT_MIN_INTERVAL_S"] = 2.0
    try:
        before = live.runs_made
        first = live.branch_estimates(b, clock=clock)
        assert live.runs_made == before + 1
        assert first.new_wait(make.service(b, "teller").id).mean_s == 0.0  # nobody waits
        # a change 1 s later is pending: the last result stands, nothing runs
        make.ticket(b, "teller", now=now + timedelta(seconds=1))
        db.session.commit()
        clock.t += 1.0
        assert live.branch_estimates(b, clock=clock) is first
        assert live.last_estimates_pending(b.id, clock=clock) == (first, True)
        assert live.runs_made == before + 1
        # the interval is over: the next read estimates the new state, once
        clock.t += 1.0
        second = live.branch_estimates(b, clock=clock)
        assert second is not first and live.runs_made == before + 2
        assert second.new_wait(make.service(b, "teller").id).mean_s == 240.0  # after the one
        assert live.branch_estimates(b, clock=clock) is second  # same state: cached
        clock.t += 5.0
        assert live.last_estimates_pending(b.id, clock=clock) == (second, False)
        assert live.runs_made == before + 2
    finally:
        app.config["EWT_MIN_INTERVAL_S"] = 0.0


def test_payloads_carry_the_estimate_and_its_range(make, now, teller_floor, session):
    b = teller_floor
    first = make.ticket(b, "teller", now=now + timedelta(seconds=1))
    second = make.ticket(b, "teller", now=now + timedelta(seconds=2))
    make.ticket(b, "cs", now=now + timedelta(seconds=3))
    session.commit()
    b = _fresh(b)
    queues = {q["code"]: q for q in payloads.service_queues(session, b)}
    # Loket 1 calls the first at once and the second at 240 s: a new teller ticket at 480 s;
    # the range of a deterministic run is one point
    assert queues["teller"]["estimated_wait_s"] == 480
    assert queues["teller"]["estimated_wait_range"] == {"low_s": 480, "high_s": 480}
    # Loket 2 (cs) is closed: no estimate, as before
    assert queues["cs"]["estimated_wait_s"] is None
    assert queues["cs"]["estimated_wait_range"] is None
    view = payloads.ticket_view(second)
    assert (view["position"], view["estimated_wait_s"]) == (2, 240)
    assert view["estimated_wait_range"] == {"low_s": 240, "high_s": 240}
    assert queries.standing(first) == (1, 0)
    # the staff's waiting list and the phones' pushes use the same numbers
    staff = payloads.staff_snapshot(session, b)
    assert [(w["number"], w["estimated_wait_s"]) for w in staff["waiting"]] == [
        ("A001", 0),
        ("A002", 240),
        ("B001", None),
    ]


def test_the_quote_at_issue_is_the_new_ticket_estimate_shown(make, now, teller_floor, session):
    b = teller_floor
    make.ticket(b, "teller", now=now + timedelta(seconds=1))
    session.commit()
    shown = {q["code"]: q for q in payloads.service_queues(session, _fresh(b))}
    assert shown["teller"]["estimated_wait_s"] == 240
    ticket = engine.issue_ticket(
        _fresh(b), make.service(b, "teller"), now=now + timedelta(seconds=60)
    )
    session.commit()
    assert ticket.quoted_wait_s == 240  # what the kiosk showed when it was taken
    closed = engine.issue_ticket(_fresh(b), make.service(b, "cs"), now=now + timedelta(seconds=60))
    session.commit()
    assert closed.quoted_wait_s is None  # no counter serves cs: "not known yet"


def test_a_quote_for_an_older_state_is_refused_by_the_statement(make, now, teller_floor, pg):
    """`issue_plain` quotes from the cache without reading anything first; the statement
    writes only if the quote was made for the branch's current event sequence (unless the
    estimator may not run again yet), else the ORM path estimates and issues."""
    b = teller_floor
    live.branch_estimates(_fresh(b))  # as the realtime pusher leaves it after the commit
    db.session.remove()
    first = engine.issue_plain(b.code, "teller", now=now, locale="id")
    db.session.commit()
    assert (first.number, first.estimated_wait_s) == ("A001", 0)
    db.session.remove()
    seq = db.session.scalar(select(Branch.event_seq).where(Branch.id == b.id))
    tickets = db.session.scalar(select(func.count()).select_from(Ticket))
    db.session.rollback()
    # nobody estimated the state after A001: the cached quote is one change old
    assert engine.issue_plain(b.code, "teller", now=now, locale="id") is None
    db.session.rollback()
    assert db.session.scalar(select(Branch.event_seq).where(Branch.id == b.id)) == seq
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == tickets  # nothing
    # the ORM path estimates (before writing) and quotes the state after A001
    second = engine.issue_ticket(_fresh(b), make.service(b, "teller"), now=now)
    db.session.commit()
    assert (second.number, second.quoted_wait_s) == ("A002", 240)


@pytest.fixture
def pg(is_postgres):
    if not is_postgres:
        pytest.skip("the one-statement path is PostgreSQL's")
