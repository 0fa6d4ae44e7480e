"""Busy hours: typical waits by local hour of the week (rolled up from history), the live
wait, nearby branches with shorter waits, the API and the page partial."""

from datetime import UTC, datetime, timedelta

import pytest
from flask import render_template_string
from sqlalchemy import func, select

from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.insights import jobs as insights_jobs
from queue_app.insights import queries as insights
from queue_app.insights.models import WaitStat
from queue_app.insights.services import roll_up_branch
from queue_app.tickets import services as engine
from queue_app.tickets.models import Source, Ticket

from .apihelp import API, assert_error, assert_invalid, fast_passwords, ok

# Mondays 02:10 and 06:20 UTC: 09:10 and 13:20 in Jakarta (UTC+7), 10:10 and 14:20 in
# Makassar (UTC+8); and Sunday 23:30 UTC, which is already Monday 06:30 / 07:30 there
WEEK_1 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
# (hours after Monday 00:00 UTC, [waits in seconds of the tickets arriving then]) per week
HISTORY = [
    [(2 + 10 / 60, [500, 700]), (6 + 20 / 60, [100, 140]), (-0.5, [60])],
    [(2 + 10 / 60, [400, 600]), (6 + 20 / 60, [120, 120]), (-0.5, [60])],
    [(2 + 10 / 60, [1000, 1200]), (6 + 20 / 60, [100, 100]), (-0.5, [60])],
]
AFTER = WEEK_1 + timedelta(weeks=3, days=1)  # Tuesday of the fourth week


def _serve(make, branch, counter, staff, arrivals):
    """Issue a ticket at each arrival and call it after its wait, one at a time."""
    for arrived, wait in arrivals:
        ticket = make.ticket(branch, now=arrived)
        called = engine.call_next(counter, staff, now=arrived + timedelta(seconds=wait))
        assert called.id == ticket.id
        engine.start(called, staff, now=arrived + timedelta(seconds=wait + 10))
        engine.finish(called, staff, now=arrived + timedelta(seconds=wait + 60))


def _history(make, branch):
    staff = make.user(branches=[branch])
    counter = make.counter(branch, "Loket 1")
    make.open_counter(counter, staff, now=WEEK_1 - timedelta(days=1))
    arrivals = []
    for week, moments in enumerate(HISTORY):
        monday = WEEK_1 + timedelta(weeks=week)
        for hours, waits in moments:
            for i, wait in enumerate(waits):
                arrivals.append((monday + timedelta(hours=hours, minutes=i), wait))
    arrivals.sort()
    _serve(make, branch, counter, staff, arrivals)
    return staff, counter


@pytest.mark.parametrize(
    ("zone", "early", "late", "dawn"),
    [("Asia/Jakarta", 9, 13, 6), ("Asia/Makassar", 10, 14, 7)],
)
def test_typical_waits_by_local_hour_of_the_week(make, session, zone, early, late, dawn):
    branch = make.branch("BUSY1", timezone=zone)
    _history(make, branch)
    teller = make.service(branch, "teller")
    # nothing rolled up yet: no history, not zero waits
    assert insights.typical_waits(branch, teller, now=AFTER) == {}
    assert roll_up_branch(branch, now=AFTER) > 0

    typical = insights.typical_waits(branch, teller, now=AFTER, min_samples=5)
    # Monday is weekday 0, hours are the branch's own
    assert set(typical) == {(0, early), (0, late), (0, dawn)}
    # the weighted median of the days' medians (600, 500, 1100): 600, not the mean (733)
    assert typical[(0, early)] == insights.Typical(600, 6)
    assert typical[(0, late)] == insights.Typical(120, 6)
    # Sunday 23:30 UTC is Monday morning locally; three samples are too few: unknown
    assert typical[(0, dawn)] == insights.Typical(None, 3)
    assert insights.typical_waits(branch, teller, now=AFTER, min_samples=3)[(0, dawn)] == (
        insights.Typical(60, 3)
    )
    # the last week only
    recent = insights.typical_waits(branch, teller, now=AFTER, weeks=2, min_samples=2)
    assert recent[(0, early)] == insights.Typical(1100, 2)
    # another service of the branch has no history
    assert insights.typical_waits(branch, make.service(branch, "cs"), now=AFTER) == {}


