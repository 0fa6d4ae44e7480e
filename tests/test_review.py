"""The weekly management review (`cases/review.py`, `/cx/review`, its CSV and PDF exports).

Cases and responses are built by hand around the ISO week 2026-W48 (Monday 23 to Sunday 29
November 2026) in Asia/Jakarta (UTC+7) and Asia/Manila (UTC+8), so every number below is
worked out on paper: the Pareto counts and cumulative shares, the SLA rule, the age buckets.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from queue_app.accounts.models import Role
from queue_app.cases.models import Case, CaseStatus, CaseStep, RootCause, StepKind
from queue_app.cases.review import (
    BadWeek,
    pareto,
    parse_iso_week,
    week_bounds,
    weekly_review,
)
from queue_app.extensions import db
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse

from .apihelp import fast_passwords
from .test_devices import signed_in

WIB = ZoneInfo("Asia/Jakarta")
PHT = ZoneInfo("Asia/Manila")
W48 = date(2026, 11, 23)  # Monday
TICKETS_AT = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # when the rated tickets were issued
FAR_DAY = date(2026, 1, 5)  # business day of the responses behind cases: outside every window


def wib(*args) -> datetime:
    return datetime(*args, tzinfo=WIB).astimezone(UTC)


class Builder:
    def __init__(self, make):
        self.make = make

    def response(
        self,
        branch,
        *,
        day=FAR_DAY,
        nps=None,
        csat=None,
        ces=None,
        reasons=(),
        comment=None,
        submitted_at=None,
        service="teller",
    ) -> FeedbackResponse:
        ticket = self.make.ticket(branch, service, now=TICKETS_AT)
        response = FeedbackResponse(
            ticket_id=ticket.id,
            visit_id=ticket.visit_id,
            branch_id=branch.id,
            service_id=ticket.service_id,
            channel=FeedbackChannel.TABLET,
            nps=nps,
            csat=csat,
            ces=ces,
            reasons=list(reasons),
            comment=comment,
            business_day=day,
            submitted_at=submitted_at
            or datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5),
        )
        db.session.add(response)
        db.session.flush()
        return response

    def case(
        self,
        branch,
        opened_at,
        *,
        service="teller",
        cause=None,
        reason=None,
        status=None,
        level=1,
        first_contact_at=None,
        resolved_at=None,
    ) -> Case:
        # the response behind a case: CSAT 1 on a far day, so it stays out of the reasons,
        # comments and trend of W48 (those have tests of their own)
        response = self.response(branch, csat=1, service=service)
        if status is None:
            status = CaseStatus.RESOLVED if cause else CaseStatus.OPEN
        if status == CaseStatus.RESOLVED and resolved_at is None:
            resolved_at = opened_at + timedelta(hours=30)
        c = Case(
            response_id=response.id,
            ticket_id=response.ticket_id,
            branch_id=branch.id,
            service_id=response.service_id,
            level=level,
            status=status,
            opened_at=opened_at,
            due_at=None if status == CaseStatus.RESOLVED else opened_at + timedelta(hours=48),
            first_contact_at=first_contact_at,
            resolved_at=resolved_at,
            root_cause=cause,
            reason_code=reason,
            triggers=["csat<=2"],
        )
        db.session.add(c)
        db.session.flush()
        return c


@pytest.fixture
def build(make):
    return Builder(make)


@pytest.fixture
def net(make, build, monkeypatch):
    """JKT01 (Jakarta) and MNL01 (Manila) with the week's cases, and the people."""
    fast_passwords(monkeypatch)
    jkt = make.branch("JKT01")
    mnl = make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
    people = {
        "manager": make.user("dewi", role=Role.BRANCH_MANAGER, branches=[jkt]),
        "cx": make.user("lina", role=Role.CX_AGENT, branches=[jkt]),
        "executive": make.user("rudi", role=Role.EXECUTIVE),
        "staff": make.user("budi", branches=[jkt]),
    }
    P, R = RootCause.PEOPLE, RootCause.PROCESS
    # JKT01, inside W48 (Monday 00:05 WIB is Sunday 17:05 UTC; Sunday 23:30 WIB is 16:30 UTC)
    build.case(jkt, wib(2026, 11, 23, 0, 5), cause=P, reason="staff_attitude")
    build.case(jkt, wib(2026, 11, 24, 9, 0), cause=P, reason="staff_attitude", service="cs")
    build.case(jkt, wib(2026, 11, 29, 23, 30), cause=P, reason="staff_attitude")
    build.case(jkt, wib(2026, 11, 25, 10, 0), cause=R, reason="waiting_time")
    build.case(jkt, wib(2026, 11, 26, 10, 0), cause=R, reason="waiting_time", service="cs")
    build.case(jkt, wib(2026, 11, 27, 10, 0), cause=RootCause.PLACE, reason="facilities")
    build.case(jkt, wib(2026, 11, 28, 10, 0), status=CaseStatus.ACKNOWLEDGED)  # not resolved
    # JKT01, outside: Sunday 22 November 23:50 WIB (W47), Monday 30 November 00:10 WIB (W49)
    build.case(jkt, wib(2026, 11, 22, 23, 50), cause=P, reason="staff_attitude")
    build.case(jkt, wib(2026, 11, 30, 0, 10), cause=P, reason="staff_attitude")
    # MNL01: Monday 00:30 in Manila is Sunday 16:30 UTC, still W47 in Jakarta but W48 here
    build.case(mnl, datetime(2026, 11, 23, 0, 30, tzinfo=PHT), cause=P, reason="staff_attitude")
    # and Monday 30 November 00:30 in Manila is W49 there
    build.case(mnl, datetime(2026, 11, 30, 0, 30, tzinfo=PHT), cause=R, reason="waiting_time")
    db.session.commit()
    return {"jkt": jkt, "mnl": mnl, "make": make, **people}


