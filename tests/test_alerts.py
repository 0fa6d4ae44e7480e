"""Alert thresholds for real, with frozen time: raising when the longest wait reaches the
threshold, hysteresis (no flapping), acknowledging, clearing by itself, escalation to the next
manager with a real SMTP server, the idle counter, the no-show rate, the timeline, evaluation
triggered by a committed change (sync and the worker thread) and its cost for a branch nothing
watches, and two evaluations at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, update

from queue_app.accounts.models import Role
from queue_app.alerts import queries
from queue_app.alerts import services as alerts
from queue_app.alerts.jobs import evaluate_alerts
from queue_app.alerts.models import Alert, AlertRule, AlertStatus, AlertStep, Metric
from queue_app.alerts.receivers import evaluator
from queue_app.core.errors import Conflict
from queue_app.core.events import signal
from queue_app.extensions import db
from queue_app.notify.models import OutboxMessage
from queue_app.tickets import services as engine

from .apihelp import fast_passwords
from .outboxes import deliver_outbox as deliver_job

T0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta
M = timedelta(minutes=1)
S = timedelta(seconds=1)


class People:
    pass


@pytest.fixture
def floor(make, monkeypatch):
    fast_passwords(monkeypatch)
    p = People()
    p.branch = make.branch(
        "JKT01",
        counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs", "loans"])],
    )
    p.teller = make.service(p.branch, "teller")
    p.staff = make.user("budi", branches=[p.branch])
    p.staff2 = make.user("siti", branches=[p.branch])
    p.manager = make.user("dewi", role=Role.BRANCH_MANAGER, branches=[p.branch])
    p.area = make.user("hendra", role=Role.BRANCH_MANAGER, branches=[p.branch])
    p.manager.email, p.manager.locale = "dewi@bank.co.id", "en"
    p.area.email, p.area.locale = "hendra@bank.co.id", "en"
    p.manager.manager = p.area  # dewi's manager: hendra; nobody above hendra
    # the area manager has the larger id: the branch's manager (owner at level 1) is dewi
    db.session.flush()
    db.session.commit()
    return p


def rule(p, metric=Metric.LONGEST_WAIT_S, *, service="teller", **options):
    options.setdefault("raise_at", 900)
    options.setdefault("clear_at", 600)
    svc = p.teller if service == "teller" else None
    made = alerts.create_rule(db.session, p.branch, metric=metric, service=svc, now=T0, **options)
    db.session.commit()
    return made


def evaluate(p, at) -> list[Alert]:
    changed = alerts.evaluate_branch(db.session, p.branch, at)
    db.session.commit()
    return changed


def all_alerts() -> list[Alert]:
    db.session.expire_all()
    return list(db.session.scalars(select(Alert).order_by(Alert.id)))


def kinds(alert: Alert) -> list[str]:
    return [s.kind.value for s in queries.alert_timeline(db.session, alert.id)]


def issue(p, at, code="teller"):
    ticket = engine.issue_ticket(
        p.branch, next(s for s in p.branch.services if s.code == code), now=at
    )
    db.session.commit()
    return ticket


def open_counter(p, name, who, at):
    counter = next(c for c in p.branch.counters if c.name == name)
    engine.open_counter(counter, who, now=at)
    db.session.commit()
    return counter


def call(counter, who, at):
    ticket = engine.call_next(counter, who, now=at)
    db.session.commit()
    return ticket


def job(app, now) -> dict:
    """The `evaluate_alerts` job, in its own application context and session: the test's
    session ends its transaction first (SQLite's write lock)."""
    db.session.commit()
    return evaluate_alerts(app, now)


def deliver(app, now):
    db.session.commit()
    return deliver_job(app, now)


@pytest.fixture
def changes():
    """The `alert.changed` events published after commits, in order."""
    seen = []

    def receiver(_sender, **payload):
        seen.append(payload)

    signal("alert.changed").connect(receiver)
    yield seen
    signal("alert.changed").disconnect(receiver)


# --- raising, hysteresis, clearing -------------------------------------------------------------


def test_an_alert_is_raised_when_the_longest_wait_reaches_the_threshold(app, floor, smtp, changes):
    p = floor
    rule(p, raise_at=900, clear_at=600)
    issue(p, T0)
    assert evaluate(p, T0 + 15 * M - S) == []  # 899 s: not yet
    assert all_alerts() == []
    [raised] = evaluate(p, T0 + 15 * M)  # 900 s: reached
    [alert] = all_alerts()
    assert alert.id == raised.id
    assert (alert.status, alert.level, alert.metric) == (
        AlertStatus.RAISED,
        1,
        Metric.LONGEST_WAIT_S,
    )
    assert (alert.value_raised, alert.threshold, alert.subject) == (
        900,
        900,
        f"service:{p.teller.id}",
    )
    assert alert.owner_id == p.manager.id
    assert alert.ack_due_at == T0 + 15 * M + 600 * S  # ack_within_s defaults to 10 minutes
    assert changes == [{"branch_id": p.branch.id, "alert_id": alert.id, "status": "raised"}]
    # the same state a minute later: still one alert, its current value moved on
    evaluate(p, T0 + 16 * M)
    [alert] = all_alerts()
    assert (alert.current_value, alert.peak_value, alert.value_raised) == (960, 960, 900)
    assert kinds(alert) == ["raised"]
    # the branch manager was told by e-mail
    deliver(app, T0 + 16 * M)
    [mail] = smtp.wait_for(1)
    assert str(mail["To"]) == "dewi@bank.co.id"
    assert "Longest wait at Teller is 15 min (threshold 15 min)" in str(mail["Subject"])
    payload = queries.alert_payload(alert, "en")
    assert payload["message"] == "Longest wait at Teller is 16 min (threshold 15 min)"
    assert (payload["branch"], payload["service"], payload["status"]) == (
        "JKT01",
        "teller",
        "raised",
    )
    assert payload["raised_at"] == "2026-03-03T10:15:00+07:00"


def test_hysteresis_no_flapping_and_a_new_alert_after_clearing(app, floor):
    p = floor
    rule(p, raise_at=900, clear_at=600, clear_after_s=120)
    teller1 = open_counter(p, "Teller 1", p.staff, T0)
    issue(p, T0)  # A
    issue(p, T0 + 7 * M)  # B
    evaluate(p, T0 + 15 * M)  # A waited 900 s: raised
    a = call(teller1, p.staff, T0 + 15 * M)  # A leaves the queue: B waited 8 min
    evaluate(p, T0 + 15 * M + S)  # 481 s <= 600: the clearing clock starts
    evaluate(p, T0 + 16 * M)  # 540 s: calm for 59 s only, still open
    [alert] = all_alerts()
    assert (alert.status, alert.calm_since) == (AlertStatus.RAISED, T0 + 15 * M + S)
    evaluate(p, T0 + 17 * M + 30 * S)  # 630 s: above clear_at again, below raise_at
    [alert] = all_alerts()
    assert (alert.status, alert.calm_since) == (
        AlertStatus.RAISED,
        None,
    )  # neither cleared nor raised again
    engine.finish(engine.start(a, p.staff, now=T0 + 16 * M), p.staff, now=T0 + 17 * M)
    db.session.commit()
    call(teller1, p.staff, T0 + 17 * M + 30 * S)  # B called: nobody waits
    evaluate(p, T0 + 17 * M + 31 * S)  # 0: calm again
    evaluate(p, T0 + 19 * M + 30 * S)  # calm for 119 s
    assert all_alerts()[0].status == AlertStatus.RAISED
    evaluate(p, T0 + 19 * M + 31 * S)  # 120 s: cleared
    [alert] = all_alerts()
    assert (alert.status, alert.cleared_at) == (AlertStatus.CLEARED, T0 + 19 * M + 31 * S)
    assert kinds(alert) == ["raised", "calming", "relapsed", "calming", "cleared"]
    assert [s.value for s in queries.alert_timeline(db.session, alert.id)] == [900, 481, 630, 0, 0]
    # a new wait crossing the threshold is a new alert; the old one keeps its timeline
    issue(p, T0 + 20 * M)
    evaluate(p, T0 + 35 * M - S)  # 899 s
    assert len(all_alerts()) == 1
    evaluate(p, T0 + 35 * M)
    first, second = all_alerts()
    assert (first.status, second.status) == (AlertStatus.CLEARED, AlertStatus.RAISED)
    assert kinds(first) == ["raised", "calming", "relapsed", "calming", "cleared"]


def test_acknowledge_then_clear_by_itself(app, floor, changes):
    p = floor
    rule(p, raise_at=900, clear_at=600)
    teller1 = open_counter(p, "Teller 1", p.staff, T0)
    issue(p, T0)
    [alert] = evaluate(p, T0 + 15 * M)
    alerts.acknowledge(alert, p.manager, T0 + 16 * M, "  Teller 2 is coming back from lunch  ")
    db.session.commit()
    [alert] = all_alerts()
    assert (alert.status, alert.acknowledged_at, alert.acknowledged_by_id, alert.ack_due_at) == (
        AlertStatus.ACKNOWLEDGED,
        T0 + 16 * M,
        p.manager.id,
        None,
    )
    with pytest.raises(Conflict):
        alerts.acknowledge(alert, p.manager, T0 + 17 * M)
    db.session.rollback()
    # acknowledged: no escalation however long it stays open
    assert alerts.escalate_due(db.session, T0 + 60 * M) == []
    db.session.commit()
    call(teller1, p.staff, T0 + 20 * M)
    evaluate(p, T0 + 20 * M)  # clear_after_s 0: at once
    [alert] = all_alerts()
    assert (alert.status, alert.cleared_at) == (AlertStatus.CLEARED, T0 + 20 * M)
    assert kinds(alert) == ["raised", "acknowledged", "cleared"]
    [_raised, ack, _cleared] = queries.alert_timeline(db.session, alert.id)
    assert (ack.actor_id, ack.note) == (p.manager.id, "Teller 2 is coming back from lunch")
    assert [c["status"] for c in changes] == ["raised", "acknowledged", "cleared"]
    with pytest.raises(Conflict):
        alerts.acknowledge(alert, p.manager, T0 + 21 * M)
    db.session.rollback()


def test_unacknowledged_alerts_escalate_to_the_next_manager_by_email(app, floor, smtp):
    p = floor
    rule(p, raise_at=900, clear_at=600, ack_within_s=600)
    issue(p, T0)
    # the job: evaluates (raises at 10:15, due 10:25) and sweeps
    assert job(app, T0 + 15 * M) == {"branches": 1, "changed": 1, "escalated": 0}
    assert job(app, T0 + 25 * M - S)["escalated"] == 0
    assert job(app, T0 + 25 * M)["escalated"] == 1
    [alert] = all_alerts()
    assert (alert.level, alert.owner_id, alert.escalated_at) == (2, p.area.id, T0 + 25 * M)
    assert alert.ack_due_at == T0 + 35 * M
    # nobody above hendra: he keeps it, the clock stops
    assert job(app, T0 + 35 * M)["escalated"] == 0
    [alert] = all_alerts()
    assert (alert.level, alert.owner_id, alert.ack_due_at) == (2, p.area.id, None)
    assert kinds(alert) == ["raised", "escalated"]
    step = queries.alert_timeline(db.session, alert.id)[1]
    assert step.data == {"from": 1, "to": 2, "owner": p.area.id}
    deliver(app, T0 + 36 * M)
    mails = smtp.wait_for(2)
    assert sorted(str(m["To"]) for m in mails) == ["dewi@bank.co.id", "hendra@bank.co.id"]
    escalated = next(m for m in mails if str(m["To"]) == "hendra@bank.co.id")
    assert "escalated to you (level 2)" in str(escalated["Subject"])
    # a repeated sweep writes nothing again
    assert job(app, T0 + 40 * M)["escalated"] == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


# --- the other metrics -------------------------------------------------------------------------


def test_a_counter_idle_while_its_queue_waits(app, floor):
    p = floor
    rule(p, Metric.IDLE_COUNTER_S, service=None, raise_at=300, clear_at=60)
    teller1 = open_counter(p, "Teller 1", p.staff, T0)
    teller2 = open_counter(p, "Teller 2", p.staff2, T0)
    issue(p, T0 + M)  # A
    call(teller1, p.staff, T0 + 2 * M)  # Teller 1 busy with A
    issue(p, T0 + 3 * M)  # B waits: Teller 2, open since 10:00, idle while B waits since 10:03
    assert evaluate(p, T0 + 8 * M - S) == []  # 299 s
    [alert] = evaluate(p, T0 + 8 * M)
    assert (alert.counter_id, alert.subject, alert.value_raised) == (
        teller2.id,
        f"counter:{teller2.id}",
        300,
    )
    assert queries.alert_payload(alert, "en")["message"] == (
        "Teller 2 has been idle for 5 min while customers wait (threshold 5 min)"
    )
    call(teller2, p.staff2, T0 + 8 * M + 30 * S)
    evaluate(p, T0 + 9 * M)
    [alert] = all_alerts()
    assert alert.status == AlertStatus.CLEARED  # Teller 2 is busy: 0
    assert len(all_alerts()) == 1  # Teller 1 (busy all along) never raised


def test_the_no_show_rate_over_a_window_with_a_minimum_count(app, floor):
    p = floor
    rule(p, Metric.NO_SHOW_RATE, raise_at=0.3, clear_at=0.2, window_s=3600, min_count=4)
    teller1 = open_counter(p, "Teller 1", p.staff, T0)
    for i in range(4):
        issue(p, T0 + i * S)
    outcomes = ["no_show", "finish", "no_show", "finish"]
    for i, outcome in enumerate(outcomes):
        at = T0 + (i + 1) * M
        ticket = call(teller1, p.staff, at)
        if outcome == "no_show":
            engine.mark_no_show(ticket, p.staff, now=at + 30 * S)
        else:
            engine.finish(engine.start(ticket, p.staff, now=at), p.staff, now=at + 30 * S)
        db.session.commit()
        if i == 2:  # three calls ended, 2 no-shows: below the minimum count, no value
            assert evaluate(p, at + 31 * S) == []
    [alert] = evaluate(p, T0 + 5 * M)  # 2 of 4: 0.5
    assert (alert.value_raised, alert.threshold) == (0.5, 0.3)
    assert queries.alert_payload(alert, "en")["message"] == (
        "No-show rate at Teller is 50% (threshold 30%)"
    )
    # an hour after the first call ended (10:01:30) only three are left in the window: below
    # the minimum count there is no evidence, which counts as calm
    evaluate(p, T0 + 61 * M + 30 * S - S)
    assert all_alerts()[0].status == AlertStatus.RAISED
    evaluate(p, T0 + 61 * M + 30 * S)
    assert all_alerts()[0].status == AlertStatus.CLEARED


def test_queue_length_and_ewt_for_the_whole_branch(app, floor):
    p = floor
    rule(p, Metric.QUEUE_LENGTH, service=None, raise_at=3, clear_at=1)
    # EWT of a new teller ticket: the estimator's (waits.live), made at the branch's last
    # change; no history, so 240 s per teller ticket, and an idle open counter calls the
    # oldest ticket at once. No CS counter is open: cs has no EWT.
    rule(p, Metric.EWT_S, raise_at=480, clear_at=240)
    open_counter(p, "Teller 1", p.staff, T0)
    issue(p, T0)
    issue(p, T0 + S, "cs")
    # 2 waiting: the teller ticket is called at once, a new one at 240 s
    assert evaluate(p, T0 + 2 * S) == []
    issue(p, T0 + 3 * S)
    changed = evaluate(p, T0 + 4 * S)  # 3 waiting: teller tickets at 0 and 240, a new at 480
    assert sorted((a.metric.value, a.value_raised) for a in changed) == [
        ("ewt_s", 480),
        ("queue_length", 3),
    ]
    # both tellers call one ticket each at once, a new one waits 240 s: at or below 240
    open_counter(p, "Teller 2", p.staff2, T0 + 5 * S)
    evaluate(p, T0 + 6 * S)
    by_metric = {a.metric: a for a in all_alerts()}
    assert by_metric[Metric.EWT_S].status == AlertStatus.CLEARED
    assert by_metric[Metric.QUEUE_LENGTH].status == AlertStatus.RAISED


def test_disabling_a_rule_clears_its_open_alerts(app, floor):
    p = floor
    made = rule(p, Metric.QUEUE_LENGTH, raise_at=1, clear_at=0)
    issue(p, T0)
    evaluate(p, T0 + S)
    assert alerts.update_rule(made, now=T0 + M, enabled=False) == ["enabled"]
    db.session.commit()
    [alert] = all_alerts()
    assert alert.status == AlertStatus.CLEARED
    assert queries.alert_timeline(db.session, alert.id)[-1].note == "rule disabled"
    assert evaluate(p, T0 + 2 * M) == []  # a disabled rule raises nothing


# --- evaluated on every committed change -------------------------------------------------------


def test_a_committed_change_evaluates_the_branch_at_once(app, floor, monkeypatch, changes):
    p = floor
    rule(p, Metric.QUEUE_LENGTH, service=None, raise_at=2, clear_at=0)
    monkeypatch.setitem(app.config, "ALERTS_ON_CHANGE", "sync")
    monkeypatch.setattr(evaluator(app), "clock", lambda: T0 + M)
    issue(p, T0)
    assert all_alerts() == []
    issue(p, T0 + S)  # the commit of the second ticket raises it
    [alert] = all_alerts()
    assert (alert.metric, alert.value_raised, alert.raised_at) == (Metric.QUEUE_LENGTH, 2, T0 + M)
    assert changes == [{"branch_id": p.branch.id, "alert_id": alert.id, "status": "raised"}]
    # a rolled-back change evaluates nothing
    engine.issue_ticket(p.branch, p.teller, now=T0 + 2 * S)
    db.session.rollback()
    assert all_alerts()[0].current_value == 2


def test_the_worker_thread_evaluates_after_the_commit(app, floor, monkeypatch):
    p = floor
    rule(p, Metric.QUEUE_LENGTH, service=None, raise_at=3, clear_at=0)
    monkeypatch.setitem(app.config, "ALERTS_ON_CHANGE", "thread")
    monkeypatch.setitem(app.config, "ALERTS_DEBOUNCE_S", 1.0)
    worker = evaluator(app)
    monkeypatch.setattr(worker, "clock", lambda: T0 + M)
    runs = worker.runs
    for i in range(3):  # three commits in a burst
        issue(p, T0 + i * S)
    assert worker.wait_idle(10)
    [alert] = all_alerts()
    assert alert.value_raised == 3
    # debounced: the first change is evaluated at once, the rest of the burst (well within a
    # second) folded into one evaluation at the end of the interval, which saw the last change
    assert 1 <= worker.runs - runs <= 2


def cost_of_run(app, branch_id) -> dict:
    """What `Evaluator.run` sends on this thread: its statements (BEGIN, COMMIT, ROLLBACK,
    SAVEPOINT and RELEASE apart: "begins" lists the BEGINs SQLite is sent), and how many
    transactions it commits and rolls back."""
    cost = {"statements": [], "begins": [], "commits": 0, "rollbacks": 0, "changed": None}
    me = threading.get_ident()

    def before(conn, cursor, statement, *args):
        if threading.get_ident() != me:
            return
        head = statement.lstrip().upper()
        if head.startswith("BEGIN"):
            cost["begins"].append(head)
        elif not head.startswith(("COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            cost["statements"].append(statement)

    def committed(conn):
        if threading.get_ident() == me:
            cost["commits"] += 1

    def rolled_back(conn):
        if threading.get_ident() == me:
            cost["rollbacks"] += 1

    db.session.commit()  # the test's transaction ends first (SQLite's write lock)
    listeners = [
        ("before_cursor_execute", before),
        ("commit", committed),
        ("rollback", rolled_back),
    ]
    for name, fn in listeners:
        event.listen(db.engine, name, fn)
    try:
        cost["changed"] = evaluator(app).run(branch_id)
    finally:
        for name, fn in listeners:
            event.remove(db.engine, name, fn)
    return cost


def test_a_branch_nothing_watches_costs_one_read_and_no_commit(app, floor, monkeypatch):
    """No enabled rule and no open alert (here: a disabled rule and a cleared alert, which do
    not count): one statement, no row lock, no write lock (SQLite), rolled back."""
    p = floor
    made = rule(p, Metric.QUEUE_LENGTH, raise_at=1, clear_at=0)
    issue(p, T0)
    assert len(evaluate(p, T0 + S)) == 1
    alerts.update_rule(made, now=T0 + M, enabled=False)
    db.session.commit()
    assert all_alerts()[0].status == AlertStatus.CLEARED
    worker = evaluator(app)
    monkeypatch.setattr(worker, "clock", lambda: T0 + 2 * M)
    runs = worker.runs
    cost = cost_of_run(app, p.branch.id)
    assert cost["changed"] == []
    assert len(cost["statements"]) == 1, cost["statements"]
    assert "FOR UPDATE" not in cost["statements"][0].upper()
    assert (cost["commits"], cost["rollbacks"]) == (0, 1)
    assert "BEGIN IMMEDIATE" not in cost["begins"]  # SQLite: a reader (PostgreSQL: none sent)
    assert worker.runs == runs + 1
    # a branch that does not exist (any more) costs the same
    gone = cost_of_run(app, p.branch.id + 1000)
    assert (len(gone["statements"]), gone["commits"], gone["changed"]) == (1, 0, [])


def test_a_watched_branch_is_still_evaluated_and_committed(app, floor, monkeypatch):
    p = floor
    rule(p, Metric.QUEUE_LENGTH, service=None, raise_at=1, clear_at=0)
    issue(p, T0)
    db.session.commit()
    monkeypatch.setattr(evaluator(app), "clock", lambda: T0 + M)
    cost = cost_of_run(app, p.branch.id)
    [alert] = all_alerts()
    assert [a.id for a in cost["changed"]] == [alert.id]
    assert (alert.status, alert.value_raised, alert.raised_at) == (AlertStatus.RAISED, 1, T0 + M)
    assert cost["commits"] == 1
    assert any("FOR UPDATE" in s.upper() for s in cost["statements"]) == (
        db.engine.dialect.name == "postgresql"  # the open alerts locked as before
    )


def test_an_open_alert_of_a_disabled_rule_is_cleared_on_the_next_change(app, floor, monkeypatch):
    """Every rule of the branch disabled, one of its alerts still open (the raise and the
    disabling crossed): the branch is still watched, and the next change clears the alert."""
    p = floor
    made = rule(p, Metric.QUEUE_LENGTH, service=None, raise_at=1, clear_at=0)
    issue(p, T0)
    assert len(evaluate(p, T0 + S)) == 1
    db.session.execute(update(AlertRule).where(AlertRule.id == made.id).values(enabled=False))
    db.session.commit()
    monkeypatch.setitem(app.config, "ALERTS_ON_CHANGE", "sync")
    monkeypatch.setattr(evaluator(app), "clock", lambda: T0 + M)
    issue(p, T0 + M)  # the commit evaluates the branch
    [alert] = all_alerts()
    assert (alert.status, alert.cleared_at) == (AlertStatus.CLEARED, T0 + M)
    assert queries.alert_timeline(db.session, alert.id)[-1].note == "rule disabled or deleted"


# --- two evaluations at once -------------------------------------------------------------------


def test_two_evaluations_at_once_raise_once(app, floor, is_postgres, monkeypatch, caplog):
    """On PostgreSQL both evaluations measure before either inserts (a second barrier after
    the measurement): both try to raise, the unique partial index lets one. SQLite's
    `BEGIN IMMEDIATE` runs them one after the other."""
    p = floor
    caplog.set_level("INFO", logger="queue_app.alerts.services")
    if is_postgres:
        measured = threading.Barrier(2)
        real_measure = alerts.measure

        def measure_then_wait(*args):
            readings = real_measure(*args)
            measured.wait(timeout=10)
            return readings

        monkeypatch.setattr(alerts, "measure", measure_then_wait)
    rule(p, raise_at=900, clear_at=600)
    issue(p, T0)
    branch_id = p.branch.id
    db.session.commit()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            with app.app_context():
                from queue_app.branches.models import Branch

                barrier.wait(timeout=10)
                branch = db.session.get(Branch, branch_id)
                changed = alerts.evaluate_branch(db.session, branch, T0 + 20 * M)
                db.session.commit()
                results.append(len(changed))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(results) == [0, 1]
    lost = [r for r in caplog.records if "raised by another evaluation" in r.getMessage()]
    assert len(lost) == (1 if is_postgres else 0)
    [alert] = all_alerts()
    assert kinds(alert) == ["raised"]
    assert db.session.scalar(select(func.count()).select_from(AlertStep)) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


# --- demo --------------------------------------------------------------------------------------


def test_the_demo_seed_writes_rules_once(app_ctx, monkeypatch):
    from queue_app.alerts.demo import DEMO_RULES
    from queue_app.alerts.models import AlertRule
    from queue_app.branches.models import Branch
    from queue_app.demo.seed import seed

    fast_passwords(monkeypatch)
    seed(T0)
    db.session.commit()
    branches = db.session.scalars(select(Branch)).all()
    rules = db.session.scalars(select(AlertRule)).all()
    assert {r.branch_id for r in rules} == {b.id for b in branches}
    jkt01 = next(b for b in branches if b.code == "JKT01")  # teller and cs: every demo rule
    assert sum(1 for r in rules if r.branch_id == jkt01.id) == len(DEMO_RULES)
    seed(T0)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AlertRule)) == len(rules)


def test_two_sweeps_at_once_escalate_once(app, floor):
    p = floor
    rule(p, Metric.QUEUE_LENGTH, raise_at=1, clear_at=0, ack_within_s=600)
    issue(p, T0)
    evaluate(p, T0)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                done = alerts.escalate_due(db.session, T0 + 10 * M)
                db.session.commit()
                results.append([d.to_level for d in done])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(results) == [[], [2]]
    [alert] = all_alerts()
    assert (alert.level, kinds(alert)) == (2, ["raised", "escalated"])
    kinds_written = db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
    assert kinds_written == [alerts.RAISED_KIND, alerts.ESCALATED_KIND]
