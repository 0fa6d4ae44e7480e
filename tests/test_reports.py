"""Reports against figures worked out by hand from a small hand-built history at a branch in
Asia/Makassar (UTC+8), on SQLite and PostgreSQL; period boundaries in the branch's zone, not
UTC; the API, its access rules and its bad input.

The history (local times, MKS01; teller target 600 s, cs target 900 s):

  #  service issued            wait  service  status     counter staff
  1  teller  Mon 03-02 09:00    300     240   finished   T1      budi
  2  teller  Mon 03-02 09:10   1200     360   finished   T1      budi
  3  teller  Mon 03-02 09:20    120     600   finished   T2      siti
  4  teller  Mon 03-02 09:40      -       -   cancelled (left after 900 s, never called)
  5  teller  Mon 03-02 10:05    600       -   no_show    T2      siti
  6  cs      Mon 03-02 10:10   1800    1200   finished   CS1     budi
  7  cs      Mon 03-02 00:30    600     600   finished   CS1     budi   (Sun 16:30 UTC)
  8  cs      Sun 03-08 23:30      -       -   cancelled (left after 1200 s)  (Sun 15:30 UTC)
  9  cs      Mon 03-09 07:30    300     300   finished   CS1     budi   (Sun 03-08 23:30 UTC)
 10  teller  Wed 04-01 01:00    60      60    finished   T1      budi   (Tue 03-31 17:00 UTC)
 11  teller  Sun 03-01 00:30    60      60    finished   T1      budi   (Sat 02-28 16:30 UTC)
"""

from __future__ import annotations

from datetime import date

import pytest

from queue_app.reports import queries
from queue_app.reports.stats import percentile

from . import reportrows as rr
from .apihelp import fast_passwords

API = "/api/v1/reports"


@pytest.fixture
def history(make, monkeypatch):
    fast_passwords(monkeypatch)
    return rr.week_history(make)


# --- pure ------------------------------------------------------------------------------


def test_percentile_is_linear_between_closest_ranks():
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([120, 300, 600, 1200], 50) == 450
    assert percentile([120, 300, 600, 1200], 90) == pytest.approx(1020)
    assert percentile([1, 2, 3, 4, 5], 0) == 1
    assert percentile([1, 2, 3, 4, 5], 100) == 5
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_period_ranges():
    assert queries.period_range("day", date(2026, 3, 4)) == (date(2026, 3, 4), date(2026, 3, 4))
    assert queries.period_range("week", date(2026, 3, 4)) == (date(2026, 3, 2), date(2026, 3, 8))
    assert queries.period_range("month", date(2024, 2, 10)) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
    )
    assert queries.period_label("week", date(2026, 3, 2)) == "2026-W10"
    with pytest.raises(ValueError):
        queries.period_range("year", date(2026, 3, 4))


# --- the report --------------------------------------------------------------------------


def test_week_report_matches_hand_computed_figures(history):
    r = queries.report([history["branch"]], "week", date(2026, 3, 4))
    assert (r.start, r.end, r.label) == (date(2026, 3, 2), date(2026, 3, 8), "2026-W10")
    t = r.total
    # tickets 1-8: #9 is Monday 9 March locally although still Sunday in UTC, #11 is
    # Sunday 1 March locally
    assert (t.issued, t.served, t.called, t.abandoned, t.no_show) == (8, 5, 6, 2, 1)
    # waits 120 300 600 600 1200 1800
    assert t.wait_mean_s == pytest.approx(770)
    assert t.wait_median_s == pytest.approx(600)
    assert t.wait_p90_s == pytest.approx(1500)
    # service times 240 360 600 600 1200
    assert t.service_mean_s == pytest.approx(600)
    assert t.service_median_s == pytest.approx(600)
    assert t.service_p90_s == pytest.approx(960)
    assert t.abandonment_rate == pytest.approx(0.25)
    assert t.no_show_rate == pytest.approx(0.125)
    # within target: teller 300, 120, 600 <= 600; cs 600 <= 900; of 6 called + 2 abandoned
    assert t.within_target == pytest.approx(0.5)
    assert t.within_target_n == 8

    services = {g.item.code: g.summary for g in r.groups["service"]}
    teller, cs = services["teller"], services["cs"]
    assert (teller.issued, teller.served, teller.abandoned, teller.no_show) == (5, 3, 1, 1)
    assert (teller.wait_mean_s, teller.wait_median_s) == (555, 450)
    assert teller.wait_p90_s == pytest.approx(1020)
    assert teller.service_mean_s == pytest.approx(400)
    assert teller.service_median_s == 360
    assert teller.service_p90_s == pytest.approx(552)
    assert (teller.abandonment_rate, teller.no_show_rate) == (0.2, 0.2)
    assert teller.within_target == pytest.approx(0.6)
    assert (cs.issued, cs.served, cs.abandoned) == (3, 2, 1)
    assert (cs.wait_mean_s, cs.wait_median_s) == (1200, 1200)
    assert cs.wait_p90_s == pytest.approx(1680)
    assert cs.within_target == pytest.approx(1 / 3)

    counters = {(g.item.name if g.item else None): g.summary.issued for g in r.groups["counter"]}
    assert counters == {"T1": 2, "T2": 2, "CS1": 2, None: 2}
    staff = {(g.item.username if g.item else None): g.summary for g in r.groups["staff"]}
    assert staff["budi"].issued == 4 and staff["siti"].issued == 2 and staff[None].issued == 2
    assert staff["budi"].wait_mean_s == pytest.approx((300 + 1200 + 1800 + 600) / 4)
    assert staff["siti"].no_show_rate == pytest.approx(0.5)
    assert [g.summary.issued for g in r.groups["branch"]] == [8]

    by_day = {p.key: p.summary.issued for p in r.series}
    assert len(r.series) == 7
    assert by_day[date(2026, 3, 2)] == 7 and by_day[date(2026, 3, 8)] == 1
    assert sum(by_day.values()) == 8