AFTER_W48 = wib(2026, 12, 2, 10, 0)  # Wednesday of the next week


def rows(p):
    return [(r.rank, r.key, r.count, r.percent, r.cumulative_percent) for r in p.rows]


# --- weeks -------------------------------------------------------------------------------


def test_iso_weeks_parse_and_end_in_each_branchs_zone(net):
    assert parse_iso_week("2026-W48") == W48
    assert parse_iso_week("2026-w48") == W48
    assert parse_iso_week("2026W48") == W48
    assert parse_iso_week("2026-W01") == date(2025, 12, 29)  # ISO week 1 starts in December
    assert parse_iso_week("2026-W53") == date(2026, 12, 28)  # 2026 has 53 ISO weeks
    bad_weeks = ("", "2026", "2026-W00", "2025-W53", "2026-W99", "26-W4", "abc", "2026-W4x")
    for bad in (*bad_weeks, "0001-W01", "9999-W52", "1999-W10"):
        with pytest.raises(BadWeek):
            parse_iso_week(bad)
    assert week_bounds(net["jkt"], W48) == (
        datetime(2026, 11, 22, 17, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 17, 0, tzinfo=UTC),
    )
    assert week_bounds(net["mnl"], W48) == (
        datetime(2026, 11, 22, 16, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 16, 0, tzinfo=UTC),
    )
    with pytest.raises(BadWeek):
        weekly_review([net["jkt"]], W48 + timedelta(days=1), now=AFTER_W48)


# --- Pareto ------------------------------------------------------------------------------


def test_the_pain_area_pareto_of_one_branch(net):
    review = weekly_review([net["jkt"]], W48, now=AFTER_W48)
    assert review.cases == 7
    assert rows(review.paretos["cause"]) == [
        (1, "people:staff_attitude", 3, 100 * 3 / 7, 100 * 3 / 7),
        (2, "process:waiting_time", 2, 100 * 2 / 7, 100 * 5 / 7),
        (3, "place:facilities", 1, 100 * 1 / 7, 100 * 6 / 7),  # ties in key order
        (4, "unclassified", 1, 100 * 1 / 7, 100.0),
    ]
    assert rows(review.paretos["category"]) == [
        (1, "people", 3, 100 * 3 / 7, 100 * 3 / 7),
        (2, "process", 2, 100 * 2 / 7, 100 * 5 / 7),
        (3, "place", 1, 100 * 1 / 7, 100 * 6 / 7),
        (4, "unclassified", 1, 100 * 1 / 7, 100.0),
    ]
    assert rows(review.paretos["service"]) == [
        (1, "teller", 5, 100 * 5 / 7, 100 * 5 / 7),
        (2, "cs", 2, 100 * 2 / 7, 100.0),
    ]
    assert review.paretos["cause"].total == 7 and review.paretos["cause"].rest_count == 0