def test_the_roll_up_reads_finished_days_once_and_never_today(app, make, session):
    branch = make.branch("BUSY2", timezone="Asia/Makassar")
    staff = make.user(branches=[branch])
    counter = make.counter(branch, "Loket 1")
    monday = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 WITA
    make.open_counter(counter, staff, now=monday)
    _serve(make, branch, counter, staff, [(monday, 300), (monday + timedelta(days=1), 200)])
    # an appointment checked in early waits for its time by design: not counted
    booked = make.ticket(
        branch,
        now=monday + timedelta(hours=1),
        source=Source.APPOINTMENT,
        appointment_due_at=monday + timedelta(hours=1, minutes=30),
    )
    assert engine.call_next(counter, staff, now=monday + timedelta(hours=1, minutes=40)) == booked
    engine.start(booked, staff, now=monday + timedelta(hours=1, minutes=41))
    engine.finish(booked, staff, now=monday + timedelta(hours=2))
    session.commit()

    def stats():
        rows = db.session.execute(
            select(WaitStat.day, WaitStat.hour, WaitStat.samples, WaitStat.median_wait_s)
            .where(WaitStat.branch_id == branch.id)
            .order_by(WaitStat.day, WaitStat.hour)
        ).all()
        db.session.rollback()
        return [tuple(r) for r in rows]

    tuesday_noon = monday + timedelta(days=1, hours=3)  # Tuesday is not over yet
    assert insights_jobs.roll_up_waits(app, tuesday_noon) == 1
    assert stats() == [(monday.date(), 9, 1, 300)]
    assert insights_jobs.roll_up_waits(app, tuesday_noon) == 0  # nothing new
    # 16:30 UTC Tuesday is 00:30 Wednesday in Makassar: Tuesday is finished there
    assert insights_jobs.roll_up_waits(app, monday + timedelta(days=1, hours=15, minutes=30)) == 1
    assert stats() == [(monday.date(), 9, 1, 300), (monday.date() + timedelta(days=1), 9, 1, 200)]


def test_a_roll_up_that_fails_leaves_nothing_and_other_branches_go_on(
    app, make, session, monkeypatch
):
    day = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    ids = []
    for code in ("BUSY3", "BUSY4"):
        branch = make.branch(code)
        staff = make.user(branches=[branch])
        counter = make.counter(branch, "Loket 1")
        make.open_counter(counter, staff, now=day)
        _serve(make, branch, counter, staff, [(day, 120)])
        ids.append(branch.id)
    session.commit()
    db.session.rollback()

    def failing_after_writing(branch, **kwargs):
        written = roll_up_branch(branch, **kwargs)
        assert written == 1
        if branch.code == "BUSY3":
            raise RuntimeError("the database went away")
        return written

    monkeypatch.setattr(insights_jobs.services, "roll_up_branch", failing_after_writing)
    assert insights_jobs.roll_up_waits(app, day + timedelta(days=1)) == 1
    counts = dict(
        db.session.execute(
            select(WaitStat.branch_id, func.count()).group_by(WaitStat.branch_id)
        ).all()
    )
    db.session.rollback()
    assert counts == {ids[1]: 1}
    monkeypatch.undo()
    assert insights_jobs.roll_up_waits(app, day + timedelta(days=1)) == 1  # the next run catches up
    db.session.rollback()


def _branch_at(make, code, lat, lon, *, waiting=0, open_counter=True, services=None, **kw):
    kwargs = {"services": services} if services else {}
    branch = make.branch(code, latitude=lat, longitude=lon, **kwargs, **kw)
    if open_counter:
        staff = make.user(branches=[branch])
        make.open_counter(make.counter(branch, "Loket 1"), staff, now=NOW)
    for _ in range(waiting):
        make.ticket(branch, now=NOW)
    return branch


NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta


