"""Replay with what a live branch knows beyond the day's log: the counters' planned absences
(`schedule`) and earlier days' logs (`history`). Same fixture day as tests/test_waits_replay.py:

    A001 teller 08:00 called 08:00 by C1, done 08:05
    A002 teller 08:01 called 08:01 by C2, done 08:04
    A003 teller 08:02 called 08:04 by C2, done 08:09
    B001 cs     08:03 called 08:09 by C2, done 08:25
    A004 teller 08:06 gave up 08:08:30 (C1 idle since 08:05 never called it)
    A005 teller 08:08 called 08:25 by C2, done 08:30
    A006 teller 08:27 called 08:30 by C2, done 08:33
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from queue_app.waits.replay import (
    ReplayOptions,
    Visit,
    _known_by,
    read_counters,
    read_visits,
    replay,
    state_at,
)

from .test_waits_replay import COUNTERS, DAY, _rewrite


def moment(hms: str, day: str = "2026-03-02") -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}+07:00")


@pytest.fixture
def day():
    counters = read_counters(COUNTERS)
    return read_visits(DAY, counters), counters


def at_a005(visits, counters, **kw):
    """The state at A005's arrival (08:08), A004 not dropped yet."""
    t = moment("08:08:00")
    known = _known_by(visits, {"A004": moment("08:08:30")}, t, visits[5])
    return state_at(known, counters, t, ReplayOptions(), day_start=moment("08:00:00"), **kw)


def test_inside_a_planned_break_paused_until_its_end(day):
    schedule = {
        "C1": [(moment("08:05:00"), moment("08:20:00"))],
        "C2": [(moment("08:40:00"), moment("09:00:00"))],
    }
    state, _, facts = at_a005(*day, schedule=schedule)
    c1, c2 = state.counters
    # without the schedule C1 is inferred away and back at 08:38 (test_waits_replay); with it,
    # it is on its planned break until 08:20
    assert (c1.status, c1.returns_at, c1.breaks) == ("paused", moment("08:20:00"), ())
    # C2 busy with A003 since 08:04; its later break is known
    assert (c2.status, c2.busy_since) == ("busy", moment("08:04:00"))
    assert c2.breaks == ((moment("08:40:00"), moment("09:00:00")),)
    assert facts["open_for"] == {"cs": 1, "teller": 1}


def test_back_from_a_planned_break_is_not_inferred_away(day):
    # C1 finished A001 at 08:05 and was on a planned break 08:05-08:07: idle from 08:07, so
    # A004 (08:06) has waited 60 s of C1's idle time by 08:08, under the 120 s that means away
    state, _, facts = at_a005(*day, schedule={"C1": [(moment("08:05:00"), moment("08:07:00"))]})
    assert state.counters[0].status == "idle"
    assert facts["open_for"] == {"cs": 1, "teller": 2}
    assert facts["idle_for"] == {"teller": 1}
    # and without it: away (A004 waited 08:06-08:08 while C1 was idle)
    state, _, _ = at_a005(*day)
    assert state.counters[0].status == "paused"


def test_closed_for_the_rest_of_the_horizon(day):
    # closed from 08:07 to 17:00: further than the 4 h horizon, so no return in it
    state, _, facts = at_a005(*day, schedule={"C1": [(moment("08:07:00"), moment("17:00:00"))]})
    assert (state.counters[0].status, state.counters[0].returns_at) == ("paused", None)
    assert facts["open_for"] == {"cs": 1, "teller": 1}


def test_a_planned_break_delays_a_ticket_that_looks_served_at_once(day):
    visits, counters = day
    plain = {p.ticket_id: p for p in replay(visits, counters, ReplayOptions(runs=40, seed=7))}
    planned = {
        p.ticket_id: p
        for p in replay(
            visits,
            counters,
            ReplayOptions(runs=40, seed=7),
            schedule={"C1": [(moment("08:05:00"), moment("08:30:00"))]},
        )
    }
    # A004 (08:06): C1 looks idle in the log alone, so it is called at once
    assert plain["A004"].predicted_s == 0.0
    # with the plan: C1 is back at 08:30, 1440 s after A004 arrived, and then calls it (no
    # teller ticket waits ahead of it); until then only C2, busy with A003 and B001 (cs first)
    p = planned["A004"]
    assert 0.0 < p.predicted_s <= 1440.0
    assert p.high_s <= 1440.0


def _history_visit(tid, service, start, minutes):
    called = moment(start, "2026-03-01")
    return Visit(
        tid,
        service,
        called,
        called,
        called + timedelta(minutes=minutes),
        "C1",
        "served",
    )


def test_history_service_times_join_the_days(day):
    history = [
        _history_visit("H1", "teller", "09:00:00", 10),
        _history_visit("H2", "cs", "09:00:00", 20),
    ]
    _, model, _ = at_a005(*day, history=history)
    _, plain, _ = at_a005(*day)
    # teller at 08:08: A001 300 s, A002 180 s, A003 imputed (in service) and H1 600 s
    assert plain.service_times.count("teller") == 3
    assert model.service_times.count("teller") == 4
    # cs: nothing today, H2's 1200 s from history; the prior is the pooled mean of every known
    # duration (300, 180, 600, 1200 and ReplayOptions.prior_service_s 300 as one observation)
    # = 516 s, weighted as one observation: (1200 + 516) / 2 = 858
    assert model.service_times.count("cs") == 1
    assert model.service_times.mean("cs") == pytest.approx(858.0)


def test_history_must_end_before_the_day(day):
    visits, counters = day
    with pytest.raises(ValueError, match="history must end before"):
        at_a005(visits, counters, history=[visits[0]])


def test_nothing_after_arrival_leaks_with_history_and_schedule(day, tmp_path):
    """As tests/test_waits_replay.py: change everything after A003 arrived (08:02); with history
    and a schedule the predictions of A001..A003 stay the same to the last digit."""
    visits, counters = day
    extra = {
        "history": [_history_visit("H1", "teller", "09:00:00", 10)],
        "schedule": {"C1": [(moment("08:05:00"), moment("08:20:00"))]},
    }
    opts = ReplayOptions(runs=40, seed=7)
    before = {p.ticket_id: p for p in replay(visits, counters, opts, **extra)}

    def perturb(rows):
        out = []
        for r in rows:
            r = dict(r)
            if r["ticket_id"] == "A003":
                r["called_at"] = "2026-03-02T08:07:00+07:00"
                r["finished_at"] = "2026-03-02T08:20:00+07:00"
            if r["ticket_id"] in ("A001", "A002"):
                r["finished_at"] = "2026-03-02T08:06:00+07:00"
            out.append(r)
        return out

    changed = read_visits(_rewrite(DAY, tmp_path / "day.csv", perturb), counters)
    after = {p.ticket_id: p for p in replay(changed, counters, opts, **extra)}
    for tid in ("A001", "A002", "A003"):
        assert after[tid].predicted_s == before[tid].predicted_s
        assert after[tid].baselines == before[tid].baselines
        assert (after[tid].low_s, after[tid].high_s) == (before[tid].low_s, before[tid].high_s)
    assert after["A005"].predicted_s != before["A005"].predicted_s