def test_the_pareto_of_several_branches_uses_each_branchs_week(net):
    review = weekly_review([net["mnl"], net["jkt"]], W48, now=AFTER_W48)
    assert [b.code for b in review.branches] == ["JKT01", "MNL01"]
    assert review.cases == 8
    assert rows(review.paretos["branch"]) == [
        (1, "JKT01", 7, 100 * 7 / 8, 100 * 7 / 8),
        (2, "MNL01", 1, 100 * 1 / 8, 100.0),
    ]
    assert rows(review.paretos["cause"])[0] == (1, "people:staff_attitude", 4, 50.0, 50.0)


def test_a_pareto_keeps_the_top_ten_and_counts_the_rest():
    counts = {f"r{i:02d}": n for i, n in enumerate([9, 8, 7, 6, 5, 4, 3, 3, 2, 2, 1, 1, 0])}
    result = pareto("reason", counts)
    total = 51
    assert result.total == total
    assert [r.key for r in result.rows] == [f"r{i:02d}" for i in range(10)]
    assert result.rows[-1].cumulative_percent == 100 * 49 / total
    assert (result.rest_count, result.rest_groups) == (2, 2)  # a zero count is no group
    assert pareto("reason", {}).rows == [] and pareto("reason", {}).total == 0


# --- what customers said ------------------------------------------------------------------


def test_the_customers_reasons_and_the_comments_behind_them(net, build):
    jkt, mnl = net["jkt"], net["mnl"]
    day = date(2026, 11, 25)
    at = wib(2026, 11, 25, 12, 0)
    # six negative answers naming the waiting time, five with a comment: the latest five shown
    for i in range(6):
        build.response(
            jkt,
            day=day,
            nps=i,
            reasons=["waiting_time"],
            comment=f"antri lama {i}" if i != 2 else "   ",
            submitted_at=at + timedelta(minutes=i),
        )
    build.response(
        jkt,
        day=day,
        nps=3,
        reasons=["staff_attitude", "waiting_time"],
        comment="=HYPERLINK(1)",
        submitted_at=at - timedelta(minutes=1),
    )
    build.response(mnl, day=date(2026, 11, 29), nps=6, reasons=["staff_attitude"], comment="rude")
    build.response(jkt, day=day, nps=4, reasons=["facilities"])
    build.response(jkt, day=day, nps=5)  # negative, no reason
    build.response(jkt, day=day, nps=7, reasons=["waiting_time"])  # passive: not counted
    build.response(jkt, day=day, csat=1, reasons=["waiting_time"])  # no NPS: not counted
    build.response(jkt, day=date(2026, 11, 30), nps=1, reasons=["process"])  # W49
    build.response(jkt, day=date(2026, 11, 22), nps=1, reasons=["process"])  # W47
    db.session.commit()

    review = weekly_review([jkt, mnl], W48, now=AFTER_W48)
    assert review.negative_responses == 10 and review.negative_without_reason == 1
    total = 7 + 2 + 1
    assert rows(review.reasons) == [
        (1, "waiting_time", 7, 100 * 7 / total, 100 * 7 / total),
        (2, "staff_attitude", 2, 100 * 2 / total, 100 * 9 / total),
        (3, "facilities", 1, 100 * 1 / total, 100.0),
    ]
    waiting, attitude, facilities = review.comments
    assert waiting.reason == "waiting_time" and waiting.count == 7
    assert [c.comment for c in waiting.comments] == [
        "antri lama 5",
        "antri lama 4",
        "antri lama 3",
        "antri lama 1",
        "antri lama 0",
    ]
    assert [(c.branch_code, c.nps, c.business_day) for c in waiting.comments[:1]] == [
        ("JKT01", 5, day)
    ]
    assert [(c.branch_code, c.comment) for c in attitude.comments] == [
        ("MNL01", "rude"),
        ("JKT01", "=HYPERLINK(1)"),
    ]
    assert facilities.comments == []

    only_mnl = weekly_review([mnl], W48, now=AFTER_W48)
    assert rows(only_mnl.reasons) == [(1, "staff_attitude", 1, 100.0, 100.0)]


