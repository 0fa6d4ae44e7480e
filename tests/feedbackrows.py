"""Writing feedback responses for the metrics tests: each on a finished visit step of its own,
on the business day asked, with the touchpoint and the wait facts given."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta

from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse
from queue_app.tickets.models import Ticket, TicketStatus, Visit

_number = {"n": 0}


def respond(
    branch: Branch,
    day: date | None = None,
    *,
    moment: datetime | None = None,
    nps: int | None = None,
    csat: int | None = None,
    ces: int | None = None,
    service=None,
    counter=None,
    staff=None,
    channel: FeedbackChannel = FeedbackChannel.TABLET,
    wait_s: int | None = 300,
    quoted_wait_s: int | None = None,
    at: time = time(10, 0),
) -> FeedbackResponse:
    """A response given for a visit step of `branch` on its local business day `day` (at
    local time `at`), or for a step that arrived at the aware `moment` (its day is then the
    branch's business day of that moment, as the feedback service writes it)."""
    service = service or branch.services[0]
    if moment is not None:
        arrived, day = moment, branch.business_day(moment)
    else:
        arrived = datetime.combine(day, at, tzinfo=branch.tz)
    called = arrived + timedelta(seconds=wait_s or 0)
    finished = called + timedelta(minutes=5)
    _number["n"] += 1
    visit = Visit(
        branch_id=branch.id, token=secrets.token_urlsafe(16), arrived_at=arrived, closed_at=finished
    )
    ticket = Ticket(
        visit=visit,
        branch_id=branch.id,
        service_id=service.id,
        business_day=day,
        number=f"{service.prefix}{_number['n']:03d}",
        status=TicketStatus.FINISHED,
        issued_at=arrived,
        queue_since=arrived,
        called_at=called,
        started_at=called,
        finished_at=finished,
        counter_id=counter.id if counter else None,
        staff_id=staff.id if staff else None,
        quoted_wait_s=quoted_wait_s,
    )
    db.session.add_all([visit, ticket])
    db.session.flush()
    response = FeedbackResponse(
        ticket_id=ticket.id,
        visit_id=visit.id,
        branch_id=branch.id,
        service_id=service.id,
        counter_id=counter.id if counter else None,
        staff_id=staff.id if staff else None,
        channel=channel,
        nps=nps,
        csat=csat,
        ces=ces,
        reasons=[],
        submitted_at=finished,
        business_day=day,
        wait_s=wait_s,
        quoted_wait_s=quoted_wait_s,
    )
    db.session.add(response)
    db.session.flush()
    return response