def test_nearby_branches_with_a_shorter_wait_nearest_first(make, session):
    # Jakarta Sudirman; teller: 240 s per ticket, one counter open
    home = _branch_at(make, "HOME", -6.2088, 106.8200, waiting=3)  # 4 x 240 s
    _branch_at(make, "NEAR", -6.2000, 106.8200, waiting=4)  # 1 km, 5 x 240: longer
    _branch_at(make, "THAM", -6.1890, 106.8227, waiting=1)  # 2.2 km, 2 x 240: shorter
    _branch_at(make, "KUNI", -6.2227, 106.8308, waiting=0)  # 1.9 km, 240: shortest
    _branch_at(make, "SHUT", -6.2100, 106.8210, open_counter=False)  # no counter open
    _branch_at(make, "NOTL", -6.2090, 106.8201, services=[("cs", "B", 720)])  # no teller
    _branch_at(make, "GONE", -6.2089, 106.8202, active=False)
    _branch_at(make, "BDG1", -6.9218, 107.6079)  # Bandung, 117 km
    make.branch("NOWH")  # no coordinates
    teller = make.service(home, "teller")
    session.commit()  # estimates are made from committed changes (per event sequence)

    # the estimator (waits.live) at the last change (NOW), 240 s per teller ticket without
    # history: the idle counter calls the waiting tickets at 0, 240, 480 s and a ticket taken
    # now after them: HOME 3 waiting -> 720, NEAR 4 -> 960, THAM 1 -> 240, KUNI 0 -> 0
    assert insights.live_wait(home, teller, now=NOW) == 720
    nearby = insights.nearby_branches(home, teller, now=NOW, radius_km=25)
    assert [(n.branch.code, n.live_wait_s) for n in nearby] == [("KUNI", 0), ("THAM", 240)]
    assert [round(n.distance_km) for n in nearby] == [2, 2]
    assert nearby[0].distance_km < nearby[1].distance_km
    assert [n.branch.code for n in insights.nearby_branches(home, teller, now=NOW, limit=1)] == [
        "KUNI"
    ]
    far = insights.nearby_branches(home, teller, now=NOW, radius_km=200, limit=5)
    assert [n.branch.code for n in far] == ["KUNI", "THAM", "BDG1"]
    # a branch without coordinates has no neighbours
    nowhere = db.session.scalar(select(Branch).where(Branch.code == "NOWH"))
    assert insights.nearby_branches(nowhere, make.service(nowhere, "teller"), now=NOW) == []


def test_when_this_branch_has_no_counter_open_any_open_neighbour_is_shorter(make, session):
    home = _branch_at(make, "HOM2", -6.2088, 106.8200, open_counter=False)
    _branch_at(make, "THA2", -6.1890, 106.8227, waiting=6)
    teller = make.service(home, "teller")
    assert insights.live_wait(home, teller, now=NOW) is None
    assert [n.branch.code for n in insights.nearby_branches(home, teller, now=NOW)] == ["THA2"]


def test_distance_is_the_great_circle_one():
    # Jakarta (Monas) to Surabaya (Tugu Pahlawan): about 663 km as the crow flies
    assert insights.distance_km(-6.1754, 106.8272, -7.2458, 112.7378) == pytest.approx(663, abs=5)
    assert insights.distance_km(1.0, 2.0, 1.0, 2.0) == 0


# --- API ---------------------------------------------------------------------------------


def test_busy_hours_api(client, make, session, monkeypatch):
    home = _branch_at(make, "APIB", -6.2088, 106.8200, waiting=2)
    _branch_at(make, "APIN", -6.1890, 106.8227)
    teller = make.service(home, "teller")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    db.session.add(
        WaitStat(
            branch_id=home.id,
            service_id=teller.id,
            day=home.business_day(yesterday),
            hour=3,  # outside opening hours, still listed: it has history
            weekday=home.business_day(yesterday).weekday(),
            samples=7,
            median_wait_s=420,
            total_wait_s=3000,
        )
    )
    session.commit()

    body = ok(client.get(f"{API}/branches/APIB/services/teller/busy-hours"))
    assert set(body) == {"timezone", "live_wait_s", "hours", "nearby"}
    assert body["timezone"] == "Asia/Jakarta"
    # the estimator: the 2 waiting are called at 0 and 240 s, a ticket taken now at 480 s
    assert body["live_wait_s"] == 2 * 240
    hours = {(h["weekday"], h["hour"]): h for h in body["hours"]}
    weekday = home.business_day(yesterday).weekday()
    assert hours[(weekday, 3)] == {
        "weekday": weekday,
        "hour": 3,
        "typical_wait_s": 420,
        "samples": 7,
    }
    # every opening hour (08:00-15:00 on weekdays), unknown without history: null, not 0
    assert hours[(0, 8)] == {"weekday": 0, "hour": 8, "typical_wait_s": None, "samples": 0}
    assert {h for (d, h) in hours if d == 1} == set(range(8, 15)) | ({3} if weekday == 1 else set())
    assert (6, 10) not in hours  # closed on Sundays
    assert body["nearby"] == [
        # nobody waits at APIN, its counter is idle: called at once
        {"code": "APIN", "name": "Cabang APIN", "distance_km": 2.2, "live_wait_s": 0}
    ]
    assert ok(client.get(f"{API}/branches/APIB/services/teller/busy-hours?weeks=1"))