# --- cases by level and age, SLA ----------------------------------------------------------


def test_sla_compliance_counts_contacts_within_48_hours(make, build):
    jkt = make.branch("JKT01")
    now = wib(2026, 11, 30, 10, 0)  # Monday after W48, 10:00
    t = wib(2026, 11, 24, 9, 0)
    build.case(jkt, t, first_contact_at=t + timedelta(hours=47))  # met
    build.case(jkt, t, first_contact_at=t + timedelta(hours=48))  # met: exactly 48 h
    build.case(jkt, t, first_contact_at=t + timedelta(hours=48, seconds=1))  # late
    build.case(jkt, t, status=CaseStatus.ACKNOWLEDGED)  # no contact, 6 days old: late
    build.case(  # resolved within a day, but nobody contacted the customer: late
        jkt, t, cause=RootCause.POLICY, reason="product", resolved_at=t + timedelta(hours=5)
    )
    sunday = wib(2026, 11, 29, 20, 0)  # 14 h before `now`, no contact yet: pending
    build.case(jkt, sunday)
    build.case(jkt, sunday, first_contact_at=sunday + timedelta(hours=1))  # met
    db.session.commit()

    sla = weekly_review([jkt], W48, now=now).sla
    assert (sla.met, sla.breached, sla.pending, sla.counted) == (3, 3, 1, 6)
    assert sla.share == 50.0 and sla.hours == 48
    # two days later the pending case is late
    later = weekly_review([jkt], W48, now=now + timedelta(hours=34)).sla
    assert (later.met, later.breached, later.pending) == (3, 4, 0)
    # a stricter rule from the caller
    strict = weekly_review([jkt], W48, now=now, sla_hours=24).sla
    assert (strict.met, strict.breached, strict.pending) == (1, 5, 1)
    assert weekly_review([jkt], W48 - timedelta(days=7), now=now).sla.share is None


def test_cases_by_level_and_the_open_backlog_by_age(make, build):
    jkt = make.branch("JKT01")
    end = wib(2026, 11, 30, 0, 0)  # the end of W48 in Jakarta
    now = end + timedelta(days=2)
    a = build.case(jkt, end - timedelta(hours=10))  # < 24 h
    build.case(jkt, end - timedelta(hours=24), status=CaseStatus.ACKNOWLEDGED)  # 24-48 h
    b = build.case(jkt, end - timedelta(hours=50), level=2)  # 48-72 h, level 2 before the end
    c = build.case(jkt, end - timedelta(hours=71), level=2)  # level 2 only after the end
    build.case(jkt, end - timedelta(days=9), level=3)  # W47, open: > 72 h at level 3
    # resolved after the end: still open at the end
    build.case(
        jkt,
        end - timedelta(hours=80),
        cause=RootCause.PRODUCT,
        reason="product",
        resolved_at=end + timedelta(hours=1),
    )
    # resolved before the end, and opened after it: not in the backlog
    build.case(
        jkt,
        end - timedelta(hours=30),
        cause=RootCause.PEOPLE,
        reason="staff_attitude",
        resolved_at=end - timedelta(hours=1),
    )
    build.case(jkt, end + timedelta(hours=1))
    for case_, at in ((b, end - timedelta(hours=2)), (c, end + timedelta(hours=3))):
        db.session.add(
            CaseStep(
                case_id=case_.id, kind=StepKind.ESCALATED, at=at, level=2, data={"from": 1, "to": 2}
            )
        )
    db.session.add(  # a note is no escalation
        CaseStep(case_id=a.id, kind=StepKind.NOTE, at=end - timedelta(hours=1), level=1)
    )
    db.session.commit()

    review = weekly_review([jkt], W48, now=now)
    assert review.as_of == end
    ages = {row.level: row.buckets for row in review.ages}
    assert ages == {
        # level 3 case: no escalation steps logged, so at the end it is counted at level 1
        1: {"lt24": 1, "24to48": 1, "48to72": 1, "ge72": 2},
        2: {"lt24": 0, "24to48": 0, "48to72": 1, "ge72": 0},
    }
    # the week's cases at their current level and status
    levels = {r.level: (r.open, r.acknowledged, r.resolved, r.total) for r in review.levels}
    assert levels == {1: (1, 1, 2, 4), 2: (2, 0, 0, 2)}

    # while the week runs, the backlog is aged now, at the cases' current levels
    midweek = end - timedelta(hours=5)
    running = weekly_review([jkt], W48, now=midweek)
    assert running.as_of == midweek
    ages = {row.level: row.buckets for row in running.ages}
    assert ages == {
        # the case resolved an hour before the end was still open 5 hours before it
        1: {"lt24": 2, "24to48": 1, "48to72": 0, "ge72": 1},
        2: {"lt24": 0, "24to48": 1, "48to72": 1, "ge72": 0},
        3: {"lt24": 0, "24to48": 0, "48to72": 0, "ge72": 1},
    }


