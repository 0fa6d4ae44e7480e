"""The escalation sweep as a scheduled job: a plain function of (app, now), as in
`jobs/tasks.py`. Suggested interval: every 5 minutes."""

from __future__ import annotations

import logging
from datetime import datetime

from ..extensions import db
from .services import escalate_due

log = logging.getLogger(__name__)


def escalate_cases(app, now: datetime) -> int:
    """Escalate the cases due at `now`, in one unit of work; how many moved up."""
    with app.app_context():
        try:
            changes = escalate_due(now, limit=int(app.config.get("CASE_SWEEP_BATCH", 200)))
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        for change in changes:
            log.info(
                "case %s escalated to level %s (owner %s)",
                change.case_id,
                change.to_level,
                change.owner,
            )
        return len(changes)