def test_busy_hours_api_errors(client, make, session):
    make.branch("APIE")
    session.commit()
    assert_error(client.get(f"{API}/branches/NOPE/services/teller/busy-hours"), 404)
    assert_error(client.get(f"{API}/branches/APIE/services/nope/busy-hours"), 404)
    assert_invalid(
        client.get(f"{API}/branches/APIE/services/teller/busy-hours?weeks=0"), "query.weeks"
    )
    assert_invalid(
        client.get(f"{API}/branches/APIE/services/teller/busy-hours?weeks=many"), "query.weeks"
    )


# --- the partial -------------------------------------------------------------------------


def _render(app, branch, service, lang, now):
    with app.test_request_context(f"/?lang={lang}"):
        busy = insights.busy_context(branch, service, now=now, locale=lang)
        html = render_template_string('{% include "insights/_busy.html" %}', busy=busy)
    return busy, html


def test_the_partial_in_both_languages(app, make, session):
    home = _branch_at(make, "PART", -6.2088, 106.8200, waiting=2)
    _branch_at(make, "PAR2", -6.1890, 106.8227)
    teller = make.service(home, "teller")
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    for weekday in range(5):
        day = (monday + timedelta(days=weekday)).date()
        for hour, wait in [(8, 200), (9, 1200), (10, 600), (13, 240), (14, 180)]:
            db.session.add(
                WaitStat(
                    branch_id=home.id,
                    service_id=teller.id,
                    day=day,
                    hour=hour,
                    weekday=weekday,
                    samples=6,
                    median_wait_s=wait,
                    total_wait_s=6 * wait,
                )
            )
    session.commit()  # estimates are made from committed changes (per event sequence)
    now = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)  # the next Tuesday, 10:30 WIB

    busy, html = _render(app, home, teller, "en", now)
    # the estimator, as of the branch's last change (the tickets issued at NOW): the 2 waiting
    # are called at 0 and 240 s, a ticket taken then at 480 s
    assert busy["live_wait_s"] == 480 and busy["waiting"] == 2
    assert [c["hour"] for c in busy["columns"]] == list(range(8, 15))
    today = busy["days"][0]
    assert today["label"] == "Today"
    levels = [c["level"] for c in today["cells"]]
    # target 900 s: quiet up to 450 s, busy above 900 s; 11-12 h have no history
    assert levels == ["quiet", "busy", "moderate", "unknown", "unknown", "quiet", "quiet"]
    assert [c["now"] for c in today["cells"]] == [False, False, True] + [False] * 4
    assert today["summary"] == "Usually quiet 8:00 AM\u20139:00 AM, 1:00 PM\u20133:00 PM."
    assert [d["label"] for d in busy["days"]][:2] == ["Today", "Tomorrow"]
    assert "How busy is it?" in html
    assert "8-9 min" in html and "2 waiting" in html  # 480 s as the estimator's range
    assert "Usually quiet 8:00" in html
    assert 'href="/b/PAR2"' in html and "Cabang PAR2" in html and "2.2 km" in html
    assert 'aria-current="time"' in html
    assert "css/insights.css" in html

    busy, html = _render(app, home, teller, "id", now)
    # the hours in Indonesian style (13.00), the days in Indonesian
    assert busy["days"][0]["summary"].endswith("08.00\u201309.00, 13.00\u201315.00.")
    assert busy["days"][2]["label"] == "Kam 12"
    assert busy["days"][2]["long_label"] == "Kamis, 12 Maret 2026"
    assert "13.00\u201315.00" in html and 'href="/b/PAR2"' in html


