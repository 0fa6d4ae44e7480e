"""Replaying a logged day (tests/fixtures/ewt): what was known at each arrival, the rows written,
the baselines, that nothing after an arrival reaches its prediction, and the CLI.

The fixture day (C1 serves teller; C2 serves cs first, then teller):

    A001 teller 08:00 called 08:00 by C1, done 08:05
    A002 teller 08:01 called 08:01 by C2, done 08:04
    A003 teller 08:02 called 08:04 by C2, done 08:09       waited 120 s
    B001 cs     08:03 called 08:09 by C2, done 08:25       waited 360 s
    A004 teller 08:06 gave up 08:08:30 (C1 idle since 08:05 never called it: away)
    A005 teller 08:08 called 08:25 by C2, done 08:30       waited 1020 s
    A006 teller 08:27 called 08:30 by C2, done 08:33       waited 180 s
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from queue_app.waits.replay import (
    ReplayInputError,
    ReplayOptions,
    _known_by,
    read_counter_file,
    read_counters,
    read_visits,
    replay,
    state_at,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ewt"
DAY = str(FIXTURES / "day.csv")
COUNTERS = str(FIXTURES / "counters.csv")


def moment(hms: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{hms}+07:00")


@pytest.fixture
def day():
    counters = read_counters(COUNTERS)
    return read_visits(DAY, counters), counters


def predictions(visits, counters, runs=40):
    return {p.ticket_id: p for p in replay(visits, counters, ReplayOptions(runs=runs, seed=7))}


def test_read_the_fixture(day):
    visits, counters = day
    assert counters == {"C1": ["teller"], "C2": ["cs", "teller"]}
    assert [v.ticket_id for v in visits] == ["A001", "A002", "A003", "B001", "A004", "A005", "A006"]
    assert visits[4].outcome == "abandoned" and visits[4].called_at is None


def test_state_known_at_an_arrival(day):
    visits, counters = day
    t = moment("08:08:00")
    known = _known_by(visits, {"A004": moment("08:08:30")}, t, visits[5])
    state, model, facts = state_at(
        known, counters, t, ReplayOptions(), day_start=moment("08:00:00")
    )
    c1, c2 = state.counters
    # C1 has been idle since 08:05 while A004 (08:06) waited 120 s: away, back after the prior
    # break of 30 minutes from 08:08
    assert (c1.status, c1.returns_at) == ("paused", moment("08:38:00"))
    # C2 called A003 at 08:04: busy with teller
    assert (c2.status, c2.busy_since, c2.busy_service) == ("busy", moment("08:04:00"), "teller")
    # B001, A004 (has not given up yet at 08:08) and A005 itself
    assert [w.id for w in state.waiting] == ["B001", "A004", "A005"]
    # nothing after 08:08 is known: A004's drop, A003's finish, B001's call
    assert {v.ticket_id: v.outcome for v in known}["A004"] == "waiting"
    assert [v.finished_at for v in known if v.ticket_id == "A003"] == [None]
    # teller times known by 08:08: A001 300 s, A002 180 s, A003 in service for 240 s
    assert model.service_times.count("teller") == 3
    assert facts["open_for"] == {"cs": 1, "teller": 1}


def test_replay_rows_and_baselines(day):
    got = predictions(*day)
    actual = {k: p.actual_s for k, p in got.items()}
    assert actual == {
        "A001": 0.0,
        "A002": 0.0,
        "A003": 120.0,
        "B001": 360.0,
        "A004": None,
        "A005": 1020.0,
        "A006": 180.0,
    }
    # an idle counter that serves the ticket's service takes it at once
    assert got["A001"].predicted_s == 0.0
    assert got["A002"].predicted_s == 0.0  # C1 busy, C2 idle (cs first, none waiting)
    # A004: C1 idle since 08:05 and nothing has waited 2 minutes for it yet: looks open
    assert got["A004"].predicted_s == 0.0
    # baselines at A003 (08:02): both counters busy, nothing finished; teller mean from the two
    # tickets in service imputed at 300 s: queue length (0 + 1) x 300 / 2 = 150
    assert got["A003"].baselines == {"queue_length": 150.0, "les": 0.0, "hol": 0.0}
    # at A005 (08:08): A004 ahead for 120 s (HOL); A003 was the last called, after 120 s (LES);
    # open for teller: C2 only (C1 away); teller mean: 300, 180, A003 imputed at
    # 240 + 0.5 x 246.67 and the prior 260: 275.83; queue length (1 + 1) x 275.83 / 1
    b = got["A005"].baselines
    assert (b["les"], b["hol"]) == (120.0, 120.0)
    assert b["queue_length"] == pytest.approx(551.667, abs=0.01)
    # A005 waits for C2 to finish A003 (08:09) and B001 (cs first) and A004 unless it gives up,
    # or for C1 back from its break: far more than the queue length says
    assert 700 < got["A005"].predicted_s < 1500
    assert got["A005"].low_s <= got["A005"].predicted_s <= got["A005"].high_s


def _rewrite(src: str, dst: Path, change) -> str:
    with open(src, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows = change(rows)
    with open(dst, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return str(dst)


def test_nothing_after_arrival_leaks(day, tmp_path):
    """Change everything that happened after A003 arrived (08:02): the predictions of A001..A003
    stay the same to the last digit; those after change."""
    visits, counters = day
    before = predictions(visits, counters)

    def perturb(rows):
        out = []
        for r in rows:
            r = dict(r)
            if r["ticket_id"] == "A003":  # called and finished later
                r["called_at"] = "2026-03-02T08:07:00+07:00"
                r["finished_at"] = "2026-03-02T08:20:00+07:00"
            if r["ticket_id"] in ("A001", "A002"):  # finished later
                r["finished_at"] = "2026-03-02T08:06:00+07:00"
            if r["ticket_id"] == "B001":
                r["finished_at"] = "2026-03-02T08:40:00+07:00"
            out.append(r)
        out.append(
            {
                "ticket_id": "B002",
                "service": "cs",
                "arrived_at": "2026-03-02T08:02:30+07:00",
                "called_at": "",
                "finished_at": "2026-03-02T08:03:00+07:00",
                "counter": "",
                "outcome": "abandoned",
            }
        )
        return out

    changed = _rewrite(DAY, tmp_path / "day.csv", perturb)
    after = predictions(read_visits(changed, counters), counters)
    for tid in ("A001", "A002", "A003"):
        assert after[tid].predicted_s == before[tid].predicted_s
        assert after[tid].baselines == before[tid].baselines
        assert (after[tid].low_s, after[tid].high_s) == (before[tid].low_s, before[tid].high_s)
    assert after["A003"].actual_s == 300.0  # the truth changed, the prediction did not
    assert after["B001"].predicted_s != before["B001"].predicted_s


def test_replay_is_deterministic(day):
    one = predictions(*day)
    two = predictions(*day)
    assert {k: p.predicted_s for k, p in one.items()} == {k: p.predicted_s for k, p in two.items()}


@pytest.mark.parametrize(
    ("counters_text", "day_text", "message"),
    [
        ("counter,service\nC1,teller\n", None, "bad header"),
        ("counter,services\nC1,\n", None, "has an empty service"),
        (None, "ticket,service\n", "bad header"),
        (
            None,
            "ticket_id,service,arrived_at,called_at,finished_at,counter,outcome\n"
            "A1,teller,2026-03-02 8am,,,,abandoned\n",
            "arrived_at is not an ISO 8601 date and time",
        ),
        (
            None,
            "ticket_id,service,arrived_at,called_at,finished_at,counter,outcome\n"
            "A1,teller,2026-03-02T08:00:00,,,,abandoned\n",
            "arrived_at has no UTC offset",
        ),
        (
            None,
            "ticket_id,service,arrived_at,called_at,finished_at,counter,outcome\n"
            "B1,cs,2026-03-02T08:00:00+07:00,2026-03-02T08:01:00+07:00,"
            "2026-03-02T08:02:00+07:00,C1,served\n",
            "counter 'C1' does not serve 'cs' (it serves teller)",
        ),
        (
            None,
            "ticket_id,service,arrived_at,called_at,finished_at,counter,outcome\n"
            "A1,teller,2026-03-02T08:00:00+07:00,2026-03-02T08:01:00+07:00,"
            "2026-03-02T08:02:00+07:00,C9,served\n",
            "unknown counter 'C9'",
        ),
        (
            None,
            "ticket_id,service,arrived_at,called_at,finished_at,counter,outcome\n"
            "A1,teller,2026-03-02T08:00:00+07:00,2026-03-02T07:59:00+07:00,"
            "2026-03-02T08:02:00+07:00,C1,served\n",
            "called_at is before arrived_at",
        ),
        (
            None,
            "ticket_id,service,arrived_at,called_at,finished_at,counter,outcome\n"
            "A1,teller,2026-03-02T08:00:00+07:00,,,,gone\n",
            "outcome must be served or abandoned, not 'gone'",
        ),
    ],
)
def test_bad_input_is_named(tmp_path, counters_text, day_text, message):
    counters_path, day_path = tmp_path / "counters.csv", tmp_path / "day.csv"
    if counters_text is None:
        shutil.copy(COUNTERS, counters_path)
    else:
        counters_path.write_text(counters_text, encoding="utf-8")
    if day_text is None:
        shutil.copy(DAY, day_path)
    else:
        day_path.write_text(day_text, encoding="utf-8")
    with pytest.raises(ReplayInputError) as info:
        read_visits(str(day_path), read_counters(str(counters_path)))
    assert message in str(info.value)
    # the line is named for a bad row
    if day_text is not None and "bad header" not in message:
        assert f"{day_path}:2:" in str(info.value)


# --- the CLI: flask --app queue_app ewt replay|evaluate ------------------------------------


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=["ewt", *args])

    return invoke


def test_cli_replay_writes_every_ticket(run, tmp_path):
    out = tmp_path / "pred.csv"
    result = run("replay", "--visits", DAY, "--counters", COUNTERS, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "7 tickets (6 served)" in result.output
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ticket_id", "predicted_wait_s", "actual_wait_s"]
    assert [r[0] for r in rows[1:]] == ["A001", "A002", "A003", "B001", "A004", "A005", "A006"]
    assert [r[2] for r in rows[1:]] == ["0", "0", "120", "360", "", "1020", "180"]
    assert [r[1] for r in rows[1:3]] == ["0", "0"]
    assert all(float(r[1]) >= 0 for r in rows[1:])


def test_cli_bad_input_exits_2_without_traceback(run, tmp_path):
    bad = tmp_path / "counters.csv"
    bad.write_text("counter,services\nC1,teller\n", encoding="utf-8")  # C2 missing
    out = tmp_path / "pred.csv"
    result = run("replay", "--visits", DAY, "--counters", str(bad), "--out", str(out))
    assert result.exit_code == 2
    assert "unknown counter 'C2'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    header = tmp_path / "day.csv"
    header.write_text("id,service\n", encoding="utf-8")
    result = run("evaluate", "--visits", str(header), "--counters", COUNTERS)
    assert result.exit_code == 2
    assert "bad header" in result.output
    missing = run(
        "replay", "--visits", str(tmp_path / "nope.csv"), "--counters", COUNTERS, "--out", str(out)
    )
    assert missing.exit_code == 2
    assert "cannot read" in missing.output


def test_cli_evaluate_prints_every_method(run, tmp_path):
    result = run("evaluate", "--visits", DAY, "--counters", COUNTERS, "--runs", "40")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "1 day, 6 served tickets"
    assert lines[1].split() == ["method", "n", "RMSE", "s", "MAE", "s", "bias", "s", "within"]
    assert [line.split()[0] for line in lines[2:6]] == ["estimator", "queue_length", "les", "hol"]
    # HOL by hand: A003 0 (nobody ahead), A005 120, others 0 -> errors 0, 0, -120, -360,
    # -900, -180: RMSE sqrt((120² + 360² + 900² + 180²) / 6)
    hol = lines[5].split()
    assert hol[1] == "6"
    assert float(hol[2]) == pytest.approx(
        ((120**2 + 360**2 + 900**2 + 180**2) / 6) ** 0.5, abs=0.06
    )
    assert float(hol[4]) == pytest.approx(-(120 + 360 + 900 + 180) / 6, abs=0.06)
    # within +-max(2 min, 20%): A001, A002 (0), A003 (|-120| <= 120), A006 (|-180| > 120): 3/6
    assert hol[5] == "50.0%"
    assert "estimator RMSE / best baseline" in result.output
    assert "quoted range: actual above the high end" in result.output


def test_cli_evaluate_scores_a_predictions_file(run, tmp_path):
    pred = tmp_path / "pred.csv"
    pred.write_text(
        "ticket_id,predicted_wait_s,actual_wait_s\n"
        "A001,0,0\nA002,0,0\nA003,120,120\nB001,360,360\nA004,0,\nA005,1020,1020\nA006,180,180\n",
        encoding="utf-8",
    )
    result = run("evaluate", "--visits", DAY, "--counters", COUNTERS, "--pred", str(pred))
    assert result.exit_code == 0, result.output
    est = result.output.splitlines()[2].split()
    assert est == ["estimator", "6", "0.0", "0.0", "+0.0", "100.0%"]
    assert "estimator RMSE / best baseline" in result.output
    short = tmp_path / "short.csv"
    short.write_text("ticket_id,predicted_wait_s,actual_wait_s\nA001,0,0\n", encoding="utf-8")
    result = run("evaluate", "--visits", DAY, "--counters", COUNTERS, "--pred", str(short))
    assert result.exit_code == 2
    assert "no prediction for ticket 'A002'" in result.output


# --- the optional columns a live branch also records --------------------------------------


def _with_columns(tmp_path, visit_extra: dict, counter_absences: dict | None = None):
    """The fixture day with the optional `priority` and `appointment_at` columns (values per
    ticket, empty elsewhere) and, if given, the counters' `absences` column."""

    def change(rows):
        for r in rows:
            r["priority"] = visit_extra.get(r["ticket_id"], {}).get("priority", "")
            r["appointment_at"] = visit_extra.get(r["ticket_id"], {}).get("appointment_at", "")
        return rows

    day = _rewrite(DAY, tmp_path / "day.csv", change)
    counters = COUNTERS
    if counter_absences is not None:

        def add(rows):
            for r in rows:
                r["absences"] = counter_absences.get(r["counter"], "")
            return rows

        counters = _rewrite(COUNTERS, tmp_path / "counters.csv", add)
    return day, counters


