"""Scheduled jobs: called with an explicit `now`, and run once through a real scheduler."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from queue_app.extensions import db
from queue_app.jobs import scheduler as jobs_scheduler
from queue_app.jobs.tasks import close_past_business_days
from queue_app.tickets import services as engine
from queue_app.tickets.models import JourneyEvent, Ticket, TicketStatus

JAKARTA = ZoneInfo("Asia/Jakarta")


def _statuses(ids):
    """Read afresh, and end the read so the job (its own session) may write (SQLite)."""
    db.session.expire_all()
    result = [db.session.get(Ticket, i).status for i in ids]
    db.session.rollback()
    return result


def test_yesterdays_open_tickets_are_closed_and_kept(app, make, session):
    evening = datetime(2026, 3, 3, 16, 30, tzinfo=JAKARTA)  # Tuesday, after closing
    b = make.branch("JOB01")
    staff = make.user(branches=[b])
    counter = make.counter(b, "Loket 1")
    make.open_counter(counter, staff, now=evening)
    serving = make.ticket(b, now=evening)
    engine.call_next(counter, staff, now=evening)
    engine.start(serving, staff, now=evening)
    waiting = make.ticket(b, now=evening)
    today = make.ticket(b, now=evening + timedelta(hours=8))  # 00:30 Wednesday local
    session.commit()
    ids = [serving.id, waiting.id, today.id]

    # still Tuesday in Jakarta: nothing to close
    assert close_past_business_days(app, evening + timedelta(minutes=60)) == 0
    assert _statuses(ids) == [TicketStatus.SERVING, TicketStatus.WAITING, TicketStatus.WAITING]

    morning = datetime(2026, 3, 4, 7, 0, tzinfo=JAKARTA)
    assert close_past_business_days(app, morning) == 2
    assert _statuses(ids) == [TicketStatus.FINISHED, TicketStatus.CANCELLED, TicketStatus.WAITING]
    log = db.session.scalars(
        select(JourneyEvent).where(JourneyEvent.ticket_id.in_(ids[:2])).order_by(JourneyEvent.seq)
    ).all()
    closing = [e for e in log if e.data == {"reason": "day_closed"}]
    assert [(e.kind, e.actor_id) for e in closing] == [("finish", None), ("cancel", None)]
    db.session.rollback()
    # run again: nothing more to do, and history is never deleted
    assert close_past_business_days(app, morning) == 0
    assert db.session.scalar(select(db.func.count()).select_from(Ticket)) == 3


def test_call_next_never_calls_a_ticket_of_an_earlier_day(make, session):
    b = make.branch("JOB02")
    staff = make.user(branches=[b])
    counter = make.counter(b, "Loket 1")
    evening = datetime(2026, 3, 3, 16, 0, tzinfo=JAKARTA)
    make.ticket(b, now=evening)
    morning = datetime(2026, 3, 4, 8, 0, tzinfo=JAKARTA)
    make.open_counter(counter, staff, now=morning)
    assert engine.call_next(counter, staff, now=morning) is None
    fresh = make.ticket(b, now=morning)
    assert engine.call_next(counter, staff, now=morning).id == fresh.id


def test_the_scheduler_runs_the_job_once_at_start(app, make, session):
    b = make.branch("JOB03")
    old = make.ticket(b, now=datetime.now(UTC) - timedelta(days=2))
    session.commit()

    done = threading.Event()
    outcome = {}

    def listener(event):
        outcome.setdefault(event.job_id, event.exception)
        if event.job_id == "close_past_business_days":
            done.set()

    scheduler = jobs_scheduler.configure(BackgroundScheduler(timezone="UTC"), app)
    assert sorted(j.id for j in scheduler.get_jobs()) == [
        "anonymise_personal_data",
        "close_past_business_days",
        "deliver_outbox",
        "deliver_webhooks",
        "escalate_cases",
        "evaluate_alerts",
        "expire_appointment_holds",
        "mark_appointment_no_shows",
        "purge_audit_log",
        "roll_up_waits",
        "send_reminders",
        "snapshot_closed_periods",
    ]
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        assert done.wait(30), "the job did not run"
    finally:
        scheduler.shutdown(wait=True)
    assert outcome["close_past_business_days"] is None
    assert _statuses([old.id]) == [TicketStatus.CANCELLED]
