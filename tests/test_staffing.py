"""Staffing advice: exact Erlang C against the published textbook example and the direct
formula, Erlang A against closed forms and its Erlang C limit, the forecast and plan from a
hand-built history, the day simulated with the plan, the API, access and bad input."""

from __future__ import annotations

import math
from datetime import date
from fractions import Fraction

import pytest

from queue_app.reports import erlang, staffing

from . import reportrows as rr
from .apihelp import fast_passwords

API = "/api/v1/reports/staffing"


# --- Erlang C ----------------------------------------------------------------------------


def direct_erlang_c(load: Fraction, n: int) -> Fraction:
    """The textbook formula with factorials, in exact rational arithmetic."""
    top = load**n / math.factorial(n) * Fraction(n) / (n - load)
    bottom = sum(load**k / math.factorial(k) for k in range(n)) + top
    return top / bottom


def test_erlang_c_textbook_example():
    """The classic worked example (100 calls in 30 minutes, 180 s handling time, 80% within
    20 s): A = 10 Erlangs; 14 agents give a probability of waiting of 17.4%, a service level of
    88.8%, an average speed of answer of 7.8 s and 71.4% occupancy; 13 agents only 79.6%."""
    rate = 200 / 3600
    r = erlang.erlang_c_result(rate, 180, 14, 20)
    assert r.load == pytest.approx(10)
    assert round(r.wait_probability, 3) == 0.174
    assert round(r.service_level, 3) == 0.888
    assert round(r.mean_wait_s, 1) == 7.8
    assert round(r.occupancy, 3) == 0.714
    assert round(erlang.erlang_c_result(rate, 180, 13, 20).service_level, 3) == 0.796
    needed = erlang.agents_needed(rate, 180, 20, 0.8)
    assert needed.agents == 14


@pytest.mark.parametrize("load,n", [(1, 2), (10, 11), (10, 14), (Fraction(7, 3), 3), (45, 50)])
def test_erlang_c_equals_the_direct_formula(load, n):
    exact = direct_erlang_c(Fraction(load), n)
    assert erlang.erlang_c(float(load), n) == pytest.approx(float(exact), rel=1e-12)


def test_erlang_c_is_stable_for_many_counters():
    c = erlang.erlang_c(480.0, 500)
    assert 0 < c < 1 and math.isfinite(c)
    # 480^500 and 500! overflow a float: the recursion never forms them
    with pytest.raises(OverflowError):
        float(480**500)
    assert erlang.erlang_c(10, 10) == 1.0  # no more counters than load: everyone waits
    assert erlang.erlang_c_result(0.01, 300, 3, 60).service_level < 1
    assert erlang.erlang_c_result(0.01, 300, 3, 60).mean_wait_s is None  # A = 3: unbounded


def test_erlang_b_recursion():
    load = Fraction(5)
    direct = (load**6 / math.factorial(6)) / sum(load**k / math.factorial(k) for k in range(7))
    assert erlang.erlang_b(5.0, 6) == pytest.approx(float(direct), rel=1e-12)


# --- Erlang A ------------------------------------------------------------------------------


def test_erlang_a_tends_to_erlang_c_as_patience_grows():
    rate, aht, target = 200 / 3600, 180, 20
    for n in (11, 12, 14):
        c = erlang.erlang_c_result(rate, aht, n, target)
        a = erlang.erlang_a_result(rate, aht, n, target, 1e9)
        assert a.wait_probability == pytest.approx(c.wait_probability, abs=1e-5)
        assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
        assert a.abandon_probability < 1e-5
    assert erlang.erlang_a_result(rate, aht, 12, target, math.inf) == erlang.erlang_c_result(
        rate, aht, 12, target
    )


def test_erlang_a_counters_needed_tend_to_erlang_c():
    """With hardly any abandonment Erlang A asks for the 14 counters of the textbook example;
    with impatient customers fewer reach the target (those who leave free the counters)."""
    rate = 200 / 3600
    assert erlang.agents_needed(rate, 180, 20, 0.8, 1e6).agents == 14
    impatient = erlang.agents_needed(rate, 180, 20, 0.8, 60)
    assert impatient.agents <= 14 and impatient.service_level >= 0.8


