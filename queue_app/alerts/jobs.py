"""Alerts as a scheduled job: a plain function of (app, now), as in `jobs/tasks.py`. Every
minute: the waits grow while nothing happens, so the rules are also evaluated on a clock."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from ..branches.models import Branch
from ..extensions import db
from .models import OPEN_STATUSES, Alert, AlertRule
from .services import escalate_due, evaluate_branch

log = logging.getLogger(__name__)


def evaluate_alerts(app, now: datetime) -> dict:
    """Evaluate every branch that has enabled rules or open alerts (one unit of work per
    branch: one branch failing does not keep the others from being evaluated), then escalate
    the alerts whose acknowledgement is due. Returns {"branches", "changed", "escalated"}."""
    counts = {"branches": 0, "changed": 0, "escalated": 0}
    with app.app_context():
        branch_ids = db.session.scalars(
            select(AlertRule.branch_id)
            .where(AlertRule.enabled.is_(True))
            .union(select(Alert.branch_id).where(Alert.status.in_(OPEN_STATUSES)))
        ).all()
        db.session.rollback()
        for branch_id in sorted(set(branch_ids)):
            try:
                branch = db.session.get(Branch, branch_id)
                changed = evaluate_branch(db.session, branch, now)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("evaluating the alerts of branch %s failed", branch_id)
                continue
            counts["branches"] += 1
            counts["changed"] += len(changed)
        try:
            done = escalate_due(
                db.session, now, limit=int(app.config.get("ALERTS_SWEEP_BATCH", 200))
            )
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        counts["escalated"] = sum(1 for d in done if d.to_level is not None)
        for d in done:
            log.info("alert %s escalated to level %s (owner %s)", d.alert_id, d.to_level, d.owner)
    return counts