def test_optional_columns_are_read(tmp_path):
    day, counters_path = _with_columns(
        tmp_path,
        {"A005": {"priority": "1"}, "B001": {"appointment_at": "2026-03-02T08:05:00+07:00"}},
        {"C1": "2026-03-02T11:00:00+07:00/2026-03-02T11:30:00+07:00"},
    )
    counters, schedule = read_counter_file(counters_path)
    visits = {v.ticket_id: v for v in read_visits(day, counters)}
    assert visits["A005"].priority == 1 and visits["A004"].priority == 0
    assert visits["B001"].appointment_at == moment("08:05:00")
    assert visits["A005"].appointment_at is None
    assert schedule == {"C1": [(moment("11:00:00"), moment("11:30:00"))]}
    # the format's own files have none of them
    assert read_counter_file(COUNTERS)[1] == {}
    assert {v.priority for v in read_visits(DAY, counters)} == {0}


@pytest.mark.parametrize(
    ("header_extra", "value", "message"),
    [
        ("priority", "high", "priority is a whole number"),
        ("priority", "-1", "priority is a whole number"),
        ("appointment_at", "08:05", "appointment_at is not an ISO 8601"),
        ("appointment_at", "2026-03-02T08:05:00", "appointment_at has no UTC offset"),
        ("gate", "3", "bad header"),
        ("priority,priority", "1,1", "bad header"),
    ],
)
def test_bad_optional_visit_column_is_named(tmp_path, header_extra, value, message):
    path = tmp_path / "day.csv"
    path.write_text(
        f"ticket_id,service,arrived_at,called_at,finished_at,counter,outcome,{header_extra}\n"
        f"A1,teller,2026-03-02T08:00:00+07:00,,,,abandoned,{value}\n",
        encoding="utf-8",
    )
    with pytest.raises(ReplayInputError) as info:
        read_visits(str(path), read_counters(COUNTERS))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("absences", "message"),
    [
        ("2026-03-02T11:00:00+07:00", "is not start/end"),
        ("2026-03-02T11:30:00+07:00/2026-03-02T11:00:00+07:00", "ends before it starts"),
        ("11:00/11:30", "absences is not an ISO 8601"),
    ],
)
def test_bad_absences_are_named(tmp_path, absences, message):
    path = tmp_path / "counters.csv"
    path.write_text(f'counter,services,absences\nC1,teller,"{absences}"\n', encoding="utf-8")
    with pytest.raises(ReplayInputError) as info:
        read_counter_file(str(path))
    assert f"{path}:2:" in str(info.value) and message in str(info.value)