def test_erlang_a_less_patience_less_waiting_more_abandonment():
    rate, aht = 200 / 3600, 180
    results = [erlang.erlang_a_result(rate, aht, 10, 20, p) for p in (3600, 600, 120)]
    waits = [r.wait_probability for r in results]
    gone = [r.abandon_probability for r in results]
    assert waits == sorted(waits, reverse=True)
    assert gone == sorted(gone)
    # with N <= A Erlang C never settles; Erlang A does, because customers leave
    r = erlang.erlang_a_result(rate, aht, 10, 20, 600)
    assert 0 < r.abandon_probability < 1 and 0 < r.service_level < 1


def test_erlang_a_one_counter_against_its_birth_death_chain():
    """M/M/1+M: pi_n proportional to prod rate / (mu + (k-1) theta); P(wait) = 1 - pi_0; the
    abandonment probability theta * E[queue] / rate."""
    rate, mu, theta = 1 / 60, 1 / 40, 1 / 90
    terms = [1.0]
    for n in range(1, 400):
        terms.append(terms[-1] * rate / (mu + (n - 1) * theta))
    total = sum(terms)
    pi = [t / total for t in terms]
    queue = sum((n - 1) * p for n, p in enumerate(pi) if n > 1)
    r = erlang.erlang_a_result(rate, 40, 1, 30, 90)
    assert r.wait_probability == pytest.approx(1 - pi[0], rel=1e-9)
    assert r.abandon_probability == pytest.approx(theta * queue / rate, rel=1e-9)


def test_served_within_closed_forms():
    """With j ahead, served within t = prod of the forward chances x P(sum of exponential
    phases <= t); for j = 0 and j = 1 in closed form."""
    a, theta, t = 2 / 300, 1 / 200, 120.0
    u = erlang._served_within(a, theta, 1, t)
    s0 = a + theta
    assert u[0] == pytest.approx(a / s0 * (1 - math.exp(-s0 * t)), rel=1e-9)
    s1 = a + 2 * theta
    both = 1 - (s1 * math.exp(-s0 * t) - s0 * math.exp(-s1 * t)) / (s1 - s0)
    assert u[1] == pytest.approx((a + theta) / s1 * a / s0 * both, rel=1e-9)


def test_agents_needed_bad_input():
    with pytest.raises(ValueError):
        erlang.agents_needed(0.01, 300, 600, 1.0)
    with pytest.raises(ValueError):
        erlang.agents_needed(-1, 300, 600, 0.8)
    with pytest.raises(ValueError):
        erlang.erlang_a_result(0.01, 300, 2, 600, 0)
    assert erlang.agents_needed(0, 300, 600, 0.8).agents == 0


# --- the plan from history -----------------------------------------------------------------


@pytest.fixture
def history(make, monkeypatch):
    fast_passwords(monkeypatch)
    return rr.monday_history(make)


def test_plan_from_history(history):
    b = history["branch"]
    plan = staffing.plan(b, date(2026, 3, 30))
    assert plan.history_days == [date(2026, 3, d) for d in (2, 9, 16, 23)]
    assert plan.days_used == [date(2026, 3, d) for d in (2, 9, 16)]  # the 23rd was closed
    models = {m.service_id: m for m in plan.services}
    teller, cs = models[history["teller"].id], models[history["cs"].id]
    assert teller.arrivals == {9: 10.0}  # (10 + 12 + 8) / 3
    assert teller.aht_s == 240 and teller.aht_from_history and teller.service_cv == 0
    assert math.isinf(teller.patience_s)
    assert teller.configured_counters == 2
    assert cs.arrivals == {10: 2.0}
    assert cs.aht_s == 600
    # patience: 3 gone over (300 + 900) s seen waiting each day -> 3600 / 3
    assert cs.patience_s == pytest.approx(1200)
    assert plan.patience_s == pytest.approx(1200)

    hours = {h.hour: h for h in plan.hours}
    assert sorted(hours) == [9, 10]
    (need,) = hours[9].needs
    # A = 10 x 240 / 3600 = 2/3; one counter: P(wait) = 2/3, SL = 1 - 2/3 e^(-(1/3) 600/240)
    # = 0.7103 < 0.8; two: B = 0.11765, C = 0.16667, SL = 0.99405
    assert need.model == "erlang_c" and need.needed == 2
    assert need.result.wait_probability == pytest.approx(1 / 6, rel=1e-9)
    assert need.result.service_level == pytest.approx(1 - math.exp(-10 / 3) / 6, rel=1e-9)
    one = erlang.erlang_c_result(10 / 3600, 240, 1, 600)
    assert one.service_level == pytest.approx(1 - 2 / 3 * math.exp(-1 / 3 * 600 / 240))
    assert hours[9].history_counters == 1.0 and hours[9].gap == 1.0
    (cs_need,) = hours[10].needs
    assert cs_need.model == "erlang_a" and cs_need.needed == 1
    assert cs_need.result == erlang.agents_needed(2 / 3600, 600, 600, 0.8, 1200)
    assert hours[10].history_counters == 1.0


