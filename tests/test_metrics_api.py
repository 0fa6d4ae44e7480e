"""GET /api/v1/branches/<code>/metrics: shape, figures, access, and the 4xx answers."""

from __future__ import annotations

from datetime import date

import pytest

from queue_app.feedback.models import FeedbackChannel

from .apihelp import API, assert_error, assert_invalid, ok
from .feedbackrows import respond

URL = f"{API}/branches/JKT01/metrics"
RANGE = "from=2026-03-30&to=2026-04-05"


@pytest.fixture
def rated(floor, make):
    """The mixed example of tests/test_metrics.py in JKT01's week 14, at two counters."""
    branch = floor.branch
    teller, cs = make.service(branch, "teller"), make.service(branch, "cs")
    t1, cs1 = floor.counters["Teller 1"], floor.counters["CS 1"]
    rows = [
        # day, nps, csat, ces, service, counter, wait s, quoted s
        (date(2026, 3, 30), 9, 5, 5, teller, t1, 120, 300),
        (date(2026, 3, 30), 10, 4, None, teller, t1, 200, 300),
        (date(2026, 3, 31), 9, 5, 4, teller, t1, 400, 300),
        (date(2026, 3, 31), 10, 5, 3, teller, t1, 400, 600),
        (date(2026, 4, 1), 9, None, None, teller, t1, 700, 600),
        (date(2026, 4, 1), 7, 4, 2, cs, cs1, 900, 1200),
        (date(2026, 4, 2), 8, 3, None, cs, cs1, 1300, None),
        (date(2026, 4, 3), 7, 3, 1, cs, cs1, 1500, 900),
        (date(2026, 4, 4), 6, 2, 2, cs, cs1, 2000, 900),
        (date(2026, 4, 5), 0, 1, 1, cs, cs1, 2400, 900),
    ]
    for day, nps, csat, ces, service, counter, wait, quoted in rows:
        respond(
            branch,
            day,
            nps=nps,
            csat=csat,
            ces=ces,
            service=service,
            counter=counter,
            staff=floor.staff if service is teller else floor.staff2,
            wait_s=wait,
            quoted_wait_s=quoted,
        )
    respond(branch, date(2026, 4, 6), nps=0)  # the day after the range
    respond(floor.other_branch, date(2026, 4, 1), nps=0)  # another branch
    return floor


def test_the_answer_has_the_promised_shape_and_figures(client, rated):
    body = ok(client.get(f"{URL}?{RANGE}", headers=rated.h_staff))
    # NPS of the mixed example: 5 promoters, 3 passives, 2 detractors of 10 -> 30
    # margin = 1.96 * 100 * sqrt((0.5 + 0.2 - 0.3^2) / 10) = 48.408 -> 48.4
    assert body["nps"] == {
        "score": 30.0,
        "n": 10,
        "margin": 48.4,
        "promoters": 5,
        "passives": 3,
        "detractors": 2,
    }
    # CSAT: 5 4 5 5 4 3 3 2 1 -> 4 or 5: 5 of 9 = 55.56 -> 55.6
    assert body["csat"] == {"score": 55.6, "n": 9}
    # CES: 5 4 3 2 1 2 1 -> easy 2, difficult 4 of 7 -> 100 * (2 - 4) / 7 = -28.57 -> -28.6
    assert body["ces"] == {"score": -28.6, "n": 7}
    assert body["branch"] == "JKT01" and body["timezone"] == "Asia/Jakarta"
    assert (body["from"], body["to"], body["group"]) == ("2026-03-30", "2026-04-05", "day")
    assert body["min_n"] == 30
    assert [p["period"] for p in body["series"]] == [
        "2026-03-30",
        "2026-03-31",
        "2026-04-01",
        "2026-04-02",
        "2026-04-03",
        "2026-04-04",
        "2026-04-05",
    ]
    # 30 March: 9 and 10 -> 100 +- 0
    assert body["series"][0]["nps"]["score"] == 100 and body["series"][0]["nps"]["margin"] == 0
    assert body["series"][0]["start"] == body["series"][0]["end"] == "2026-03-30"
    waits = {b["bucket"]: b["nps"]["n"] for b in body["by_wait"]}
    assert waits == {"0-5": 2, "5-10": 2, "10-20": 2, "20-30": 2, "30+": 2, "unknown": 0}
    quotes = {q["quote"]: q["nps"] for q in body["by_quote"]}
    # kept: 120<=300, 200<=300, 400<=600, 900<=1200 -> 9, 10, 10, 7: 3 promoters of 4 = 75
    assert (quotes["kept"]["n"], quotes["kept"]["score"]) == (4, 75.0)
    # not kept: 400>300 (9), 700>600 (9), 1500>900 (7), 2000>900 (6), 2400>900 (0)
    # -> 2 promoters, 2 detractors of 5 = 0
    assert (quotes["not_kept"]["n"], quotes["not_kept"]["score"]) == (5, 0.0)
    assert quotes["unknown"]["n"] == 1
    tps = body["touchpoints"]
    assert set(tps) == {"service", "counter", "staff", "channel"}
    services = {s["code"]: s for s in tps["service"]}
    assert services["teller"]["nps"]["score"] == 100.0 and services["teller"]["nps"]["n"] == 5
    # cs: 7, 8, 7, 6, 0 -> 0 promoters, 2 detractors of 5 = -40
    assert services["cs"]["nps"]["score"] == -40.0
    assert {c["name"] for c in tps["counter"]} == {"Teller 1", "CS 1"}
    assert {s["code"] for s in tps["staff"]} == {"budi", "siti"}
    assert [c["id"] for c in tps["channel"]] == ["tablet"]