# --- trend -------------------------------------------------------------------------------


def test_the_trend_covers_eight_weeks_with_the_design_formulas(make, build):
    jkt = make.branch("JKT01")
    mon = make.branch("MNL01", timezone="Asia/Manila")
    for nps_, csat_, ces_ in ((10, 5, 5), (9, 2, 1), (3, None, 3)):
        build.response(jkt, day=date(2026, 11, 29), nps=nps_, csat=csat_, ces=ces_)
    build.response(jkt, day=date(2026, 11, 11), nps=8)  # W46: one passive
    build.response(jkt, day=date(2026, 10, 5), nps=0)  # W41: the first week shown
    build.response(jkt, day=date(2026, 10, 4), nps=10)  # W40: too old
    build.response(jkt, day=date(2026, 11, 30), nps=10)  # W49: after the week
    build.response(mon, day=date(2026, 11, 23), nps=10)  # another branch
    db.session.commit()

    trend = weekly_review([jkt], W48, now=AFTER_W48).trend
    assert [w.label for w in trend] == [f"2026-W{n}" for n in range(41, 49)]
    last = trend[-1]
    assert (last.nps.n, last.nps.promoters, last.nps.passives, last.nps.detractors) == (3, 2, 0, 1)
    assert last.nps.score == pytest.approx(100 / 3)
    # 1.96 * 100 * sqrt((2/3 + 1/3 - (1/3)^2) / 3)
    assert last.nps.margin == pytest.approx(1.96 * 100 * (8 / 27) ** 0.5)
    assert (last.csat.score, last.csat.n) == (50.0, 2)
    assert (last.ces.score, last.ces.n) == (0.0, 3)  # one easy, one difficult, one neutral
    w46 = trend[5]
    assert (w46.label, w46.nps.score, w46.nps.n, w46.nps.margin) == ("2026-W46", 0.0, 1, 0.0)
    assert (trend[0].nps.score, trend[0].nps.n) == (-100.0, 1)
    empty = trend[1]
    assert (empty.nps.score, empty.nps.n, empty.csat.score, empty.ces.score) == (
        None,
        0,
        None,
        None,
    )


