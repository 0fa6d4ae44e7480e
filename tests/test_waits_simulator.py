"""The branch-day simulator: a valid replay file, the same day for the same seed, and the rules
of the spec (skills, priority order of the counters, staffed hours, breaks, appointments,
abandonment)."""

from __future__ import annotations

from datetime import datetime

from queue_app.waits.replay import read_counters, read_visits
from queue_app.waits.simulator import (
    CounterSpec,
    DaySpec,
    ServiceSpec,
    counter_rows,
    multi_skill_spec,
    simulate_day,
    single_queue_spec,
    write_day,
)


def clock(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%H:%M:%S")


def test_same_seed_same_day_and_a_valid_file(tmp_path):
    spec = multi_skill_spec()
    assert simulate_day(spec, 5) == simulate_day(multi_skill_spec(), 5)
    assert simulate_day(spec, 5) != simulate_day(spec, 6)
    rows = write_day(spec, 5, tmp_path / "day.csv", tmp_path / "counters.csv")
    counters = read_counters(str(tmp_path / "counters.csv"))
    visits = read_visits(str(tmp_path / "day.csv"), counters)  # validates every row
    assert len(visits) == len(rows) > 200
    assert counters["S2"] == ["cs", "loans"]
    assert {v.outcome for v in visits} == {"served", "abandoned"}


def test_counters_keep_to_their_skills_hours_and_breaks():
    spec = multi_skill_spec()
    rows = simulate_day(spec, 11)
    by_name = {c.name: c for c in spec.counters}
    for r in rows:
        if r["outcome"] != "served":
            continue
        c = by_name[r["counter"]]
        assert r["service"] in c.services
        called = clock(r["called_at"])
        assert called >= c.opens + ":00"
        if c.closes < spec.closes:  # T3 leaves at 14:00
            assert called < c.closes + ":00"
        for start, end in c.breaks:
            assert not (start + ":00" <= called < end + ":00"), (r, start, end)


def test_priority_order_of_a_counter():
    # C1 serves b first: while b tickets wait, C1 never calls an a ticket
    spec = DaySpec(
        services=[ServiceSpec("a", {8: 30}, 300.0, 0.0), ServiceSpec("b", {8: 30}, 300.0, 0.0)],
        counters=[CounterSpec("C1", ["b", "a"], opens="08:00", closes="09:00")],
        opens="08:00",
        closes="09:00",
        patience_mean_s=None,
    )
    rows = simulate_day(spec, 3)
    served = [r for r in rows if r["outcome"] == "served"]
    assert served, rows
    for r in served:
        if r["service"] != "a":
            continue
        called = r["called_at"]
        waiting_b = [
            x
            for x in rows
            if x["service"] == "b"
            and x["arrived_at"] <= called
            and (x["called_at"] == "" or x["called_at"] > called)
        ]
        assert not waiting_b, (r, waiting_b)
    # constant service times of 300 s: every finish is 300 s after its call
    for r in served:
        d = datetime.fromisoformat(r["finished_at"]) - datetime.fromisoformat(r["called_at"])
        assert d.total_seconds() == 300


def test_no_shows_abandonment_and_closing():
    base = {
        "services": [ServiceSpec("a", {8: 20, 9: 20}, 400.0, 0.5)],
        "counters": [CounterSpec("C1", ["a"], opens="08:00", closes="10:00")],
        "opens": "08:00",
        "closes": "10:00",
    }
    patient = simulate_day(DaySpec(**base, patience_mean_s=None), 1)
    impatient = simulate_day(DaySpec(**base, patience_mean_s=300.0), 1)
    # overloaded (20/h for one counter at 400 s): the patient ones are all served, the counter
    # serving out after closing; with a 5-minute patience many give up
    assert all(r["outcome"] == "served" for r in patient)
    assert max(r["called_at"] for r in patient) > "2026-03-02T10:30"
    gave_up = [r for r in impatient if r["outcome"] == "abandoned"]
    assert len(gave_up) > len(impatient) / 3
    assert all(r["finished_at"] >= r["arrived_at"] and r["called_at"] == "" for r in gave_up)
    # every appointment a no-show: no more rows than the walk-ins
    shows = simulate_day(DaySpec(**base, appointment_share=0.5, no_show_rate=1.0), 1)
    assert len(shows) < len(patient)


def test_spec_from_a_plain_dict():
    rows = simulate_day(
        {
            "services": [{"code": "teller", "arrivals_per_hour": {"8": 20}, "mean_s": 200}],
            "counters": [{"name": "C1", "services": ["teller"], "closes": "09:00"}],
            "closes": "09:00",
        },
        seed=2,
    )
    assert rows and all(r["service"] == "teller" for r in rows)
    assert counter_rows(single_queue_spec())[0] == {
        "counter": "C1",
        "services": "teller",
        "absences": "2026-03-02T11:00:00+07:00/2026-03-02T11:30:00+07:00",
    }


def test_every_kind_of_the_bench_writes_a_valid_day(tmp_path):
    from queue_app.waits.simulator import generalist_spec

    for k, make_spec in enumerate((single_queue_spec, multi_skill_spec, generalist_spec)):
        day, counters = tmp_path / f"d{k}.csv", tmp_path / f"c{k}.csv"
        write_day(make_spec(1.3), 7, day, counters)
        visits = read_visits(str(day), read_counters(str(counters)))
        assert sum(v.served for v in visits) > 150
