"""What each webhook event says: plain JSON, no personal data (no names, phone numbers,
e-mail addresses or free-text comments; a customer is at most an id).

Every payload is `{"event", "occurred_at", "branch", "data"}`; the envelope sent adds the
delivery's `id` (`services.body_of`). Times are ISO-8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _code(obj) -> str | None:
    return obj.code if obj is not None else None


def ticket_data(ticket, entry) -> dict:
    counter = ticket.counter
    return {
        "ticket": {
            "id": ticket.id,
            "visit_id": ticket.visit_id,
            "step": ticket.step,
            "number": ticket.number,
            "service": _code(ticket.service),
            "priority": str(ticket.priority.value),
            "source": str(ticket.source.value),
            "status": str(ticket.status.value),
            "business_day": ticket.business_day.isoformat(),
            "issued_at": iso(ticket.issued_at),
            "called_at": iso(ticket.last_called_at or ticket.called_at),
            "started_at": iso(ticket.started_at),
            "finished_at": iso(ticket.finished_at),
            "recall_count": ticket.recall_count,
            "outcome": ticket.outcome_code,
        },
        "counter": {"id": counter.id, "name": counter.name} if counter is not None else None,
        "staff_id": entry.actor_id,
        "journal_kind": entry.kind,
    }


def feedback_data(response) -> dict:
    return {
        "response": {
            "id": response.id,
            "ticket_id": response.ticket_id,
            "visit_id": response.visit_id,
            "service_id": response.service_id,
            "counter_id": response.counter_id,
            "staff_id": response.staff_id,
            "channel": str(getattr(response.channel, "value", response.channel)),
            "nps": response.nps,
            "csat": response.csat,
            "ces": response.ces,
            "reasons": list(response.reasons or ()),
            "has_comment": bool(response.comment),
            "submitted_at": iso(response.submitted_at),
            "business_day": response.business_day.isoformat(),
            "wait_s": response.wait_s,
            "quoted_wait_s": response.quoted_wait_s,
            "service_s": response.service_s,
            "transfers": response.transfers,
        }
    }


def case_data(case, change) -> dict:
    return {
        "case": {
            "id": case.id,
            "response_id": case.response_id,
            "ticket_id": case.ticket_id,
            "status": str(case.status.value),
            "level": case.level,
            "owner_id": case.owner_id,
            "opened_at": iso(case.opened_at),
            "due_at": iso(case.due_at),
        },
        "from_level": change.from_level,
        "to_level": change.to_level,
        "owner": change.owner,
        "owner_kept": change.owner_kept,
    }


def alert_data(alert) -> dict:
    return {
        "alert": {
            "id": alert.id,
            "rule_id": alert.rule_id,
            "subject": alert.subject,
            "metric": str(alert.metric.value),
            "service": _code(alert.service),
            "counter_id": alert.counter_id,
            "threshold": alert.threshold,
            "clear_at": alert.clear_at,
            "value": alert.value_raised,
            "status": str(alert.status.value),
            "level": alert.level,
            "owner_id": alert.owner_id,
            "raised_at": iso(alert.raised_at),
            "ack_due_at": iso(alert.ack_due_at),
        }
    }