# --- the page and who may see it -----------------------------------------------------------


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def test_who_may_open_the_review(app, net):
    assert signed_in(app, "budi").get("/cx/review").status_code == 403  # staff
    anonymous = app.test_client()
    response = anonymous.get("/cx/review?week=2026-W48")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    for path in ("/cx/review.csv", "/cx/review.pdf"):
        assert signed_in(app, "budi").get(path).status_code == 403
        assert anonymous.get(path).status_code == 302

    manager = signed_in(app, "dewi")
    assert manager.get("/cx/review?week=2026-W48&branch=MNL01").status_code == 403
    assert manager.get("/cx/review.csv?week=2026-W48&branch=MNL01").status_code == 403
    assert manager.get("/cx/review?week=2026-W48&branch=NOPE1").status_code == 404
    # every branch of a manager is only their own: JKT01's 7 cases, not MNL01's
    page = manager.get("/cx/review?week=2026-W48&lang=en")
    assert page.status_code == 200
    assert 'data-testid="case-count">7<' in page.get_data(as_text=True)
    assert "MNL01" not in text_of(page)

    executive = signed_in(app, "rudi")
    page = executive.get("/cx/review?week=2026-W48&lang=en")
    assert 'data-testid="case-count">8<' in page.get_data(as_text=True)
    # a manager whose only branch was closed sees an empty review, not an error
    old = net["make"].branch("OLD01")
    net["make"].user("nobody", role=Role.BRANCH_MANAGER, branches=[old])
    old.active = False
    db.session.commit()
    empty = signed_in(app, "nobody")
    for path in ("/cx/review?week=2026-W48", "/cx/review.csv", "/cx/review.pdf"):
        assert empty.get(path).status_code == 200, path
    assert 'data-testid="case-count">0<' in empty.get("/cx/review").get_data(as_text=True)

    # the CX team sees the network, as on the case pages
    cx_agent = signed_in(app, "lina")
    assert cx_agent.get("/cx/review?week=2026-W48&branch=MNL01").status_code == 200
    page = cx_agent.get("/cx/review?week=2026-W48")
    assert 'data-testid="case-count">8<' in page.get_data(as_text=True)


@pytest.mark.parametrize("week", ["2026-W60", "abc", "2026-W48x", "0001-W01", "9999-W52"])
def test_a_bad_week_is_a_422_page(app, net, week):
    manager = signed_in(app, "dewi")
    for path in ("/cx/review", "/cx/review.csv", "/cx/review.pdf"):
        response = manager.get(path, query_string={"week": week})
        assert response.status_code == 422, (path, week, response.status_code)


def test_the_page_shows_the_week(app, net):
    manager = signed_in(app, "dewi")
    response = manager.get("/cx/review?week=2026-W48&branch=JKT01&lang=en")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    text = text_of(response)
    assert "Weekly review 2026-W48" in text
    assert '<svg class="pareto-chart"' in html and 'role="img"' in html
    assert '<title id="pain-title">' in html
    # the chart's numbers are in the table too
    assert "People · Staff attitude 3 42.9% 42.9%" in text
    assert "Process · Waiting time 2 28.6% 71.4%" in text
    assert "Not classified yet 1 14.3% 100.0%" in text
    assert "?week=2026-W47" in html and "?week=2026-W49" in html
    # the default week is the last complete one
    default = manager.get("/cx/review?branch=JKT01&lang=en")
    assert default.status_code == 200
    grouped = manager.get("/cx/review?week=2026-W48&by=service&lang=en")
    assert "Teller 5 71.4% 71.4%" in text_of(grouped)
    # an unknown grouping falls back to the root causes
    assert manager.get("/cx/review?week=2026-W48&by=zzz").status_code == 200
    # Indonesian numbers use a decimal comma
    assert "42,9%" in text_of(manager.get("/cx/review?week=2026-W48&lang=id"))


# --- exports -------------------------------------------------------------------------------