def test_groups_by_week_and_month(client, rated):
    body = ok(client.get(f"{URL}?from=2026-03-23&to=2026-04-12&group=week", headers=rated.h_cx))
    assert [(p["period"], p["nps"]["n"]) for p in body["series"]] == [
        ("2026-W13", 0),
        ("2026-W14", 10),
        ("2026-W15", 1),
    ]
    body = ok(client.get(f"{URL}?from=2026-03-01&to=2026-04-30&group=month", headers=rated.h_cx))
    # March: 9, 10, 9, 10 -> 100; April: 9, 7, 8, 7, 6, 0, and the 0 of 6 April
    assert [(p["period"], p["nps"]["n"]) for p in body["series"]] == [
        ("2026-03", 4),
        ("2026-04", 7),
    ]
    assert body["series"][0]["nps"]["score"] == 100.0


def test_filters_narrow_every_figure(client, rated):
    cs1 = rated.counter_id("CS 1")
    body = ok(client.get(f"{URL}?{RANGE}&service=cs", headers=rated.h_manager))
    assert body["nps"]["n"] == 5 and body["nps"]["score"] == -40.0
    body = ok(client.get(f"{URL}?{RANGE}&counter={cs1}", headers=rated.h_manager))
    assert body["nps"]["n"] == 5
    body = ok(client.get(f"{URL}?{RANGE}&staff={rated.staff.id}", headers=rated.h_manager))
    assert body["nps"]["n"] == 5 and body["nps"]["score"] == 100.0
    body = ok(client.get(f"{URL}?{RANGE}&channel=qr", headers=rated.h_manager))
    assert body["nps"] == {
        "score": None,
        "n": 0,
        "margin": None,
        "promoters": 0,
        "passives": 0,
        "detractors": 0,
    }
    assert body["csat"] == {"score": None, "n": 0} and body["ces"] == {"score": None, "n": 0}


def test_channel_touchpoints(client, floor):
    respond(floor.branch, date(2026, 4, 1), nps=10, channel=FeedbackChannel.LINK)
    respond(floor.branch, date(2026, 4, 1), nps=0, channel=FeedbackChannel.QR)
    body = ok(client.get(f"{URL}?{RANGE}", headers=floor.h_exec))
    assert {c["id"]: c["nps"]["score"] for c in body["touchpoints"]["channel"]} == {
        "link": 100.0,
        "qr": -100.0,
    }


def test_who_may_read(client, rated):
    assert_error(client.get(f"{URL}?{RANGE}"), 401)
    assert_error(client.get(f"{URL}?{RANGE}", headers={"Authorization": "Bearer nope"}), 401)
    # staff, managers and the CX roles of the branch; network roles everywhere
    for headers in (rated.h_staff, rated.h_manager, rated.h_cx, rated.h_exec, rated.h_admin):
        ok(client.get(f"{URL}?{RANGE}", headers=headers))
    # staff of another branch may not
    assert_error(client.get(f"{URL}?{RANGE}", headers=rated.h_other), 403)
    # the CX agent (of JKT01 only) still reads MNL01: the CX team sees the network
    body = ok(client.get(f"{API}/branches/MNL01/metrics?{RANGE}", headers=rated.h_cx))
    assert body["nps"]["n"] == 1
    # a manager of JKT01 does not read MNL01
    assert_error(client.get(f"{API}/branches/MNL01/metrics?{RANGE}", headers=rated.h_manager), 403)


def test_unknown_branch_is_404(client, floor):
    assert_error(client.get(f"{API}/branches/NOPE1/metrics?{RANGE}", headers=floor.h_admin), 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "from"),
        ("from=2026-03-01", "to"),
        ("to=2026-03-01", "from"),
        ("from=2026-13-01&to=2026-03-02", "from"),
        ("from=2026-02-30&to=2026-03-02", "from"),
        ("from=yesterday&to=2026-03-02", "from"),
        ("from=2026-03-01&to=2026-03-01T10:00:00", "to"),
        ("from=1999-12-31&to=2000-01-01", "from"),
        # to before from
        ("from=2026-03-02&to=2026-03-01", "to"),
        # 367 days
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("from=2026-03-01&to=2026-03-02&group=year", "group"),
        ("from=2026-03-01&to=2026-03-02&channel=fax", "channel"),
        ("from=2026-03-01&to=2026-03-02&counter=abc", "counter"),
        ("from=2026-03-01&to=2026-03-02&counter=0", "counter"),
        ("from=2026-03-01&to=2026-03-02&counter=99999999999", "counter"),
        ("from=2026-03-01&to=2026-03-02&staff=-1", "staff"),
        ("from=2026-03-01&to=2026-03-02&service=" + "x" * 40, "service"),
    ],
)
def test_bad_queries_are_422(client, floor, query, field):
    response = client.get(f"{URL}?{query}", headers=floor.h_staff)
    assert_invalid(response, f"query.{field}", ctx=query)


def test_a_year_of_366_days_is_fine(client, floor):
    body = ok(client.get(f"{URL}?from=2024-01-01&to=2024-12-31&group=month", headers=floor.h_cx))
    assert len(body["series"]) == 12


def test_unknown_filters_are_422_with_their_code(client, floor):
    other_counter = floor.other_branch.counters[0].id
    cases = [
        ("service=forex", "service", "unknown_service"),
        (f"counter={other_counter}", "counter", "unknown_counter"),
        ("counter=99999", "counter", "unknown_counter"),
        ("staff=99999", "staff", "unknown_staff"),
    ]
    for query, field, code in cases:
        response = client.get(f"{URL}?{RANGE}&{query}", headers=floor.h_staff)
        assert_invalid(response, f"query.{field}", code=code, ctx=query)
