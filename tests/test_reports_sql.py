"""The reports' PostgreSQL path (`reports/aggregate.py`: the figures worked out in SQL) gives
the very same `Report` as the Python path (`queries.report_from_rows`: the tickets fetched and
summarised by `stats.py`), figure for figure and float for float: on the hand-built history of
tests/test_reports.py and on a random one with microsecond times, waits longer than a day,
every status, tickets without counter or staff, two branches in different zones.

On SQLite both calls take the Python path, so the comparison is PostgreSQL's; the rank
arithmetic the SQL uses is checked everywhere.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

import pytest

from queue_app.extensions import db
from queue_app.reports import aggregate, queries
from queue_app.reports.stats import percentile, percentile_at

from . import reportrows as rr

S = rr.S


def test_the_ranks_read_in_sql_are_the_ranks_python_interpolates_between():
    # SQL subscripts rank (n - 1) * p / 100 in integers; Python floors (n - 1) * p / 100
    for n in range(1, 300_001):
        for p in aggregate.PERCENTILES:
            assert (n - 1) * p // 100 == math.floor((n - 1) * p / 100)


def test_percentile_at_reads_two_ranks_and_agrees_with_percentile():
    values = sorted(random.Random(6).uniform(0, 3000) for _ in range(101))
    read: list[int] = []

    def reader(part):
        def at(i):
            read.append(i)
            return part[i]

        return at

    for n in (1, 2, 3, 10, 101):
        for p in (0, 50, 90, 100):
            read.clear()
            assert percentile_at(n, p, reader(values[:n])) == percentile(values[:n], p)
            assert len(read) <= 2


def _both(branches, period, day, service_id=None):
    sql = queries.report(branches, period, day, service_id=service_id)
    py = queries.report_from_rows(branches, period, day, service_id=service_id)
    return sql, py


def _same(sql, py):
    # field by field first, for a readable failure, then the whole report
    assert sql.total == py.total
    assert [(p.key, p.label, p.summary) for p in sql.series] == [
        (p.key, p.label, p.summary) for p in py.series
    ]
    for dim in queries.DIMENSIONS:
        assert [(g.key, g.item, g.summary) for g in sql.groups[dim]] == [
            (g.key, g.item, g.summary) for g in py.groups[dim]
        ], dim
    assert sql.heat == py.heat
    assert sql == py


@pytest.fixture
def postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("the SQL path of the reports is PostgreSQL's; SQLite takes the Python path")


def test_sql_path_equals_python_path_on_the_hand_built_history(make, postgres_only):
    h = rr.week_history(make)
    b = h["branch"]
    for period, day in (
        ("day", date(2026, 3, 2)),
        ("week", date(2026, 3, 4)),
        ("month", date(2026, 3, 15)),
        ("month", date(2026, 4, 1)),
        ("month", date(2026, 5, 1)),  # nothing at all
    ):
        _same(*_both([b], period, day))
    _same(*_both([b], "week", date(2026, 3, 4), service_id=h["teller"].id))
    _same(*_both([b, h["other"]], "month", date(2026, 3, 1)))
    sql, _ = _both([b], "week", date(2026, 3, 4))
    # waits 120, 300, 600, 600, 1200, 1800 s: mean 770, median 600, p90 1500
    assert (sql.total.wait_mean_s, sql.total.wait_median_s, sql.total.wait_p90_s) == (
        770,
        600,
        1500,
    )


def _random_history(make, seed: int) -> dict:
    rnd = random.Random(seed)
    services = [("teller", "A", 240), ("cs", "B", 720), ("loans", "C", 1200)]
    counters = [("T1", ["teller"]), ("T2", ["teller", "cs"]), ("K1", ["loans", "cs"])]
    branches = [
        make.branch("JKT01", timezone="Asia/Jakarta", services=services, counters=counters),
        make.branch("JAP01", timezone="Asia/Jayapura", services=services, counters=counters),
    ]
    staff = [make.user(f"u{i}", branches=branches) for i in range(4)]
    for b in branches:
        for i, code in enumerate(("teller", "cs", "loans")):
            make.service(b, code).target_wait_s = (300, 600, 900)[i]
    statuses = [S.FINISHED] * 12 + [
        S.NO_SHOW,
        S.CANCELLED,
        S.TRANSFERRED,
        S.WAITING,
        S.CALLED,
        S.SERVING,
        S.HELD,
    ]
    first = datetime(2026, 2, 26)
    for _ in range(700):
        b = rnd.choice(branches)
        service = make.service(b, rnd.choice(("teller", "cs", "loans")))
        issued = first + timedelta(
            seconds=rnd.randrange(0, 38 * 86400), microseconds=rnd.randrange(10**6)
        )
        status = rnd.choice(statuses)
        # microsecond times; a few waits of more than a day, many ties on whole minutes
        wait = rnd.choice(
            [rnd.uniform(0, 3600), float(rnd.randrange(0, 3600, 60)), rnd.uniform(86400, 200000)]
            if rnd.random() < 0.05
            else [rnd.uniform(0, 3600), float(rnd.randrange(0, 3600, 60))]
        )
        service_s = rnd.choice([rnd.uniform(30, 2400), float(rnd.randrange(60, 1800, 30))])
        kw = {}
        if status == S.WAITING or (status == S.CANCELLED and rnd.random() < 0.7):
            kw = {"left_after_s": rnd.uniform(60, 1800)} if status == S.CANCELLED else {}
        elif status in (S.FINISHED, S.TRANSFERRED, S.SERVING) and rnd.random() < 0.9:
            kw = {"wait_s": wait, "service_s": service_s}
        else:
            kw = {"wait_s": wait}
        if "wait_s" in kw and rnd.random() < 0.9:
            kw["counter"] = make.counter(b, rnd.choice(("T1", "T2", "K1")))
            kw["staff"] = rnd.choice(staff)
        rr.add(b, service, issued.isoformat(sep=" "), status=status, **kw)
    db.session.commit()
    return {"branches": branches}


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_path_equals_python_path_on_a_random_history(make, postgres_only, seed):
    h = _random_history(make, seed)
    jkt, jap = h["branches"]
    teller = make.service(jkt, "teller")
    cases = [
        ([jkt], "month", date(2026, 3, 1)),
        ([jap], "month", date(2026, 3, 31)),
        ([jkt, jap], "month", date(2026, 3, 10)),
        ([jkt, jap], "month", date(2026, 2, 27)),
        ([jkt], "week", date(2026, 3, 4)),
        ([jkt, jap], "week", date(2026, 3, 11)),
        ([jkt], "day", date(2026, 3, 3)),
        ([jkt, jap], "day", date(2026, 3, 5)),
    ]
    compared = 0
    for branches, period, day in cases:
        sql, py = _both(branches, period, day)
        _same(sql, py)
        compared += sql.total.issued
    _same(*_both([jkt], "month", date(2026, 3, 1), service_id=teller.id))
    assert compared > 900  # the cases did read the history
