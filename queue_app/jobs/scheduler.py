"""Building the APScheduler scheduler with every job of queue_app."""

from __future__ import annotations

import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..alerts import jobs as alerts_jobs
from ..booking import checkin
from ..cases import jobs as cases_jobs
from ..core.types import utcnow
from ..insights import jobs as insights_jobs
from ..notify import jobs as notify_jobs
from ..reports import jobs as reports_jobs
from ..webhooks import jobs as webhooks_jobs
from . import tasks

JOBS = [
    # id, function, trigger
    ("close_past_business_days", tasks.close_past_business_days, IntervalTrigger(minutes=10)),
    ("expire_appointment_holds", tasks.expire_appointment_holds, IntervalTrigger(minutes=1)),
    ("mark_appointment_no_shows", checkin.expire_no_shows_job, IntervalTrigger(minutes=5)),
    ("deliver_outbox", notify_jobs.deliver_outbox, IntervalTrigger(seconds=30)),
    ("deliver_webhooks", webhooks_jobs.deliver_webhooks, IntervalTrigger(seconds=30)),
    ("send_reminders", notify_jobs.send_reminders, IntervalTrigger(minutes=5)),
    ("roll_up_waits", insights_jobs.roll_up_waits, IntervalTrigger(hours=1)),
    ("escalate_cases", cases_jobs.escalate_cases, IntervalTrigger(minutes=5)),
    ("evaluate_alerts", alerts_jobs.evaluate_alerts, IntervalTrigger(minutes=1)),
    # daily, at a quiet hour: personal data older than RETENTION_DAYS anonymised
    (
        "anonymise_personal_data",
        tasks.anonymise_personal_data,
        CronTrigger(hour=19, minute=40, timezone="UTC"),  # 02:40 in Jakarta
    ),
    # daily: audit entries older than AUDIT_RETENTION_DAYS (0, the default: kept for ever)
    (
        "purge_audit_log",
        tasks.purge_audit_log,
        CronTrigger(hour=19, minute=50, timezone="UTC"),  # 02:50 in Jakarta
    ),
    # after the end-of-day close (every 10 minutes): the reports of the periods just closed
    (
        "snapshot_closed_periods",
        reports_jobs.snapshot_closed_periods,
        CronTrigger(minute=20, timezone="UTC"),
    ),
]


def _runner(app, job, name=None):
    from ..observability.metrics import job_run

    def run():
        # counted by outcome and timed; its log lines carry the job's name
        with job_run(name or job.__name__):
            return job(app, utcnow())

    run.__name__ = job.__name__
    return run


def configure(scheduler: BaseScheduler, app) -> BaseScheduler:
    for job_id, func, trigger in JOBS:
        scheduler.add_job(
            _runner(app, func, job_id),
            trigger,
            id=job_id,
            name=job_id,
            replace_existing=True,
            coalesce=True,  # after downtime run once, not once per missed interval
            max_instances=1,
            misfire_grace_time=300,
            next_run_time=utcnow(),  # also once at start-up
        )
    return scheduler


def start_background(app) -> threading.Thread:
    """The embedded profile: jobs run in threads of the web process, while it holds the
    scheduler lock (`leader.py`: a `flask jobs run` already running keeps them there)."""
    from . import leader

    thread = threading.Thread(
        target=leader.run,
        args=(app, lambda: configure(BackgroundScheduler(timezone="UTC"), app)),
        kwargs={"poll_s": app.config["SCHEDULER_POLL_S"], "stop": threading.Event()},
        name="scheduler-leader",
        daemon=True,
    )
    thread.start()
    return thread