@pytest.mark.parametrize(
    "extra",
    [{"priority": "1"}, {"appointment_at": "2026-03-02T08:10:00+07:00"}],
    ids=["priority", "due appointment"],
)
def test_priority_and_due_appointment_go_ahead(day, tmp_path, extra):
    """A005 (08:08) arrives behind A004 (08:06). In a higher priority class, or with an
    appointment due within the 5 minutes a due appointment is called early, it is ahead of
    A004: in the state the estimator gets and in the queue-length baseline's position."""
    plain = predictions(*day)
    path, _ = _with_columns(tmp_path, {"A005": extra})
    counters = read_counters(COUNTERS)
    visits = read_visits(path, counters)
    marked = predictions(visits, counters)
    # the plain day: A004 ahead, (1 + 1) x 275.83 / 1 (test_replay_rows_and_baselines)
    assert plain["A005"].baselines["queue_length"] == pytest.approx(551.667, abs=0.01)
    assert plain["A005"].baselines["hol"] == 120.0
    # marked: nobody ahead of it any more
    assert marked["A005"].baselines["queue_length"] == pytest.approx(275.833, abs=0.01)
    assert marked["A005"].baselines["hol"] == 0.0
    assert marked["A005"].predicted_s < plain["A005"].predicted_s
    # the estimator's state carries the class and the due time
    t = moment("08:08:00")
    known = _known_by(visits, {"A004": moment("08:08:30")}, t, visits[5])
    state, _, _ = state_at(known, counters, t, ReplayOptions(), day_start=moment("08:00:00"))
    a005 = next(w for w in state.waiting if w.id == "A005")
    assert a005.rank == int(extra.get("priority", 0))
    expected_due = extra.get("appointment_at")
    assert a005.appointment_due_at == (expected_due and datetime.fromisoformat(expected_due))
    # tickets of other services and those not marked keep their plain baselines
    for tid in ("A001", "A002", "A003", "B001", "A004", "A006"):
        assert marked[tid].baselines == plain[tid].baselines


