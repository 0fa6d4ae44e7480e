"""The webhook events, heard inside the unit of work of the change they are about.

- `ticket.called` / `ticket.finished`: from the journey journal's entries (`journal.recorded`,
  sent just before the commit: the entries `called` and `recall`, and `finish`);
- `feedback.received`: `feedback.services.record_response`;
- `case.escalated`: `cases.services._escalate` (each level climbed);
- `alert.raised`: `alerts.services._raise` (a new alert episode).

Each writes its delivery rows (`services.record`) in the same transaction: a change that
commits has its deliveries, one that rolls back has none. The cost on a commit that carries
none of these: nothing (journal entries of other kinds are skipped before any query); on one
that does: none either while the process's list of active endpoints is fresh (one query when
it is read again, `services.active_endpoints`), then the rows if an endpoint wants the event.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..core.events import in_transaction_signal
from ..core.networks import parse_networks
from ..tickets.models import Ticket
from . import events, services

JOURNAL_EVENTS = {"called": "ticket.called", "recall": "ticket.called", "finish": "ticket.finished"}


def init_webhooks(app) -> None:
    # a wrong network fails at start-up, not at the first delivery
    parse_networks(app.config.get("WEBHOOK_ALLOWED_NETWORKS", ""))
    services.endpoint_cache(app)  # this app's list of active endpoints (each app its own)
    in_transaction_signal("journal.recorded").connect(on_journal_recorded)
    in_transaction_signal("feedback.received").connect(on_feedback_received)
    in_transaction_signal("case.escalated").connect(on_case_escalated)
    in_transaction_signal("alert.raised").connect(on_alert_raised)


def on_journal_recorded(_sender, *, session: Session, entries, **_payload) -> None:
    wanted = [e for e in entries if e.kind in JOURNAL_EVENTS and e.ticket_id is not None]
    if not wanted:
        return
    endpoints = services.active_endpoints(session)
    if not endpoints:
        return
    for entry in wanted:
        ticket = session.get(Ticket, entry.ticket_id)  # in the session: it was just changed
        if ticket is None:
            continue
        services.record(
            session,
            JOURNAL_EVENTS[entry.kind],
            branch_id=entry.branch_id,
            data=events.ticket_data(ticket, entry),
            now=entry.at,
            endpoints=endpoints,
        )


def on_feedback_received(_sender, *, response, session: Session, now=None, **_payload) -> None:
    services.record(
        session,
        "feedback.received",
        branch_id=response.branch_id,
        data=events.feedback_data(response),
        now=now or response.submitted_at,
    )


def on_case_escalated(_sender, *, case, change, session: Session, now, **_payload) -> None:
    services.record(
        session,
        "case.escalated",
        branch_id=case.branch_id,
        data=events.case_data(case, change),
        now=now,
    )


def on_alert_raised(_sender, *, alert, session: Session, now, **_payload) -> None:
    services.record(
        session, "alert.raised", branch_id=alert.branch_id, data=events.alert_data(alert), now=now
    )