def test_the_partial_on_a_closed_day_and_without_history(app, make, session):
    home = make.branch("PAR3")
    teller = make.service(home, "teller")
    saturday = datetime(2026, 3, 7, 3, 0, tzinfo=UTC)
    busy, html = _render(app, home, teller, "en", saturday)
    assert busy["days"][0]["closed"] and busy["days"][0]["summary"] == "Closed"
    # the next open days: Monday and Tuesday (Sunday is closed too)
    assert [d["date"].isoformat() for d in busy["days"]] == [
        "2026-03-07",
        "2026-03-09",
        "2026-03-10",
    ]
    assert busy["days"][1]["summary"] == "Not enough history for this day yet."
    assert busy["live_wait_s"] is None and not busy["nearby"]
    assert "no counter open for this service right now" in html
    assert "Shorter wait nearby" not in html


# --- the demo history ----------------------------------------------------------------------


def test_the_demo_seed_brings_history_and_coordinates(app_ctx, monkeypatch):
    fast_passwords(monkeypatch)
    monkeypatch.setitem(app_ctx.config, "DEMO_HISTORY", True)
    runner = app_ctx.test_cli_runner()
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    db.session.remove()

    def count(model, *where):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))

    branches = {b.code: b for b in db.session.scalars(select(Branch))}
    assert all(b.latitude is not None and b.longitude is not None for b in branches.values())
    tickets, stats = count(Ticket), count(WaitStat)
    assert tickets > 1000 and stats > 100
    # only the three Jakarta branches have history, none of it today
    with_history = set(db.session.scalars(select(WaitStat.branch_id).distinct()))
    assert with_history == {branches[c].id for c in ("JKT01", "JKT02", "JKT03")}
    now = datetime.now(UTC)
    jkt = branches["JKT01"]
    assert db.session.scalar(select(func.max(WaitStat.day))) < jkt.business_day(now)
    typical = insights.typical_waits(jkt, make_service(jkt, "teller"), now=now)
    # a morning peak and a quiet hour before closing, on every weekday
    for weekday in range(5):
        assert typical[(weekday, 9)].wait_s > 2 * typical[(weekday, 14)].wait_s, weekday
    # Thamrin and Kuningan are nearby (when they have a shorter live wait)
    ranked = insights.nearby_branches(
        jkt, make_service(jkt, "teller"), now=now, radius_km=25, own_wait_s=None
    )
    assert ranked == []  # no counter is open anywhere after a seed
    db.session.rollback()

    assert runner.invoke(args=["demo", "seed"]).exit_code == 0  # idempotent
    db.session.remove()
    assert (count(Ticket), count(WaitStat)) == (tickets, stats)
    db.session.rollback()


def make_service(branch, code):
    return next(s for s in branch.services if s.code == code)


@pytest.mark.parametrize("minutes_after_midnight", [1, 9, 30])
def test_the_demo_seed_works_just_after_midnight_in_jakarta(
    app_ctx, monkeypatch, minutes_after_midnight
):
    """The opening queue of JKT01 is issued minutes before now: just after local midnight those
    minutes were yesterday, whose numbers the history already took. Its tickets stay on today."""
    import time_machine

    fast_passwords(monkeypatch)
    monkeypatch.setitem(app_ctx.config, "DEMO_HISTORY", True)
    # 00:MM in Jakarta (UTC+7) on a Friday
    at = datetime(2026, 12, 3, 17, minutes_after_midnight, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        result = app_ctx.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    db.session.remove()
    jkt = db.session.scalar(select(Branch).where(Branch.code == "JKT01"))
    waiting = db.session.scalars(
        select(Ticket).where(Ticket.branch_id == jkt.id, Ticket.status == "waiting")
    ).all()
    assert waiting and {t.business_day for t in waiting} == {jkt.business_day(at)}