def test_heat_map_uses_the_branch_local_weekday_and_hour(history):
    r = queries.report([history["branch"]], "week", date(2026, 3, 2))
    cell = {(c.weekday, c.hour): c for day in r.heat for c in day if c.arrivals}
    # ticket 7 at 00:30 Monday local (16:30 Sunday in UTC)
    assert set(cell) == {(0, 0), (0, 9), (0, 10), (6, 23)}
    assert cell[(0, 0)].arrivals == 1 and cell[(0, 0)].wait_mean_s == 600
    assert cell[(0, 9)].arrivals == 4 and cell[(0, 9)].wait_mean_s == pytest.approx(540)
    assert cell[(0, 10)].arrivals == 2 and cell[(0, 10)].wait_mean_s == 1200
    assert cell[(6, 23)].arrivals == 1 and cell[(6, 23)].wait_mean_s is None
    assert r.peak_arrivals == 4


def test_day_report_is_by_local_hour(history):
    r = queries.report([history["branch"]], "day", date(2026, 3, 2))
    assert r.total.issued == 7
    assert r.series[0].label == "00:00" and r.series[-1].label == "10:00"
    hours = {p.key: p.summary.issued for p in r.series}
    assert hours == {h: {0: 1, 9: 4, 10: 2}.get(h, 0) for h in range(0, 11)}


def test_month_boundaries_are_local_not_utc(history):
    r = queries.report([history["branch"]], "month", date(2026, 3, 15))
    # #1-#9 and #11 (1 March 00:30 local, still 28 February in UTC); not #10 (1 April
    # local, 31 March in UTC)
    assert r.total.issued == 10
    assert len(r.series) == 31
    april = queries.report([history["branch"]], "month", date(2026, 4, 1))
    assert april.total.issued == 1
    feb = queries.report([history["branch"]], "month", date(2026, 2, 1))
    assert feb.total.issued == 0 and feb.total.wait_mean_s is None
    assert feb.total.within_target is None


def test_service_filter(history):
    r = queries.report([history["branch"]], "week", date(2026, 3, 2), service_id=history["cs"].id)
    assert r.total.issued == 3


# --- API ---------------------------------------------------------------------------------


def test_api_report(client, history):
    h = history["headers"]
    response = client.get(f"{API}?branch=MKS01&period=week&date=2026-03-05", headers=h["manager"])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["label"] == "2026-W10" and body["branches"] == ["MKS01"]
    total = body["total"]
    assert total["issued"] == 8 and total["wait_mean_s"] == 770.0 and total["wait_p90_s"] == 1500
    assert total["abandonment_rate"] == 0.25 and total["within_target"] == 0.5
    teller = next(g for g in body["groups"]["service"] if g["code"] == "teller")
    assert teller["wait_p90_s"] == 1020.0 and teller["service_p90_s"] == 552.0
    assert {(c["weekday"], c["hour"]): c["arrivals"] for c in body["heatmap"]} == {
        (0, 0): 1,
        (0, 9): 4,
        (0, 10): 2,
        (6, 23): 1,
    }
    only_cs = client.get(
        f"{API}?branch=MKS01&period=week&date=2026-03-05&service=cs", headers=h["manager"]
    ).get_json()
    assert only_cs["total"]["issued"] == 3


def test_api_network_report_for_executives_and_own_branches_for_managers(client, history):
    h = history["headers"]
    body = client.get(f"{API}?period=month&date=2026-03-01", headers=h["executive"]).get_json()
    assert sorted(body["branches"]) == ["JKT09", "MKS01"]
    assert body["total"]["issued"] == 10
    mine = client.get(f"{API}?period=month&date=2026-03-01", headers=h["manager"]).get_json()
    assert mine["branches"] == ["MKS01"]


@pytest.mark.parametrize(
    "who,status", [("other_manager", 403), ("staff", 403), ("cx", 200), ("admin", 200)]
)
def test_api_access(client, history, who, status):
    response = client.get(
        f"{API}?branch=MKS01&period=day&date=2026-03-02", headers=history["headers"][who]
    )
    assert response.status_code == status
    if status != 200:
        assert response.get_json()["error"]["message"]


def test_api_needs_a_token(client, history):
    assert client.get(f"{API}?period=day&date=2026-03-02").status_code == 401


@pytest.mark.parametrize(
    "query,status",
    [
        ("period=day", 422),  # no date
        ("period=year&date=2026-03-02", 422),
        ("period=day&date=2026-02-30", 422),
        ("period=day&date=1999-12-31", 422),
        ("period=day&date=2026-03-02&branch=NOPE", 404),
        ("period=day&date=2026-03-02&branch=MKS01&service=nope", 422),
        ("period=day&date=2026-03-02&service=cs", 422),  # a service without its branch
        ("period=day&date=2026-03-02&branch=%00", 422),
    ],
)
def test_api_bad_input(client, history, query, status):
    response = client.get(f"{API}?{query}", headers=history["headers"]["executive"])
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["message"]
