"""The live dashboard's figures and pages without a browser, against numbers worked out by
hand: the network overview (one row per branch, each figure from one grouped query), a
branch's view (queues, counters, service times, share within target, the day per hour), the
JSON state, who may see what, acknowledging an alert, and bad input.

The day (frozen, `now` = 2026-03-03 03:00 UTC = 10:00 in Jakarta, 11:00 in Manila):

JKT01 (Asia/Jakarta, UTC+7; opening hours 08:00-15:00; targets 900 s)
- A001 teller issued 01:00 UTC (08:00 WIB), called 01:10 at Teller 1 (wait 600), started
  01:11, finished 01:15 (transaction 240)
- A002 teller issued 01:05, called 01:20 (wait 900: within the target), started 01:20,
  finished 01:30 (transaction 600)
- A003 teller issued 02:10, called 02:40 (wait 1,800), started 02:41: in service at `now`
  (elapsed 1,140 s = 19:00)
- A004 teller issued 02:30: waiting 1,800 s at `now` (above its 900 s target: red)
- B001 cs issued 02:50: waiting 600 s
- Teller 1 open (serving A003), CS 1 open (idle), Teller 2 and Kredit 1 closed

MNL01 (Asia/Manila, UTC+8)
- three rated visits today (NPS 10, 9, 3: NPS +33.3 of 3), each issued 02:00 UTC and called
  after 300 s (so called 02:05: in the last hour), finished; one rated yesterday (NPS 0)
- A ticket issued 02:48: waiting 720 s = 80% of its 900 s target (amber); no counter open
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from queue_app.accounts.models import User
from queue_app.alerts import services as alerts
from queue_app.alerts.models import Alert, AlertStatus
from queue_app.dashboard import queries as q
from queue_app.extensions import db
from queue_app.tickets import services as engine

from .feedbackrows import respond

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)


def at(hh, mm):
    return datetime(2026, 3, 3, hh, mm, tzinfo=UTC)


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def person(username):
    return db.session.scalar(select(User).where(User.username == username))


@pytest.fixture
def day(floor, make):
    jkt, mnl = floor.branch, floor.other_branch
    teller1, cs1 = floor.counters["Teller 1"], floor.counters["CS 1"]
    budi, siti = floor.staff, floor.staff2
    engine.open_counter(teller1, budi, now=at(1, 0))
    a1 = make.ticket(jkt, "teller", now=at(1, 0))
    a2 = make.ticket(jkt, "teller", now=at(1, 5))
    assert engine.call_next(teller1, budi, now=at(1, 10)).id == a1.id
    engine.start(a1, budi, now=at(1, 11))
    engine.finish(a1, budi, now=at(1, 15))
    assert engine.call_next(teller1, budi, now=at(1, 20)).id == a2.id
    engine.start(a2, budi, now=at(1, 20))
    engine.finish(a2, budi, now=at(1, 30))
    a3 = make.ticket(jkt, "teller", now=at(2, 10))
    a4 = make.ticket(jkt, "teller", now=at(2, 30))
    assert engine.call_next(teller1, budi, now=at(2, 40)).id == a3.id
    engine.start(a3, budi, now=at(2, 41))
    make.ticket(jkt, "cs", now=at(2, 50))
    engine.open_counter(cs1, siti, now=at(2, 55))
    for score in (10, 9, 3):
        respond(mnl, moment=at(2, 0), nps=score, wait_s=300)
    respond(mnl, date(2026, 3, 2), nps=0, at=time(10, 0))
    make.ticket(mnl, "teller", now=at(2, 48))
    db.session.commit()
    return {"jkt": jkt, "mnl": mnl, "a3": a3, "a4": a4}


def test_the_overview_figures(session, day):
    rows = q.overview(session, [day["jkt"], day["mnl"]], NOW)
    jkt, mnl = rows
    assert jkt.branch.code == "JKT01" and mnl.branch.code == "MNL01"
    assert jkt.status == "red"  # A004 waits 1,800 s > 900 s
    assert (jkt.waiting, jkt.longest_wait_s) == (2, 1800)
    # called in the last hour: only A003 (wait 1,800)
    assert (jkt.hour_wait.n, jkt.hour_wait.mean_s) == (1, 1800)
    assert (jkt.open_counters, jkt.served_today) == (2, 2)
    assert jkt.feedback.nps().n == 0 and jkt.alerts == []

    assert mnl.status == "amber"  # 720 s >= 75% of 900 s
    assert (mnl.waiting, mnl.longest_wait_s) == (1, 720)
    assert (mnl.hour_wait.n, mnl.hour_wait.mean_s) == (3, 300)
    assert (mnl.open_counters, mnl.served_today) == (0, 3)  # yesterday's rated visit is not today
    nps = mnl.feedback.nps()
    assert (nps.promoters, nps.passives, nps.detractors) == (2, 0, 1)
    assert round(nps.score, 1) == 33.3


def test_status_colours():
    now = NOW
    calm = q.QueueNow(1, now - timedelta(seconds=600))  # 600 < 675
    near = q.QueueNow(1, now - timedelta(seconds=675))  # exactly 75%
    over = q.QueueNow(1, now - timedelta(seconds=901))

    class A:
        def __init__(self, status):
            self.status = status

    assert q.status_colour([(calm, 900)], [], now, 0.75) == "green"
    assert q.status_colour([(near, 900)], [], now, 0.75) == "amber"
    assert q.status_colour([(over, 900)], [], now, 0.75) == "red"
    assert q.status_colour([(calm, 900)], [A("acknowledged")], now, 0.75) == "amber"
    assert q.status_colour([(calm, 900)], [A("raised")], now, 0.75) == "red"
    assert q.status_colour([], [], now, 0.75) == "green"


def test_the_branch_view(session, day):
    view = q.branch_view(session, day["jkt"], NOW)
    assert view.day == date(2026, 3, 3)
    queues = {r.service.code: r for r in view.queues}
    assert (queues["teller"].waiting, queues["teller"].longest_wait_s) == (1, 1800)
    # EWT of a ticket taken now: the estimator's (waits.live), made at JKT's last change (CS 1
    # opened at 02:55 UTC); no history before today, so exactly the expected
    # durations (teller 240 s, cs 720 s), and no arrivals.
    # Teller 1 serves A003 since at(2, 40): 900 s in, past its 240 s, so the model gives it
    # 30 s more; then A004 (240 s); a new teller ticket is called at 30 + 240 = 270 s.
    assert queues["teller"].estimated_wait_s == 270
    # and its range, what customers are told: one point, every run being the same here
    assert queues["teller"].estimated_wait_range == {"low_s": 270, "high_s": 270}
    # CS 1 (cs, then loans) is idle: the cs ticket at once, 720 s; a new cs ticket at 720 s
    assert queues["cs"].estimated_wait_s == 720
    # a new loans ticket: CS 1 also serves loans, after the cs ticket; Kredit 1 is closed.
    # The new tickets of each service are tracked at no cost, so loans is reached at 720 s too
    assert queues["loans"].estimated_wait_s == 720
    assert (queues["cs"].waiting, queues["cs"].longest_wait_s) == (1, 600)
    assert queues["loans"].longest_wait_s is None
    assert [queues[c].colour for c in ("teller", "cs", "loans")] == ["red", "green", "green"]

    counters = {r.counter.name: r for r in view.counters}
    t1 = counters["Teller 1"]
    assert (t1.state, t1.ticket.number, t1.elapsed_s) == ("serving", "A003", 1140)
    assert (t1.served_today, t1.mean_service_s) == (2, 420)  # (240 + 600) / 2
    assert (counters["CS 1"].state, counters["CS 1"].ticket) == ("idle", None)
    assert counters["Teller 2"].state == counters["Kredit 1"].state == "closed"

    services = {r.service.code: r for r in view.services}
    teller = services["teller"]
    assert (teller.served, teller.mean_service_s, teller.median_service_s) == (2, 420, 420)
    assert (teller.called, teller.within_target) == (3, 2)  # 600 and 900 within 900
    assert round(teller.within_share, 1) == 66.7
    assert services["cs"].called == 0 and services["cs"].within_share is None
    assert (view.called, view.within_target) == (3, 2)

    # the day per local hour, 08:00 (opening) to the current hour
    hours = [
        (h.hour, h.peak_waiting, h.called, h.mean_wait_s, h.longest_wait_s) for h in view.hours
    ]
    assert hours == [
        (8, 2, 2, 750, 900),  # A001 and A002 waiting together at 08:05; waits 600, 900
        (9, 2, 1, 1800, 1800),  # A003 + A004 at 09:30, again A004 + B001 from 09:50
    ]


def test_nice_grid():
    assert q.nice_grid(4) == [0, 1, 2, 3, 4]
    assert q.nice_grid(7) == [0, 2, 4, 6, 8]
    assert q.nice_grid(30) == [0, 10, 20, 30, 40]
    assert q.nice_grid(0) == [0, 1, 2, 3, 4]


# --- pages -----------------------------------------------------------------------------------


@pytest.fixture
def frozen(monkeypatch):
    """The pages read the clock through `utcnow`: frozen at NOW."""
    from queue_app.dashboard import views

    monkeypatch.setattr(views, "utcnow", lambda: NOW)


def test_signed_out_staff_and_roles(client, day, frozen):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    sign_in(client, person("budi"))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/JKT01").status_code == 403
    assert client.get("/dashboard/state.json").status_code == 403


def test_a_manager_sees_their_branch_only(client, day, frozen):
    sign_in(client, person("dewi"))
    page = client.get("/dashboard/?lang=en").get_data(as_text=True)
    assert 'data-branch="JKT01"' in page and 'data-branch="MNL01"' not in page
    assert client.get("/dashboard/MNL01").status_code == 403
    assert client.get("/dashboard/MNL01/state.json").status_code == 403
    assert client.get("/dashboard/NOPE").status_code == 404
    assert client.get("/dashboard/" + "x" * 300).status_code == 404
    state = client.get("/dashboard/state.json").get_json()
    assert [b["code"] for b in state["branches"]] == ["JKT01"]


@pytest.mark.parametrize("username", ["lina", "rudi", "admin"])
def test_network_roles_see_every_branch(client, day, frozen, username):
    sign_in(client, person(username))
    state = client.get("/dashboard/state.json?lang=en").get_json()
    jkt, mnl = state["branches"]
    assert jkt == {
        "id": day["jkt"].id,
        "code": "JKT01",
        "name": day["jkt"].name,
        "timezone": "Asia/Jakarta",
        "seq": jkt["seq"],
        "status": "red",
        "waiting": 2,
        "longest_wait_s": 1800,
        "hour_wait": {"n": 1, "mean_s": 1800},
        "open_counters": 2,
        "served_today": 2,
        "nps": {"score": None, "n": 0, "margin": None},
        "open_alerts": 0,
    }
    assert jkt["seq"] > 0
    assert mnl["status"] == "amber" and mnl["served_today"] == 3
    assert mnl["nps"]["score"] == 33.3 and mnl["nps"]["n"] == 3
    assert set(state["html"]) == {"summary", "branches", "alerts"}


def test_the_overview_page_in_both_languages(client, day, frozen):
    sign_in(client, person("rudi"))
    en = client.get("/dashboard/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en
    row = en[en.index('data-branch="JKT01"') :]
    row = row[: row.index("</tr>")]
    assert 'data-status="red"' in row and ">30 min<" in row and 'data-testid="waiting">2<' in row
    mnl = en[en.index('data-branch="MNL01"') :]
    mnl = mnl[: mnl.index("</tr>")]
    assert "+33.3" in mnl and "12 min" in mnl and "5 min" in mnl
    idn = client.get("/dashboard/?lang=id").get_data(as_text=True)
    assert '<html lang="id">' in idn and "+33,3" in idn


def test_the_branch_page_and_its_state(client, day, frozen):
    sign_in(client, person("dewi"))
    page = client.get("/dashboard/JKT01?lang=en").get_data(as_text=True)
    assert 'data-testid="waiting-chart"' in page and 'data-testid="wait-chart"' in page
    assert 'data-counter="Teller 1" data-state="serving"' in page and "19:00" in page
    assert "66.7%" in page

    # each queue's estimated wait as customers read it (the range: whole minutes under 10,
    # then steps of 5), the mean beside it
    def ewt(code):
        row = page[page.index(f'<tr data-service="{code}"') :]
        cell = row[row.index('data-testid="ewt"') :]
        return cell[: cell.index("</td>")]

    assert ">4-5 min <" in ewt("teller") and ">mean 4 min<" in ewt("teller")
    assert ">10-15 min <" in ewt("loans") and ">mean 12 min<" in ewt("loans")
    state = client.get("/dashboard/JKT01/state.json").get_json()
    assert state["business_day"] == "2026-03-03"
    assert state["within_target"] == {"called": 3, "within": 2, "percent": 66.7}
    assert state["queues"][0] == {
        "service": "teller",
        "waiting": 1,
        "longest_wait_s": 1800,
        "estimated_wait_s": 270,  # the estimator: see test_the_branch_view
        "estimated_wait_range": {"low_s": 270, "high_s": 270},
        "open_counters": 1,
        "target_wait_s": 900,
        "status": "red",
    }
    teller1 = next(c for c in state["counters"] if c["name"] == "Teller 1")
    assert teller1 == {
        "id": teller1["id"],
        "name": "Teller 1",
        "state": "serving",
        "ticket": "A003",
        "elapsed_s": 1140,
        "served_today": 2,
        "mean_service_s": 420,
    }
    assert [h["peak_waiting"] for h in state["hours"]] == [2, 2]
    assert set(state["html"]) == {"summary", "alerts", "floor", "day"}


# --- alerts ----------------------------------------------------------------------------------


@pytest.fixture
def raised(day, session):
    """A longest-wait rule of JKT01 (raise at 20 min) evaluated at NOW: A004 waits 30 min."""
    rule = alerts.create_rule(
        session, day["jkt"], metric="longest_wait_s", raise_at=1200, clear_at=600, now=NOW
    )
    made = alerts.evaluate_branch(session, day["jkt"], NOW)
    session.commit()
    assert [a.rule_id for a in made] == [rule.id]
    return made[0]


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_open_alerts_on_both_pages_and_acknowledging(client, raised, frozen):
    sign_in(client, person("lina"))  # a CX agent sees the alert, without the button
    page = client.get("/dashboard/JKT01?lang=en").get_data(as_text=True)
    assert f'data-alert="{raised.id}"' in page and 'data-testid="acknowledge"' not in page
    assert (
        client.post(
            f"/dashboard/alerts/{raised.id}/acknowledge", data={"csrf_token": csrf(page)}
        ).status_code
        == 403
    )

    sign_in(client, person("dewi"))
    state = client.get("/dashboard/state.json?lang=en").get_json()
    assert state["branches"][0]["open_alerts"] == 1 and state["branches"][0]["status"] == "red"
    assert [a["id"] for a in state["alerts"]] == [raised.id]
    page = client.get("/dashboard/JKT01?lang=en").get_data(as_text=True)
    assert f'data-alert="{raised.id}"' in page and 'data-testid="acknowledge"' in page
    token = csrf(page)
    path = f"/dashboard/alerts/{raised.id}/acknowledge"

    # without the CSRF token: refused, nothing changes
    assert client.post(path, data={"note": "x"}).status_code == 400
    assert db.session.get(Alert, raised.id).status == AlertStatus.RAISED
    assert (
        client.post("/dashboard/alerts/999999/acknowledge", data={"csrf_token": token}).status_code
        == 404
    )

    response = client.post(
        path, data={"csrf_token": token, "note": "Teller 2 opens now", "next": "/dashboard/JKT01"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/dashboard/JKT01")
    alert = db.session.get(Alert, raised.id)
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by_id == person("dewi").id

    # twice: a message, no 500; a foreign `next` is not followed
    again = client.post(path, data={"csrf_token": token, "next": "https://evil.example/"})
    assert again.status_code == 303 and again.headers["Location"].endswith("/dashboard/JKT01")
    page = client.get("/dashboard/JKT01?lang=en").get_data(as_text=True)
    assert "Someone acknowledged the alert already." in page
    state = client.get("/dashboard/JKT01/state.json").get_json()
    assert state["alerts"][0]["status"] == "acknowledged"
    assert state["branch"]["status"] == "red"  # A004 still waits past its target
