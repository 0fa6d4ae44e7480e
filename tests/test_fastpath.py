"""The one-statement ticket issue (tickets/fastpath.py) against the ORM path.

For the same situation (database state, time, token, language) both paths must write the
same rows, publish the same events and give byte-identical answers. Each comparison builds
the situation, issues through one path, records everything, empties the database (ids
restart), builds the situation again and issues through the other path.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from queue_app.api import presenters
from queue_app.api.schemas import TicketSchema
from queue_app.branches.models import Branch, Service
from queue_app.core.events import signal
from queue_app.extensions import db
from queue_app.tickets import fastpath
from queue_app.tickets import services as engine
from queue_app.tickets.models import Priority, Source
from queue_app.waits import live

from .apihelp import API, row_counts
from .conftest import empty_database

TOKEN = "fixed-token-for-comparing-both-paths-000000"

TABLES = {
    "visits": "SELECT * FROM visits ORDER BY id",
    "tickets": "SELECT * FROM tickets ORDER BY id",
    "journey_events": "SELECT id, branch_id, seq, at, kind, visit_id, ticket_id, counter_id, "
    "actor_id, from_status, to_status, CAST(data AS TEXT) AS data "
    "FROM journey_events ORDER BY id",
    "ticket_sequences": "SELECT * FROM ticket_sequences ORDER BY id",
    "branches": "SELECT id, code, event_seq FROM branches ORDER BY id",
}


@pytest.fixture
def pg(is_postgres):
    if not is_postgres:
        pytest.skip("the one-statement path is PostgreSQL's")


def _tokens(monkeypatch):
    """Visit tokens that are the same in both runs of a comparison."""
    numbers = iter(range(1_000_000))
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _n=None: f"{TOKEN}-{next(numbers)}")


def _situation(make, now, *, open_counters: int, waiting: int):
    """JKT01 with a few people waiting, some counters open, names in two languages; its
    estimate made after the commit, as the realtime pusher (or a kiosk's snapshot) leaves it."""
    fastpath.clear_cache()
    live.clear_cache()
    b = make.branch(
        "JKT01",
        counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs", "loans"])],
    )
    for s in b.services:
        s.names = {"id": f"{s.code} (id)", "en": f"{s.code} (en)"}
    teller = make.service(b, "teller")
    staff = [make.user(f"staff{i}", branches=[b]) for i in range(open_counters)]
    for counter, user in zip(b.counters, staff, strict=False):
        make.open_counter(counter, user, now=now - timedelta(minutes=30))
    for i in range(waiting):  # ORM path: these have a customer-free history of their own
        engine.issue_ticket(b, teller, now=now - timedelta(minutes=10 - i))
    cs = make.service(b, "cs")
    engine.issue_ticket(b, cs, now=now - timedelta(minutes=5))
    db.session.commit()
    live.branch_estimates(b)
    return b


def _snapshot():
    db.session.commit()
    with db.engine.connect() as conn:
        rows = {
            name: [dict(r._mapping) for r in conn.execute(text(sql))]
            for name, sql in TABLES.items()
        }
        conn.rollback()
    return rows


def _issue_http(app, client, monkeypatch, moment, body, headers, *, fast: bool):
    monkeypatch.setattr("queue_app.api.branches.utcnow", lambda: moment)
    if not fast:
        monkeypatch.setattr(fastpath, "applies", lambda *_a, **_k: False)
    events = []

    def receiver(_sender, **payload):
        events.append(payload)

    journey = signal("journey")
    journey.connect(receiver)
    try:
        response = client.post(f"{API}/branches/JKT01/tickets", json=body, headers=headers)
    finally:
        journey.disconnect(receiver)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_data(), events


CASES = [
    # (body, headers, open counters, people waiting)
    ({"service": "teller"}, {}, 2, 3),
    ({"service": "teller"}, {"Accept-Language": "en"}, 0, 0),
    ({"service": "cs", "priority": "elderly", "source": "mobile"}, {}, 1, 2),
    ({"service": "loans"}, {"Accept-Language": "en"}, 1, 0),
    ({"service": "teller", "customer": {"name": "Tanpa Nomor"}}, {}, 1, 1),
]


@pytest.mark.parametrize(("body", "headers", "open_counters", "waiting"), CASES)
def test_both_paths_write_the_same_rows_and_answer_the_same_bytes(
    app, client, make, now, monkeypatch, pg, body, headers, open_counters, waiting
):
    moment = now + timedelta(seconds=1)
    answers, snapshots, events = {}, {}, {}
    for fast in (True, False):
        _tokens(monkeypatch)
        _situation(make, now, open_counters=open_counters, waiting=waiting)
        answers[fast], events[fast] = _issue_http(
            app, client, monkeypatch, moment, body, headers, fast=fast
        )
        monkeypatch.undo()
        snapshots[fast] = _snapshot()
        empty_database()
    assert answers[True] == answers[False]
    assert snapshots[True] == snapshots[False]
    assert events[True] == events[False]
    assert len(events[True]) == 1 and events[True][0]["kind"] == "issued"
    _quoted_wait_is_what_the_answer_shows(snapshots[True], answers[True])


def _quoted_wait_is_what_the_answer_shows(snapshot, answer: bytes):
    """The new ticket stores the wait its answer shows (feedback's "quoted wait")."""
    import json

    shown = json.loads(answer)
    new = max(snapshot["tickets"], key=lambda r: r["id"])
    assert new["number"] == shown["number"]
    assert new["quoted_wait_s"] == shown["estimated_wait_s"]


def test_the_fast_path_is_taken_on_postgresql(app, client, make, now, monkeypatch, pg):
    _situation(make, now, open_counters=1, waiting=0)
    statements = []

    def count(*args):
        statements.append(args[2])

    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.post(f"{API}/branches/JKT01/tickets", json={"service": "teller"})
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 201
    writes = [s for s in statements if "INSERT" in s.upper() or "UPDATE" in s.upper()]
    assert len(writes) == 1 and "WITH ok AS" in writes[0]


@pytest.mark.parametrize(("body", "headers", "open_counters", "waiting"), CASES)
def test_issue_plain_answers_what_the_orm_path_answers(
    app, make, now, monkeypatch, pg, body, headers, open_counters, waiting
):
    """`services.issue_plain` + `presenters.issued`, the API's lookup-free path, against
    `issue_ticket` + `presenters.ticket`: same rows, same events, same bytes."""
    moment = now + timedelta(seconds=1)
    priority = Priority(body.get("priority", "normal"))
    source = Source(body.get("source", "kiosk"))
    answers, snapshots, events = {}, {}, {}
    for plain in (True, False):
        _tokens(monkeypatch)
        _situation(make, now, open_counters=open_counters, waiting=waiting)
        db.session.remove()  # a request starts with a new session
        seen = []
        journey = signal("journey")

        def receiver(_sender, _seen=seen, **payload):
            _seen.append(payload)

        journey.connect(receiver)
        try:
            with app.test_request_context(f"{API}/branches/JKT01/tickets", headers=headers):
                if plain:
                    issued = engine.issue_plain(
                        "JKT01",
                        body["service"],
                        now=moment,
                        locale=presenters.language(),
                        priority=priority,
                        source=source,
                    )
                    assert issued is not None
                    db.session.commit()
                    data = presenters.issued(issued)
                else:
                    monkeypatch.setattr(fastpath, "applies", lambda *_a, **_k: False)
                    branch = db.session.scalar(select(Branch).where(Branch.code == "JKT01"))
                    service = db.session.scalar(
                        select(Service).where(
                            Service.branch_id == branch.id, Service.code == body["service"]
                        )
                    )
                    ticket = engine.issue_ticket(
                        branch, service, now=moment, priority=priority, source=source
                    )
                    db.session.commit()
                    data = presenters.just_issued(ticket)
                answers[plain] = app.json.dumps(TicketSchema().dump(data))
        finally:
            journey.disconnect(receiver)
            monkeypatch.undo()
        events[plain] = seen
        snapshots[plain] = _snapshot()
        empty_database()
    assert answers[True] == answers[False]
    assert snapshots[True] == snapshots[False]
    assert events[True] == events[False]
    _quoted_wait_is_what_the_answer_shows(snapshots[True], answers[True].encode())


def test_the_quoted_wait_counts_the_queue_and_the_open_counters(app_ctx, make, now, pg):
    """Hand-computed, the estimator's (waits.live) wait of a new ticket as of the branch's last
    change: 3 waiting for teller, Teller 1 and 2 open and idle, exactly 240 s a ticket (no
    history, EWT_PRIOR_CV = 0 in tests): the two tellers call the 1st and 2nd at once, the 3rd
    and a new one at 240 s. 240 s on both paths; with no counter open (loans), None."""
    for fast in (True, False):
        b = _situation(make, now, open_counters=2, waiting=3)
        teller = make.service(b, "teller")
        loans = make.service(b, "loans")
        with pytest.MonkeyPatch.context() as mp:
            if not fast:
                mp.setattr(fastpath, "applies", lambda *_a, **_k: False)
            t = engine.issue_ticket(b, teller, now=now + timedelta(seconds=1))
            idle = engine.issue_ticket(b, loans, now=now + timedelta(seconds=1))
        db.session.commit()
        db.session.expire_all()
        assert (t.quoted_wait_s, idle.quoted_wait_s) == (240, None), fast
        empty_database()


def test_issue_plain_writes_nothing_when_it_does_not_apply(app_ctx, make, now, is_postgres):
    _situation(make, now, open_counters=1, waiting=0)
    loans = db.session.scalar(select(Service).where(Service.code == "loans"))
    loans.active = False
    db.session.commit()
    before = row_counts()
    db.session.remove()
    for branch_code, service_code in [
        ("NOPE1", "teller"),  # no such branch
        ("JKT01", "nope"),  # no such service
        ("JKT01", "loans"),  # inactive service
        ("JKT\x0001", "teller"),  # names nothing, and NUL cannot reach PostgreSQL
        ("x" * 65, "teller"),
    ]:
        assert engine.issue_plain(branch_code, service_code, now=now, locale="id") is None
        db.session.rollback()
    assert row_counts() == before
    if not is_postgres:  # SQLite: always the ORM path
        assert engine.issue_plain("JKT01", "teller", now=now, locale="id") is None


def test_a_stale_cache_entry_is_refused_by_the_statement(app_ctx, make, now, pg):
    _situation(make, now, open_counters=1, waiting=0)
    db.session.remove()
    first = engine.issue_plain("JKT01", "teller", now=now, locale="id")
    db.session.commit()
    assert first.number == "A001"
    # the prefix changes behind the cache's back: the statement sees it and writes nothing
    teller = db.session.scalar(select(Service).where(Service.code == "teller"))
    teller.prefix = "T"
    db.session.commit()
    db.session.remove()
    before = row_counts()
    assert engine.issue_plain("JKT01", "teller", now=now, locale="id") is None
    db.session.rollback()
    assert row_counts() == before
    # the entry was dropped: the next ticket reads the branch again and takes the new prefix
    # (once the estimate of the branch's state after A001 is made, as the realtime pusher
    # makes it after the commit: a quote for an older state is refused by the statement too)
    live.branch_estimates(db.session.scalar(select(Branch).where(Branch.code == "JKT01")))
    db.session.rollback()
    again = engine.issue_plain("JKT01", "teller", now=now, locale="id")
    db.session.commit()
    assert again.number == "T002"


def test_inactive_service_through_the_api_is_still_a_409(client, make, now, pg):
    _situation(make, now, open_counters=1, waiting=0)
    service = db.session.scalar(select(Service).where(Service.code == "loans"))
    service.active = False
    db.session.commit()
    response = client.post(f"{API}/branches/JKT01/tickets", json={"service": "loans"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "service_unavailable"
