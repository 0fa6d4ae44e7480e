"""Rolling ticket history up into hourly wait statistics (`WaitStat`)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select

from ..branches.models import Branch
from ..extensions import db
from ..tickets.models import Source, Ticket
from .models import WaitStat

# how far back a branch without statistics is rolled up: the weeks the chart reads
DEFAULT_LOOKBACK_DAYS = 8 * 7


def roll_up_branch(branch: Branch, *, now: datetime, lookback_days=DEFAULT_LOOKBACK_DAYS) -> int:
    """Add the statistics of the branch's finished days not rolled up yet; the rows written.

    A day is finished once it is over in the branch's own time zone, so today is never
    rolled up. The days after the last one with statistics (at most `lookback_days` back)
    are read in one range query on `ix_tickets_branch_day` and bucketed in Python by the
    local hour of arrival: the local-time conversion needs the IANA zone database, which
    SQLite does not have. Flushes, never commits. Two runs at once for one branch: the second
    fails on the primary key and writes nothing (the caller rolls back).

    The wait is the first call time minus the arrival (the ticket issued) of the first step of
    a visit. Appointment check-ins are left out: they wait for their booked time by design,
    which says nothing about how busy the branch was.
    """
    today = branch.business_day(now)
    last = db.session.scalar(select(func.max(WaitStat.day)).where(WaitStat.branch_id == branch.id))
    start = today - timedelta(days=lookback_days)
    if last is not None and last >= start:
        start = last + timedelta(days=1)
    if start >= today:
        return 0
    rows = db.session.execute(
        select(Ticket.service_id, Ticket.issued_at, Ticket.called_at).where(
            Ticket.branch_id == branch.id,
            Ticket.business_day >= start,
            Ticket.business_day < today,
            Ticket.step == 1,
            Ticket.called_at.is_not(None),
            Ticket.source != Source.APPOINTMENT,
        )
    )
    tz = branch.tz
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for service_id, issued_at, called_at in rows:
        local = issued_at.astimezone(tz)
        wait = max(0, round((called_at - issued_at).total_seconds()))
        buckets[(service_id, local.date(), local.hour)].append(wait)
    stats = [
        {
            "branch_id": branch.id,
            "service_id": service_id,
            "day": day,
            "hour": hour,
            "weekday": day.weekday(),
            "samples": len(waits),
            "median_wait_s": round(statistics.median(waits)),
            "total_wait_s": sum(waits),
        }
        for (service_id, day, hour), waits in sorted(buckets.items())
    ]
    if stats:
        db.session.execute(insert(WaitStat), stats)
        db.session.flush()
    return len(stats)
