"""The demo counters' plans: staggered lunch breaks (istirahat) and the Friday prayer, valid,
never leaving a service without a staffed counter, stored by `demo seed` and read by the live
wait estimate."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from queue_app.branches import plans
from queue_app.branches.models import WEEKDAYS, Branch, CounterStatus
from queue_app.demo import data
from queue_app.extensions import db
from queue_app.waits import live

from .apihelp import fast_passwords


def _minutes(a: str, b: str):
    t = datetime.combine(datetime(2026, 1, 1), time.fromisoformat(a))
    end = datetime.combine(datetime(2026, 1, 1), time.fromisoformat(b))
    while t < end:
        yield t.time()
        t += timedelta(minutes=1)


@pytest.mark.parametrize("spec", data.BRANCHES, ids=lambda s: s["code"])
def test_a_service_of_two_counters_or_more_always_keeps_one_staffed(spec):
    shifts = data.lunch_shifts(spec["counters"])
    counters = [
        (codes, data.counter_plan(shift, spec["country"]))
        for shift, (_name, codes) in zip(shifts, spec["counters"], strict=True)
    ]
    for _codes, plan in counters:
        assert plans.check_plan(plan) == {}
    shared = {
        code
        for code, *_rest in spec["services"]
        if sum(code in codes for codes, _plan in counters) >= 2
    }
    breaks_seen = 0
    for day, spans in data.hours().items():
        for a, b in spans:
            for minute in _minutes(a, b):
                staffed = set()
                present = 0
                for codes, plan in counters:
                    away = any(
                        time.fromisoformat(x) <= minute < time.fromisoformat(y)
                        for x, y in (plan.get(day) or {}).get("breaks", [])
                    )
                    breaks_seen += away
                    if not away:
                        staffed.update(codes)
                        present += 1
                assert shared <= staffed, (spec["code"], day, minute, shared - staffed)
                assert present >= len(counters) // 2, (spec["code"], day, minute)
    assert breaks_seen > 0


def test_friday_prayer_is_longer_for_the_first_shift_in_indonesia():
    first, second = data.counter_plan(0, "ID"), data.counter_plan(1, "ID")
    assert first["fri"]["breaks"] == [["11:30", "13:00"]]
    assert second["fri"]["breaks"] == [["13:00", "13:30"]]
    assert first["mon"]["breaks"] == [["12:00", "12:30"]]
    assert second["mon"]["breaks"] == [["12:30", "13:00"]]
    assert "sat" not in first and "sat" not in second
    assert data.counter_plan(0, "PH")["fri"]["breaks"] == [["12:00", "12:30"]]
    assert all(day in WEEKDAYS for day in first)


def test_demo_seed_stores_the_plans_and_the_live_state_reads_them(app_ctx, monkeypatch):
    fast_passwords(monkeypatch)
    result = app_ctx.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    db.session.remove()
    branch = db.session.scalar(select(Branch).where(Branch.code == "JKT01"))
    shifts = data.lunch_shifts(next(s for s in data.BRANCHES if s["code"] == "JKT01")["counters"])
    assert [c.plan for c in branch.counters] == [data.counter_plan(s, "ID") for s in shifts]
    # Monday 2 March 2026, 11:00 WIB, every counter open: each one's lunch is still ahead
    for counter in branch.counters:
        counter.status = CounterStatus.OPEN
    state = live.branch_state(branch, datetime(2026, 3, 2, 4, 0, tzinfo=UTC))
    starts = sorted({c.breaks[0][0] for c in state.counters})
    assert starts == [
        datetime(2026, 3, 2, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 5, 30, tzinfo=UTC),
    ]