def test_priority_share_is_learned_from_the_column(tmp_path):
    path, _ = _with_columns(tmp_path, {"A002": {"priority": "1"}, "A003": {"priority": "2"}})
    counters = read_counters(COUNTERS)
    visits = read_visits(path, counters)
    t = moment("08:08:00")
    known = _known_by(visits, {}, t, visits[5])
    _, model, _ = state_at(known, counters, t, ReplayOptions(), day_start=moment("08:00:00"))
    # 2 of the 5 teller arrivals known by 08:08 were urgent, with 10 normal ones as the prior
    assert model.arrivals.priority_share == {"teller": pytest.approx(2 / 15)}


def test_cli_replay_uses_the_counters_absences(run, tmp_path):
    """C2 is planned away from 08:02 to 08:40: A003 (08:02), waiting for C1 or C2, is then told
    a longer wait than on the plain day."""
    out_plain, out_planned = tmp_path / "plain.csv", tmp_path / "planned.csv"
    _, counters = _with_columns(
        tmp_path, {}, {"C2": "2026-03-02T08:02:00+07:00/2026-03-02T08:40:00+07:00"}
    )
    for counters_path, out in ((COUNTERS, out_plain), (counters, out_planned)):
        result = run("replay", "--visits", DAY, "--counters", counters_path, "--out", str(out))
        assert result.exit_code == 0, result.output

    def a003(path):
        with open(path, newline="", encoding="utf-8") as handle:
            return next(float(r[1]) for r in csv.reader(handle) if r[0] == "A003")

    assert a003(out_planned) > a003(out_plain)


