"""Feedback metrics: the formulas of DESIGN.md against hand-computed examples, and the
queries (SQL counts) per day / ISO week / month in the branch's zone, per touchpoint, by wait
bucket and by whether the quoted wait was kept."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event

from queue_app.accounts.models import Role
from queue_app.extensions import db
from queue_app.feedback import metric_queries as mq
from queue_app.feedback.metrics import Tally, ces, csat, display, nps, nps_from_counts
from queue_app.feedback.models import FeedbackChannel

from .feedbackrows import respond

# --- NPS -------------------------------------------------------------------------------


def test_nps_without_answers_has_no_score_and_no_margin():
    result = nps([])
    assert result.score is None and result.margin is None
    assert (result.n, result.promoters, result.passives, result.detractors) == (0, 0, 0, 0)
    # unanswered questions (None) are not answers
    assert nps([None, None]).n == 0


def test_nps_all_passives_is_zero_with_margin_zero():
    # 4 passives: pP = 0, pD = 0 -> NPS = 0 - 0 = 0
    # margin = 1.96 * 100 * sqrt((0 + 0 - 0^2) / 4) = 0
    result = nps([7, 8, 7, 8])
    assert result.score == 0
    assert result.margin == 0
    assert (result.n, result.promoters, result.passives, result.detractors) == (4, 0, 4, 0)


def test_nps_of_one_promoter_is_100_with_margin_zero():
    # n = 1, pP = 1, pD = 0 -> NPS = 100; margin = 196 * sqrt((1 + 0 - 1^2) / 1) = 0
    result = nps([10])
    assert (result.score, result.margin, result.n, result.promoters) == (100, 0, 1, 1)
    # one detractor: pD = 1 -> NPS = -100; margin = 196 * sqrt((0 + 1 - (-1)^2) / 1) = 0
    result = nps([0])
    assert (result.score, result.margin, result.detractors) == (-100, 0, 1)


def test_nps_mixed_example_with_its_margin():
    # 10 answers: 5 promoters (9, 10, 9, 10, 9), 3 passives (7, 8, 7), 2 detractors (6, 0)
    # pP = 5/10 = 0.5, pD = 2/10 = 0.2 -> NPS = 100 * (0.5 - 0.2) = 30
    # margin = 1.96 * 100 * sqrt((0.5 + 0.2 - (0.5 - 0.2)^2) / 10)
    #        = 196 * sqrt((0.7 - 0.09) / 10) = 196 * sqrt(0.061) = 196 * 0.246982 = 48.408
    result = nps([9, 10, 9, 10, 9, 7, 8, 7, 6, 0])
    assert (result.n, result.promoters, result.passives, result.detractors) == (10, 5, 3, 2)
    assert result.score == pytest.approx(30)
    assert result.margin == pytest.approx(48.408, abs=0.001)
    assert display(result.margin) == 48.4
    assert display(result.score) == 30.0


def test_nps_half_promoters_half_detractors():
    # 2 promoters, 2 detractors: pP = pD = 0.5 -> NPS 0
    # margin = 196 * sqrt((0.5 + 0.5 - 0^2) / 4) = 196 * sqrt(0.25) = 196 * 0.5 = 98
    result = nps([9, 10, 3, 5])
    assert result.score == 0
    assert result.margin == pytest.approx(98)


def test_nps_three_promoters_one_detractor():
    # pP = 0.75, pD = 0.25 -> NPS 50
    # margin = 196 * sqrt((1.0 - 0.5^2) / 4) = 196 * sqrt(0.1875) = 196 * 0.4330127 = 84.870
    result = nps([9, 9, 10, 2])
    assert result.score == pytest.approx(50)
    assert result.margin == pytest.approx(84.870, abs=0.001)


def test_nps_group_boundaries():
    # 0-6 detractors, 7-8 passives, 9-10 promoters
    for value in range(0, 7):
        assert nps([value]).detractors == 1, value
    for value in (7, 8):
        assert nps([value]).passives == 1, value
    for value in (9, 10):
        assert nps([value]).promoters == 1, value


@pytest.mark.parametrize("bad", [-1, 11, 5.5, "9", True])
def test_nps_refuses_what_is_not_an_answer(bad):
    with pytest.raises(ValueError):
        nps([9, bad])


def test_nps_from_counts_is_the_same_as_from_answers():
    assert nps_from_counts(5, 3, 2) == nps([9, 10, 9, 10, 9, 7, 8, 7, 6, 0])
    assert nps_from_counts(0, 0, 0) == nps([])


# --- CSAT and CES ------------------------------------------------------------------------


def test_csat_is_the_share_of_4_and_5():
    assert csat([]) == (None, 0)
    # 5 and 4 of (5, 4, 3, 2, 1): 2 / 5 = 40%
    score, n = csat([5, 4, 3, 2, 1])
    assert (score, n) == (pytest.approx(40), 5)
    # one 3: 0 of 1 = 0% (a score, not "no answer")
    assert csat([3]) == (0, 1)
    assert csat([4]) == (100, 1)
    # 2 of 3 -> 66.666...%, shown as 66.7
    score, n = csat([5, 5, 1, None])
    assert n == 3 and display(score) == 66.7
    with pytest.raises(ValueError):
        csat([0])
    with pytest.raises(ValueError):
        csat([6])


def test_ces_is_easy_minus_difficult():
    assert ces([]) == (None, 0)
    # easy (4-5): 2, difficult (1-2): 2 of 5 -> 100 * (2 - 2) / 5 = 0
    assert ces([5, 4, 3, 2, 1]) == (0, 5)
    # only neutral answers: 0 (counted in n)
    assert ces([3, 3]) == (0, 2)
    # easy 1, difficult 3 of 4 -> 100 * (1 - 3) / 4 = -50
    assert ces([1, 2, 2, 5]) == (-50, 4)
    assert ces([5]) == (100, 1)
    assert ces([1]) == (-100, 1)
    with pytest.raises(ValueError):
        ces([7])


def test_display_rounds_to_one_decimal_and_never_shows_minus_zero():
    assert display(None) is None
    assert display(48.4084290180956) == 48.4
    assert str(display(-0.04)) == "0.0"
    assert display(-12.36) == -12.4


def test_tallies_add_up():
    a = Tally(promoters=1, passives=2, csat_n=3, csat_satisfied=1)
    b = Tally(detractors=4, ces_n=2, ces_easy=1, ces_difficult=1)
    total = a + b
    assert (total.promoters, total.passives, total.detractors) == (1, 2, 4)
    assert (total.csat_n, total.csat_satisfied, total.ces_n) == (3, 1, 2)
    assert total.responses == 7


# --- queries -----------------------------------------------------------------------------


@pytest.fixture
def jakarta(make):
    return make.branch(
        "JKT01",
        counters=[("Teller 1", ["teller"]), ("CS 1", ["cs", "loans"])],
    )


@pytest.fixture
def manila(make):
    return make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")


def test_a_range_without_responses(jakarta):
    report = mq.report([jakarta.id], date(2026, 3, 2), date(2026, 3, 4))
    assert report.total == Tally()
    assert report.total.nps().score is None
    assert [p.label for p in report.series] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert all(p.tally == Tally() for p in report.series)
    assert all(not tps for tps in report.touchpoints.values())


def test_totals_from_sql_match_the_formulas(jakarta, make):
    day = date(2026, 3, 3)
    answers = [
        # nps, csat, ces
        (9, 5, 5),
        (10, 4, None),
        (9, 5, 4),
        (10, 5, 3),
        (9, None, None),
        (7, 4, 2),
        (8, 3, None),
        (7, 3, 1),
        (6, 2, 2),
        (0, 1, 1),
        (None, 5, 5),  # only the CSAT and CES questions answered
    ]
    for n_, c_, e_ in answers:
        respond(jakarta, day, nps=n_, csat=c_, ces=e_)
    report = mq.report([jakarta.id], day, day)
    total = report.total
    # NPS: the 10 answers of the mixed example -> 30 +- 48.4
    result = total.nps()
    assert (result.n, result.promoters, result.passives, result.detractors) == (10, 5, 3, 2)
    assert result.score == pytest.approx(30)
    assert result.margin == pytest.approx(196 * math.sqrt(0.061))
    # CSAT: answers 5 4 5 5 4 3 3 2 1 5 -> 4 or 5: 6 of 10 = 60%
    assert total.csat() == (pytest.approx(60), 10)
    # CES: answers 5 4 3 2 1 2 1 5 -> easy 3, difficult 4 of 8 -> 100 * (3 - 4) / 8 = -12.5
    assert total.ces() == (pytest.approx(-12.5), 8)
    assert total.csat() == csat([c for _, c, _ in answers])
    assert total.ces() == ces([e for _, _, e in answers])


def test_only_the_branches_and_days_asked_count(jakarta, manila):
    respond(jakarta, date(2026, 3, 1), nps=0)  # the day before the range
    respond(jakarta, date(2026, 3, 2), nps=10)
    respond(jakarta, date(2026, 3, 4), nps=9)
    respond(jakarta, date(2026, 3, 5), nps=0)  # the day after
    respond(manila, date(2026, 3, 3), nps=0)  # another branch
    report = mq.report([jakarta.id], date(2026, 3, 2), date(2026, 3, 4))
    assert report.total.nps().n == 2 and report.total.nps().score == 100
    network = mq.report(None, date(2026, 3, 2), date(2026, 3, 4))
    assert network.total.nps().n == 3
    # 2 promoters, 1 detractor of 3 -> 100 * (2 - 1) / 3 = 33.3
    assert display(network.total.nps().score) == 33.3
    assert {tp.item.code: tp.tally.nps().n for tp in network.touchpoints["branch"]} == {
        "JKT01": 2,
        "MNL01": 1,
    }


def test_grouping_by_day_week_and_month_across_a_month_boundary_in_jakarta(jakarta):
    # Monday 2026-03-30 .. Sunday 2026-04-05 is ISO week 14, 2026-04-06 starts week 15
    days = {
        date(2026, 3, 27): [9],  # Friday of week 13
        date(2026, 3, 30): [10, 0],
        date(2026, 3, 31): [8],
        date(2026, 4, 1): [9, 9],
        date(2026, 4, 5): [3],
        date(2026, 4, 6): [10],
    }
    for day, scores in days.items():
        for score in scores:
            respond(jakarta, day, nps=score)
    start, end = date(2026, 3, 27), date(2026, 4, 6)

    by_day = mq.report([jakarta.id], start, end, group="day").series
    assert len(by_day) == 11  # every day of the range, empty ones too
    assert {p.label: p.tally.nps().n for p in by_day if p.tally.nps().n} == {
        "2026-03-27": 1,
        "2026-03-30": 2,
        "2026-03-31": 1,
        "2026-04-01": 2,
        "2026-04-05": 1,
        "2026-04-06": 1,
    }

    by_week = mq.report([jakarta.id], start, end, group="week").series
    assert [(p.label, p.start, p.end) for p in by_week] == [
        # the first and last weeks are cut by the range
        ("2026-W13", date(2026, 3, 27), date(2026, 3, 29)),
        ("2026-W14", date(2026, 3, 30), date(2026, 4, 5)),
        ("2026-W15", date(2026, 4, 6), date(2026, 4, 6)),
    ]
    week14 = by_week[1].tally.nps()
    # week 14: 10, 0, 8, 9, 9, 3 -> 3 promoters, 1 passive, 2 detractors of 6
    # NPS = 100 * (3 - 2) / 6 = 16.67
    assert (week14.promoters, week14.passives, week14.detractors) == (3, 1, 2)
    assert display(week14.score) == 16.7

    by_month = mq.report([jakarta.id], start, end, group="month").series
    assert [(p.label, p.tally.nps().n) for p in by_month] == [("2026-03", 4), ("2026-04", 4)]
    # March: 9, 10, 0, 8 -> 2 promoters, 1 detractor of 4 -> 25
    # April: 9, 9, 3, 10 -> 3 promoters, 1 detractor of 4 -> 50
    assert [p.tally.nps().score for p in by_month] == [pytest.approx(25), pytest.approx(50)]


def test_an_iso_week_spanning_new_year_has_the_iso_year(jakarta):
    # 2026-12-28 (Monday) .. 2027-01-03 is week 53 of 2026
    respond(jakarta, date(2027, 1, 2), nps=10)
    series = mq.report([jakarta.id], date(2026, 12, 31), date(2027, 1, 4), group="week").series
    assert [p.label for p in series] == ["2026-W53", "2027-W01"]
    assert series[0].tally.nps().n == 1


def test_the_same_instant_counts_on_each_branch_s_own_day(jakarta, manila):
    # 2026-03-31 16:30 UTC is 23:30 on 31 March in Jakarta (UTC+7) but 00:30 on 1 April in
    # Manila (UTC+8): the Jakarta response is March's, the Manila one April's
    moment = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)
    respond(jakarta, moment=moment, nps=10)
    respond(manila, moment=moment, nps=0)
    start, end = date(2026, 3, 1), date(2026, 4, 30)
    jkt = mq.report([jakarta.id], start, end, group="month").series
    mnl = mq.report([manila.id], start, end, group="month").series
    assert [(p.label, p.tally.nps().n) for p in jkt] == [("2026-03", 1), ("2026-04", 0)]
    assert [(p.label, p.tally.nps().n) for p in mnl] == [("2026-03", 0), ("2026-04", 1)]
    # by day, in the network view, each on its own branch's calendar
    days = mq.report(None, date(2026, 3, 31), date(2026, 4, 1)).series
    assert [(p.label, p.tally.promoters, p.tally.detractors) for p in days] == [
        ("2026-03-31", 1, 0),
        ("2026-04-01", 0, 1),
    ]


def test_nps_by_wait_bucket(jakarta):
    day = date(2026, 3, 3)
    waits = [
        # wait in seconds -> bucket (minutes), nps
        (0, 10),  # 0-5
        (299, 9),  # 0-5
        (300, 8),  # 5-10: a bucket holds its lower bound
        (599, 10),  # 5-10
        (600, 6),  # 10-20
        (1199, 10),  # 10-20
        (1200, 3),  # 20-30
        (1799, 5),  # 20-30
        (1800, 2),  # 30+
        (7200, 0),  # 30+
        (None, 10),  # unknown
    ]
    for wait, score in waits:
        respond(jakarta, day, nps=score, wait_s=wait)
    buckets = mq.report([jakarta.id], day, day).by_wait
    assert [(b.key, b.low_s, b.high_s) for b in buckets] == [
        ("0-5", 0, 300),
        ("5-10", 300, 600),
        ("10-20", 600, 1200),
        ("20-30", 1200, 1800),
        ("30+", 1800, None),
        ("unknown", None, None),
    ]
    scores = {b.key: b.tally.nps() for b in buckets}
    assert scores["0-5"].score == 100  # 2 promoters of 2
    assert scores["5-10"].score == 50  # 1 promoter, 1 passive
    assert scores["10-20"].score == 0  # 1 promoter, 1 detractor
    assert scores["20-30"].score == -100
    assert scores["30+"].score == -100 and scores["30+"].n == 2
    assert scores["unknown"].n == 1
    # other bucket bounds (configuration)
    custom = mq.report([jakarta.id], day, day, wait_buckets_min=[10]).by_wait
    assert [(b.key, b.tally.nps().n) for b in custom] == [("0-10", 4), ("10+", 6), ("unknown", 1)]
    with pytest.raises(ValueError):
        mq.report([jakarta.id], day, day, wait_buckets_min=[10, 5])


def test_nps_by_quote_kept(jakarta):
    day = date(2026, 3, 3)
    respond(jakarta, day, nps=10, wait_s=600, quoted_wait_s=600)  # kept: waited what was told
    respond(jakarta, day, nps=9, wait_s=300, quoted_wait_s=600)  # kept
    respond(jakarta, day, nps=2, wait_s=601, quoted_wait_s=600)  # not kept by one second
    respond(jakarta, day, nps=8, wait_s=1500, quoted_wait_s=600)  # not kept
    respond(jakarta, day, nps=7, wait_s=600, quoted_wait_s=None)  # unknown: nothing quoted
    respond(jakarta, day, nps=0, wait_s=None, quoted_wait_s=600)  # unknown: never called
    quote = mq.report([jakarta.id], day, day).by_quote
    assert list(quote) == ["kept", "not_kept", "unknown"]
    assert quote["kept"].nps().score == 100 and quote["kept"].nps().n == 2
    # not kept: 1 detractor, 1 passive of 2 -> -50
    assert quote["not_kept"].nps().score == -50
    # unknown: 1 passive, 1 detractor -> -50
    assert quote["unknown"].nps().n == 2 and quote["unknown"].nps().score == -50


def test_touchpoints_and_filters(jakarta, make):
    day = date(2026, 3, 3)
    teller, cs = make.service(jakarta, "teller"), make.service(jakarta, "cs")
    c1, c2 = make.counter(jakarta, "Teller 1"), make.counter(jakarta, "CS 1")
    budi = make.user("budi", branches=[jakarta])
    siti = make.user("siti", branches=[jakarta])
    respond(jakarta, day, nps=10, service=teller, counter=c1, staff=budi)
    respond(jakarta, day, nps=9, service=teller, counter=c1, staff=budi, channel=FeedbackChannel.QR)
    respond(jakarta, day, nps=0, service=cs, counter=c2, staff=siti, channel=FeedbackChannel.LINK)
    respond(jakarta, day, nps=8, service=cs, channel=FeedbackChannel.LINK)  # no counter/staff
    report = mq.report([jakarta.id], day, day)
    tps = report.touchpoints

    def n_by(kind, name):
        return {name(tp): tp.tally.nps().n for tp in tps[kind]}

    assert n_by("service", lambda tp: tp.item.code) == {"teller": 2, "cs": 2}
    assert n_by("counter", lambda tp: tp.item.name if tp.item else None) == {
        "Teller 1": 2,
        "CS 1": 1,
        None: 1,
    }
    assert n_by("staff", lambda tp: tp.item.username if tp.item else None) == {
        "budi": 2,
        "siti": 1,
        None: 1,
    }
    assert n_by("channel", lambda tp: tp.key.value) == {"tablet": 1, "qr": 1, "link": 2}
    # "not recorded" comes last among equals
    assert tps["counter"][-1].key is None
    budi_nps = next(tp for tp in tps["staff"] if tp.item is budi).tally.nps()
    assert budi_nps.score == 100

    narrowed = mq.report([jakarta.id], day, day, filters=mq.Filters(service_id=cs.id))
    assert narrowed.total.nps().n == 2
    # cs: 1 detractor, 1 passive -> -50
    assert narrowed.total.nps().score == -50
    by_staff = mq.report([jakarta.id], day, day, filters=mq.Filters(staff_id=budi.id))
    assert by_staff.total.nps().n == 2
    by_channel = mq.report([jakarta.id], day, day, filters=mq.Filters(channel=FeedbackChannel.LINK))
    assert by_channel.total.nps().n == 2
    by_counter = mq.report([jakarta.id], day, day, filters=mq.Filters(counter_id=c1.id))
    assert by_counter.total.nps().n == 2


def test_the_database_counts_not_python(jakarta, app):
    """The number of statements does not grow with the number of responses."""
    day = date(2026, 3, 3)

    def statements():
        seen = []

        def count(*_args):
            seen.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            mq.report([jakarta.id], day, day)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    for score in range(5):
        respond(jakarta, day, nps=score)
    few = statements()
    for score in range(60):
        respond(jakarta, day, nps=score % 11, csat=1 + score % 5, wait_s=30 * score)
    assert statements() == few


def test_range_checks(jakarta):
    mq.check_range(date(2026, 1, 1), date(2026, 1, 1))
    mq.check_range(date(2024, 1, 1), date(2024, 12, 31))  # 366 days (leap year)
    with pytest.raises(ValueError):
        mq.check_range(date(2026, 1, 2), date(2026, 1, 1))
    with pytest.raises(ValueError):
        mq.check_range(date(2025, 1, 1), date(2026, 1, 2))  # 367 days
    with pytest.raises(ValueError):
        mq.report([jakarta.id], date(2026, 1, 1), date(2026, 1, 2), group="year")
    # outside the years a report covers (a week of year 1 or 9999 would not even exist)
    with pytest.raises(ValueError):
        mq.check_range(date(1, 1, 1), date(1, 1, 2))
    with pytest.raises(ValueError):
        mq.check_range(date(9999, 12, 30), date(9999, 12, 31))


def test_who_may_read_the_metrics(jakarta, manila, make):
    people = {
        "staff": make.user(branches=[jakarta]),
        "manager": make.user(role=Role.BRANCH_MANAGER, branches=[jakarta]),
        "cx": make.user(role=Role.CX_AGENT, branches=[jakarta]),  # still every branch
        "executive": make.user(role=Role.EXECUTIVE),
        "admin": make.user(role=Role.ADMIN),
    }
    # page: the CX roles; a manager only their branch; staff never
    assert not mq.may_read(people["staff"], jakarta)
    assert mq.may_read(people["staff"], jakarta, api=True)
    assert not mq.may_read(people["staff"], manila, api=True)
    assert mq.may_read(people["manager"], jakarta)
    assert not mq.may_read(people["manager"], manila)
    for role in ("cx", "executive", "admin"):
        assert mq.may_read(people[role], manila) and mq.may_read(people[role], jakarta)
        assert [b.code for b in mq.readable_branches(people[role])] == ["JKT01", "MNL01"]
    assert [b.code for b in mq.readable_branches(people["manager"])] == ["JKT01"]
    assert mq.readable_branches(people["staff"]) == []
    people["cx"].active = False
    assert not mq.may_read(people["cx"], jakarta)