def test_plan_target_and_weeks(history):
    b = history["branch"]
    strict = staffing.plan(b, date(2026, 3, 30), target_s=0, share=0.9)
    assert {h.hour: h.needed for h in strict.hours}[9] >= 2
    one_week = staffing.plan(b, date(2026, 3, 30), weeks=1)
    assert one_week.days_used == [] and one_week.hours == []
    with pytest.raises(ValueError):
        staffing.plan(b, date(2026, 3, 30), weeks=0)
    with pytest.raises(ValueError):
        staffing.plan(b, date(2026, 3, 30), share=1)


def test_simulating_the_day(history):
    plan = staffing.plan(history["branch"], date(2026, 3, 30))
    first = staffing.simulate(plan, seeds=3)
    again = staffing.simulate(plan, seeds=3)
    assert first == again  # the same seeds give the same days
    sims = {s.name: s for s in first}
    advised, past = sims["advised"], sims["history"]
    assert advised.counters == 3  # teller-1, teller-2, cs-1
    assert past.counters == 2  # T1 and CS1 called on every history day
    assert {h.hour for h in advised.hours} <= {9, 10}
    assert advised.total.arrivals > 0
    assert advised.total.within_target >= 0.8
    spec = staffing.day_spec(
        plan,
        staffing.advised_counters(plan, {s.id: s.code for s in plan.branch.services}),
        {s.id: s.code for s in plan.branch.services},
    )
    assert spec["utc_offset"] == "+08:00" and spec["opens"] == "09:00" and spec["closes"] == "11:00"
    assert {c["name"]: (c["opens"], c["closes"]) for c in spec["counters"]} == {
        "teller-1": ("09:00", "10:00"),
        "teller-2": ("09:00", "10:00"),
        "cs-1": ("10:00", "11:00"),
    }


def test_shift_with_a_gap():
    assert staffing._hours_to_shift([9, 10, 13]) == ("09:00", "14:00", [("11:00", "13:00")])


# --- API -----------------------------------------------------------------------------------


def test_api_staffing(client, history):
    h = history["headers"]
    response = client.get(f"{API}?branch=MKS02&date=2026-03-30", headers=h["manager"])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["timezone"] == "Asia/Makassar" and body["target_s"] == 600
    assert body["days_used"] == ["2026-03-02", "2026-03-09", "2026-03-16"]
    nine = next(x for x in body["hours"] if x["hour"] == 9)
    assert nine["needed"] == 2 and nine["history_counters"] == 1.0 and nine["gap"] == 1.0
    (teller,) = nine["services"]
    assert teller["service"] == "teller" and teller["model"] == "erlang_c"
    assert teller["patience_s"] is None and teller["aht_s"] == 240.0
    ten = next(x for x in body["hours"] if x["hour"] == 10)
    assert ten["services"][0]["patience_s"] == 1200.0
    strict = client.get(
        f"{API}?branch=MKS02&date=2026-03-30&target_s=60&share=0.95", headers=h["executive"]
    ).get_json()
    assert strict["share"] == 0.95 and strict["target_s"] == 60


@pytest.mark.parametrize(
    "query,who,status",
    [
        ("branch=MKS02&date=2026-03-30", "other_manager", 403),
        ("branch=MKS02&date=2026-03-30", "staff", 403),
        ("branch=NOPE&date=2026-03-30", "executive", 404),
        ("branch=MKS02", "executive", 422),
        ("date=2026-03-30", "executive", 422),
        ("branch=MKS02&date=2026-13-01", "executive", 422),
        ("branch=MKS02&date=2026-03-30&share=1", "executive", 422),
        ("branch=MKS02&date=2026-03-30&share=abc", "executive", 422),
        ("branch=MKS02&date=2026-03-30&weeks=0", "executive", 422),
        ("branch=MKS02&date=2026-03-30&weeks=27", "executive", 422),
        ("branch=MKS02&date=2026-03-30&target_s=-1", "executive", 422),
    ],
)
def test_api_staffing_refuses(client, history, query, who, status):
    response = client.get(f"{API}?{query}", headers=history["headers"][who])
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["message"]
