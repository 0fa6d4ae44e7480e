"""Read-only questions about alerts, and the JSON-ready shape the dashboard and the API show."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.models import User
from . import content
from .models import OPEN_STATUSES, Alert, AlertRule, AlertStatus, AlertStep


def open_alerts(session: Session, branch_ids: list[int] | None) -> list[Alert]:
    """The raised and acknowledged alerts of those branches (None: every branch), the newest
    first."""
    return list_alerts(session, branch_ids, status="open")


def list_alerts(
    session: Session, branch_ids: list[int] | None, *, status: str = "open", limit: int = 200
) -> list[Alert]:
    """`status`: "open" (raised or acknowledged), "raised", "acknowledged", "cleared" or "all";
    the newest first, at most `limit`."""
    query = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)
    if branch_ids is not None:
        if not branch_ids:
            return []
        query = query.where(Alert.branch_id.in_(branch_ids))
    if status == "open":
        query = query.where(Alert.status.in_(OPEN_STATUSES))
    elif status != "all":
        query = query.where(Alert.status == AlertStatus(status))
    return list(session.scalars(query))


def alert_timeline(session: Session, alert_id: int) -> list[AlertStep]:
    """Every step of the alert, oldest first."""
    return list(
        session.scalars(
            select(AlertStep).where(AlertStep.alert_id == alert_id).order_by(AlertStep.id)
        )
    )


def rules_of(session: Session, branch_id: int) -> list[AlertRule]:
    return list(
        session.scalars(
            select(AlertRule)
            .where(AlertRule.branch_id == branch_id)
            .order_by(AlertRule.service_id.is_not(None), AlertRule.service_id, AlertRule.metric)
        )
    )


def _iso(alert: Alert, moment) -> str | None:
    return alert.branch.local(moment).isoformat() if moment is not None else None


def _user(session, user_id) -> dict | None:
    user = session.get(User, user_id) if user_id else None
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "name": user.display_name}


def alert_payload(alert: Alert, locale: str) -> dict:
    """The alert as JSON-ready data, with its human message in `locale`; times in ISO 8601
    with the branch's offset; values in the metric's unit (seconds, tickets, share 0..1)."""
    from sqlalchemy.orm import object_session

    session = object_session(alert)
    return {
        "id": alert.id,
        "rule_id": alert.rule_id,
        "branch_id": alert.branch_id,
        "branch": alert.branch.code,
        "branch_name": alert.branch.name,
        "service": alert.service.code if alert.service is not None else None,
        "service_name": alert.service.display_name(locale) if alert.service is not None else None,
        "counter_id": alert.counter_id,
        "counter": alert.counter.name if alert.counter is not None else None,
        "metric": alert.metric.value,
        "status": alert.status.value,
        "level": alert.level,
        "value": alert.value_raised,
        "current_value": alert.current_value,
        "peak_value": alert.peak_value,
        "threshold": alert.threshold,
        "clear_at": alert.clear_at,
        "owner": _user(session, alert.owner_id),
        "raised_at": _iso(alert, alert.raised_at),
        "ack_due_at": _iso(alert, alert.ack_due_at),
        "acknowledged_at": _iso(alert, alert.acknowledged_at),
        "acknowledged_by": _user(session, alert.acknowledged_by_id),
        "escalated_at": _iso(alert, alert.escalated_at),
        "cleared_at": _iso(alert, alert.cleared_at),
        "message": content.sentence(alert, locale),
    }


def step_payload(step: AlertStep, alert: Alert) -> dict:
    from sqlalchemy.orm import object_session

    return {
        "kind": step.kind.value,
        "at": _iso(alert, step.at),
        "level": step.level,
        "value": step.value,
        "actor": _user(object_session(step), step.actor_id),
        "note": step.note,
        "data": step.data or {},
    }