def test_a_known_model_replaces_the_learned_one(day):
    """`known_model` given (the simulator's own, or one learned from a long history): the
    state's model is it, not what the log taught by then."""
    from queue_app.waits.model import ServiceTimes, WaitModel

    visits, counters = day
    known = WaitModel(ServiceTimes({"teller": 900.0, "cs": 60.0}, prior_weight=1000.0))
    t = moment("08:08:00")
    log = _known_by(visits, {}, t, visits[5])
    _, learned, _ = state_at(log, counters, t, ReplayOptions(), day_start=moment("08:00:00"))
    _, given, _ = state_at(
        log, counters, t, ReplayOptions(), day_start=moment("08:00:00"), known_model=known
    )
    assert learned.service_times.mean("teller") == pytest.approx(275.833, abs=0.01)
    assert given is known
    plain = predictions(visits, counters)
    slow = {
        p.ticket_id: p
        for p in replay(visits, counters, ReplayOptions(runs=40, seed=7), known_model=known)
    }
    # A005 waits behind teller tickets: 900 s each instead of about 276 s
    assert slow["A005"].predicted_s > plain["A005"].predicted_s


def test_the_simulators_own_model():
    from queue_app.waits.simulator import multi_skill_spec, true_model

    model = true_model(multi_skill_spec(), seed=1)
    # service times: its means, from many draws
    assert model.service_times.count("teller") == 4000
    assert model.service_times.mean("teller") == pytest.approx(240.0, rel=0.05)
    # arrivals: walk-ins (90%) and the appointments that come (10% x 80%), per local hour
    assert model.local_hour(moment("10:30:00")) == 10
    assert model.arrivals.per_second("teller", 10) == pytest.approx(44 * 0.98 / 3600)
    assert model.arrivals.per_second("teller", 16) == 0.0
    # 5% of walk-ins are priority customers: 0.05 x 0.9 / 0.98 of all arrivals
    assert model.arrivals.priority_share["loans"] == pytest.approx(0.045 / 0.98)
    assert model.abandonment.hazard("cs") == pytest.approx(1 / 2400)
