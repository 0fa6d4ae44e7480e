"""The stored report of a closed period (reports/snapshots.py), on SQLite and PostgreSQL.

The history is tests/test_reports.py's (MKS01, Asia/Makassar, March 2026; reportrows.py):
its periods are long closed, so the first read of one works it out and stores it, and later
reads return the stored figures - shown here by changing a ticket behind the store's back.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text, update

from queue_app.extensions import db
from queue_app.jobs.tasks import close_past_business_days
from queue_app.reports import queries, snapshots
from queue_app.reports.jobs import snapshot_closed_periods
from queue_app.reports.models import ReportSnapshot
from queue_app.reports.stats import SUMMARY_FIELDS
from queue_app.tickets.models import Ticket

from . import reportrows as rr
from .apihelp import fast_passwords

API = "/api/v1/reports"
# Thursday 2 April 2026, 11:00 in Makassar: March, the week of 23-29 March and 1 April closed
APRIL_2 = datetime(2026, 4, 2, 3, 0, tzinfo=UTC)


@pytest.fixture
def history(make, monkeypatch):
    fast_passwords(monkeypatch)
    return rr.week_history(make)


def _rows() -> int:
    return db.session.scalar(select(func.count()).select_from(ReportSnapshot))


def _typed(value):
    """A value with its type: 600 and 600.0 differ here, as None and 0 do."""
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


def _summary(s):
    return _typed([getattr(s, name) for name in SUMMARY_FIELDS])


def assert_same_report(got: queries.Report, live: queries.Report) -> None:
    """Field for field (types too), then the whole report."""
    assert (got.period, got.label, got.start, got.end) == (
        live.period,
        live.label,
        live.start,
        live.end,
    )
    assert [b.id for b in got.branches] == [b.id for b in live.branches]
    assert _summary(got.total) == _summary(live.total)
    assert [(_typed(p.key), p.label, _summary(p.summary)) for p in got.series] == [
        (_typed(p.key), p.label, _summary(p.summary)) for p in live.series
    ]
    for dim in queries.DIMENSIONS:
        assert [(g.kind, g.key, g.item, _summary(g.summary)) for g in got.groups[dim]] == [
            (g.kind, g.key, g.item, _summary(g.summary)) for g in live.groups[dim]
        ], dim
    assert [
        [_typed((c.weekday, c.hour, c.arrivals, c.wait_mean_s)) for c in d] for d in got.heat
    ] == [[_typed((c.weekday, c.hour, c.arrivals, c.wait_mean_s)) for c in d] for d in live.heat]
    assert got == live


def _cases(h):
    b, other = h["branch"], h["other"]
    return [
        ([b], "day", date(2026, 3, 2), None),
        ([b], "week", date(2026, 3, 4), None),
        ([b], "month", date(2026, 3, 15), None),
        ([b], "month", date(2026, 4, 1), None),
        ([b], "month", date(2026, 5, 1), None),  # nothing at all
        ([b], "week", date(2026, 3, 4), h["teller"].id),
        ([b, other], "month", date(2026, 3, 1), None),
    ]


# --- the payload -----------------------------------------------------------------------------


def test_the_payload_round_trips_through_json_to_the_live_report(history):
    for branches, period, day, service_id in _cases(history):
        live = queries.compute(branches, period, day, service_id=service_id)
        payload = json.loads(json.dumps(snapshots.serialize(live)))
        items = queries.items_of(branches, snapshots.staff_ids(payload))
        assert_same_report(snapshots.deserialize(payload, branches, items), live)
    # the groups of tickets never called (no counter, no staff member) are keyed None
    week = queries.compute([history["branch"]], "week", date(2026, 3, 4))
    assert None in [g.key for g in week.groups["counter"]]
    assert None in [g.key for g in week.groups["staff"]]


def test_a_stored_report_reads_back_as_the_live_report(history):
    for branches, period, day, service_id in _cases(history):
        live = queries.compute(branches, period, day, service_id=service_id)
        first = queries.report(branches, period, day, service_id=service_id)
        assert_same_report(first, live)
        db.session.commit()
        key = snapshots.key_of(branches, period, live.start, service_id)
        assert snapshots.stored_report(key, branches) is not None
        assert_same_report(queries.report(branches, period, day, service_id=service_id), live)
    assert _rows() == len(_cases(history))


def test_a_payload_of_another_format_is_worked_out_again(history):
    b = history["branch"]
    live = queries.report([b], "week", date(2026, 3, 4))
    db.session.commit()
    db.session.execute(ReportSnapshot.__table__.update().values(payload={"format": 0, "total": []}))
    db.session.commit()
    assert_same_report(queries.report([b], "week", date(2026, 3, 4)), live)


# --- what is stored --------------------------------------------------------------------------


def test_an_open_period_is_never_stored(history):
    b = history["branch"]
    # Wednesday 4 March 2026, 10:00 in Makassar: that day, its week and its month are open
    wednesday = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    for period in queries.PERIODS:
        made = queries.report([b], period, date(2026, 3, 4), now=wednesday)
        assert made == queries.compute([b], period, date(2026, 3, 4))
    assert snapshots.closed([b], "day", date(2026, 3, 3), date(2026, 3, 3), wednesday)
    assert not snapshots.closed([b], "week", date(2026, 3, 2), date(2026, 3, 8), wednesday)
    db.session.commit()
    assert _rows() == 0
    # the day before is closed: stored
    queries.report([b], "day", date(2026, 3, 3), now=wednesday)
    db.session.commit()
    assert _rows() == 1


def test_a_period_is_open_until_the_last_of_its_branches_has_moved_on(make, history):
    b = history["branch"]
    west = make.branch("UTC01", timezone="UTC")
    db.session.commit()
    # 31 March 17:00 UTC: 1 April 01:00 in Makassar, still 31 March in UTC
    evening = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    queries.report([b, west], "month", date(2026, 3, 1), now=evening)
    db.session.commit()
    assert _rows() == 0
    queries.report([b], "month", date(2026, 3, 1), now=evening)
    db.session.commit()
    assert _rows() == 1


def test_a_period_with_an_active_ticket_left_is_not_stored_until_it_is_closed(app, history):
    b, teller = history["branch"], history["teller"]
    waiting = rr.add(b, teller, "2026-03-05 15:00", status=rr.S.WAITING)
    db.session.commit()
    made = queries.report([b], "week", date(2026, 3, 4))
    assert made.total.active == 1
    db.session.commit()
    assert _rows() == 0
    db.session.commit()  # the job is a unit of work of its own
    # the end-of-day job closes it: the week is closed now, and stored at the next read
    assert close_past_business_days(app, datetime.now(UTC)) == 1
    db.session.remove()
    b = db.session.get(type(b), b.id)
    made = queries.report([b], "week", date(2026, 3, 4))
    db.session.commit()
    assert made.total.active == 0 and made.total.abandoned == 3
    assert _rows() == 1
    assert waiting.id is not None


def test_a_changed_target_is_a_new_key_and_the_fresh_figure(history):
    b, cs = history["branch"], history["cs"]
    before = queries.report([b], "week", date(2026, 3, 4))
    db.session.commit()
    key = snapshots.key_of([b], "week", date(2026, 3, 2))
    cs.target_wait_s = 1800  # the cs ticket waited 1800 s: now within target
    db.session.commit()
    assert snapshots.key_of([b], "week", date(2026, 3, 2)) != key
    after = queries.report([b], "week", date(2026, 3, 4))
    db.session.commit()
    assert after.total.within_target > before.total.within_target
    assert_same_report(after, queries.compute([b], "week", date(2026, 3, 4)))
    assert _rows() == 2


def test_a_changed_time_zone_is_a_new_key(history):
    b = history["branch"]
    key = snapshots.key_of([b], "month", date(2026, 3, 1))
    b.timezone = "Asia/Jakarta"
    db.session.flush()
    assert snapshots.key_of([b], "month", date(2026, 3, 1)) != key


def test_the_read_returns_the_stored_figures_and_rebuild_picks_up_a_change(app_ctx, history):
    b = history["branch"]
    stored = queries.report([b], "week", date(2026, 3, 4))
    db.session.commit()
    # behind the store's back: the first ticket (waited 300 s) waited 30 s
    first = rr.local(b, "2026-03-02 09:00").astimezone(UTC)
    tickets = Ticket.__table__
    changed = db.session.execute(
        update(tickets)
        .where(tickets.c.branch_id == b.id, tickets.c.issued_at == first)
        .values(called_at=datetime(2026, 3, 2, 1, 0, 30, tzinfo=UTC))
    ).rowcount
    db.session.commit()
    assert changed == 1
    live = queries.compute([b], "week", date(2026, 3, 4))
    assert live.total.wait_mean_s != stored.total.wait_mean_s
    read = queries.report([b], "week", date(2026, 3, 4))
    assert_same_report(read, stored)
    db.session.commit()

    result = app_ctx.test_cli_runner().invoke(args=["reports", "snapshot", "--rebuild"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 stored reports" in result.output
    db.session.remove()
    b = db.session.get(type(b), b.id)
    rebuilt = queries.report([b], "week", date(2026, 3, 4))
    assert rebuilt.total.wait_mean_s == live.total.wait_mean_s
    assert_same_report(rebuilt, queries.compute([b], "week", date(2026, 3, 4)))


def test_a_failure_to_store_is_logged_and_the_report_returned(history, monkeypatch, caplog):
    b = history["branch"]

    def broken(report):
        raise RuntimeError("disk full")

    monkeypatch.setattr(snapshots, "serialize", broken)
    made = queries.report([b], "month", date(2026, 3, 1))
    db.session.commit()
    assert made == queries.compute([b], "month", date(2026, 3, 1))
    assert _rows() == 0
    assert "storing report snapshot" in caplog.text


# --- the job ---------------------------------------------------------------------------------


def test_the_job_stores_the_periods_just_closed_once(app, history):
    b, other = history["branch"], history["other"]
    assert snapshot_closed_periods(app, APRIL_2) == 6  # day, week, month of both branches
    assert snapshot_closed_periods(app, APRIL_2) == 0
    rows = db.session.execute(
        select(ReportSnapshot.branch_ids, ReportSnapshot.period, ReportSnapshot.start_day)
    ).all()
    assert sorted((ids, period, start) for ids, period, start in rows) == sorted(
        ([branch.id], period, start)
        for branch in (b, other)
        for period, start in (
            ("day", date(2026, 4, 1)),
            ("week", date(2026, 3, 23)),
            ("month", date(2026, 3, 1)),
        )
    )
    # a read of the month is the stored one: no new row, the same figures
    read = queries.report([b], "month", date(2026, 3, 10), now=APRIL_2)
    db.session.commit()
    assert _rows() == 6
    assert_same_report(read, queries.compute([b], "month", date(2026, 3, 10)))


def test_the_job_waits_for_the_end_of_day_close(app, history):
    b, teller = history["branch"], history["teller"]
    rr.add(b, teller, "2026-04-01 16:00", status=rr.S.WAITING)
    db.session.commit()
    assert snapshot_closed_periods(app, APRIL_2) == 5  # not 1 April of MKS01
    assert close_past_business_days(app, APRIL_2) == 1
    assert snapshot_closed_periods(app, APRIL_2) == 1
    days = db.session.execute(
        select(ReportSnapshot.branch_ids, ReportSnapshot.payload).where(
            ReportSnapshot.period == "day"
        )
    ).all()
    day = [payload for ids, payload in days if ids == [b.id]]
    # the cancelled ticket is in the stored day: two tickets, one abandoned
    assert [p["total"][:3] for p in day] == [[2, 1, 1]]


# --- two writers at once ---------------------------------------------------------------------


def _other_writer_waits_on_a_lock(deadline_s: float = 30) -> bool:
    """PostgreSQL: another session of this database is waiting on a lock (the second INSERT
    of the key, on the first one's row not yet committed)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    until = time.monotonic() + deadline_s
    with db.engine.connect() as conn:
        while time.monotonic() < until:
            if conn.execute(query).scalar():
                return True
            conn.rollback()
            time.sleep(0.02)
    return False


def test_two_writers_of_one_key_at_once_both_succeed_and_leave_one_row(app, history):
    """Both start at once (a barrier). On PostgreSQL the one whose INSERT went first keeps its
    transaction open until the other's INSERT waits on its row, then commits: the other one
    then does nothing, without an error. (On SQLite the second waits for the write lock.)"""
    b = history["branch"]
    made = queries.compute([b], "month", date(2026, 3, 1))
    key = snapshots.key_of([b], "month", date(2026, 3, 1))
    postgres = db.engine.dialect.name == "postgresql"
    db.session.commit()
    barrier = threading.Barrier(2, timeout=30)
    outcome: dict[int, object] = {}
    waited: list[bool] = []

    def writer(n):
        try:
            with app.app_context():
                barrier.wait()
                wrote = snapshots.store(made, key, service_id=None, now=datetime.now(UTC))
                if wrote and postgres:
                    waited.append(_other_writer_waits_on_a_lock())
                db.session.commit()
                outcome[n] = wrote
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            outcome[n] = exc

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(outcome.values()) == [False, True], outcome
    assert waited == ([True] if postgres else [])
    assert _rows() == 1
    assert_same_report(snapshots.stored_report(key, [b]), made)


def _every_call_at_once(branch) -> None:
    """Every wait 0 s: the history changed behind the store's back (SQL, not the engine)."""
    tickets = Ticket.__table__
    db.session.execute(
        update(tickets)
        .where(tickets.c.branch_id == branch.id, tickets.c.called_at.is_not(None))
        .values(called_at=tickets.c.issued_at)
    )
    db.session.commit()


# --- the API and the pages -------------------------------------------------------------------


def test_the_api_reads_a_closed_month_the_same_before_and_after_it_is_stored(client, history):
    h = history["headers"]
    url = f"{API}?branch=MKS01&period=month&date=2026-03-10"
    first = client.get(url, headers=h["manager"])
    assert first.status_code == 200, first.get_data(as_text=True)
    assert _rows() == 1  # the view committed it
    _every_call_at_once(history["branch"])
    second = client.get(url, headers=h["manager"])
    assert second.get_json() == first.get_json()  # the stored figures
    total = first.get_json()["total"]
    live = queries.compute([history["branch"]], "month", date(2026, 3, 10)).total
    assert total["issued"] == 10 and total["wait_mean_s"] != live.wait_mean_s


def test_the_page_and_the_export_read_a_closed_month_from_the_store(client, history):
    with client.session_transaction() as sess:
        sess["_user_id"] = history["users"]["manager"].get_id()
        sess["_fresh"] = True
    csv_url = "/reports/report.csv?branch=MKS01&period=month&date=2026-03-10&lang=en"
    first = client.get(csv_url)
    assert first.status_code == 200
    assert _rows() == 1
    _every_call_at_once(history["branch"])
    assert client.get(csv_url).get_data() == first.get_data()