def parse_csv(response) -> list[dict]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_csv_export(app, net, build):
    build.response(
        net["jkt"], day=date(2026, 11, 25), nps=2, reasons=["waiting_time"], comment="=1+1 lama"
    )
    db.session.commit()
    manager = signed_in(app, "dewi")
    response = manager.get("/cx/review.csv?week=2026-W48&branch=JKT01&lang=en")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="review-2026-W48-JKT01.csv"' in response.headers["Content-Disposition"]
    table = parse_csv(response)
    assert list(table[0]) == ["section", "dimension", "rank", "key", "label", "metric", "value"]

    def pick(section, dimension, key, metric):
        found = [
            r["value"]
            for r in table
            if (r["section"], r["dimension"], r["key"], r["metric"])
            == (section, dimension, key, metric)
        ]
        assert len(found) == 1, (section, dimension, key, metric)
        return found[0]

    assert pick("meta", "", "week", "value") == "2026-W48"
    assert pick("meta", "", "branches", "value") == "JKT01"
    assert pick("pain_areas", "cause", "people:staff_attitude", "count") == "3"
    assert pick("pain_areas", "cause", "people:staff_attitude", "cumulative_percent") == "42.9"
    assert pick("pain_areas", "cause", "process:waiting_time", "cumulative_percent") == "71.4"
    assert pick("pain_areas", "cause", "unclassified", "cumulative_percent") == "100.0"
    assert pick("pain_areas", "cause", "_total", "count") == "7"
    assert pick("pain_areas", "branch", "JKT01", "count") == "7"
    cause_rows = [r for r in table if r["section"] == "pain_areas" and r["dimension"] == "cause"]
    labels = {r["key"]: r["label"] for r in cause_rows}
    assert labels["people:staff_attitude"] == "People · Staff attitude"
    assert pick("customer_reasons", "reason", "waiting_time", "count") == "1"
    assert pick("sla", "", "sla", "hours") == "48"
    assert pick("trend", "week", "2026-W48", "nps") == "-100.0"
    assert pick("trend", "week", "2026-W48", "nps_n") == "1"
    comment = [r for r in table if r["section"] == "comments" and r["metric"] == "comment"]
    assert [r["value"] for r in comment] == ["'=1+1 lama"]  # no formula for Excel
    assert [r["section"] for r in table].count("trend") == 8 * 7

    # labels in Indonesian, numbers still with a dot
    indonesian = parse_csv(manager.get("/cx/review.csv?week=2026-W48&branch=JKT01&lang=id"))
    shares = [r["value"] for r in indonesian if r["metric"] == "cumulative_percent"]
    assert "42.9" in shares


def texts_in(boxes) -> list[str]:
    found = []
    for box in boxes:
        if getattr(box, "text", None):
            found.append(box.text)
        found += texts_in(getattr(box, "children", None) or [])
    return found


def test_the_pdf_export(app, net, monkeypatch):
    import weasyprint

    from queue_app.cx import review as views

    rendered = []
    real_html = weasyprint.HTML

    def capture(*args, **kwargs):
        rendered.append(kwargs.get("string"))
        return real_html(*args, **kwargs)

    monkeypatch.setattr(weasyprint, "HTML", capture)
    manager = signed_in(app, "dewi")
    response = manager.get("/cx/review.pdf?week=2026-W48&branch=JKT01")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'filename="review-2026-W48-JKT01.pdf"' in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")

    html = rendered[-1]
    assert '<html lang="id">' in html  # the branch's language
    assert "2026-W48" in html and "JKT01" in html
    assert "42,9%" in html  # Indonesian decimal comma
    document = real_html(string=html, url_fetcher=views._no_fetch).render()
    assert len(document.pages) >= 1
    first = document.pages[0]
    # A4 landscape: 297 x 210 mm in CSS pixels
    assert first.width == pytest.approx(297 / 25.4 * 96, abs=1)
    assert first.height == pytest.approx(210 / 25.4 * 96, abs=1)
    # the running header of every page names the week and the branches
    for page in document.pages:
        header = " ".join(texts_in(page._page_box.children[1:]))  # the page's margin boxes
        assert "2026-W48" in header and "JKT01" in header, header

    executive = signed_in(app, "rudi")
    english = executive.get("/cx/review.pdf?week=2026-W48&branch=MNL01")
    assert english.status_code == 200
    assert '<html lang="en">' in rendered[-1] and "MNL01" in rendered[-1]
    # the link's language wins over the branch's
    executive.get("/cx/review.pdf?week=2026-W48&branch=MNL01&lang=id")
    assert '<html lang="id">' in rendered[-1]
