"""Jobs of the outbox: plain functions of (app, now), as in `jobs/tasks.py`.

Suggested intervals: `deliver_outbox` every 30 seconds, `send_reminders` every 5 minutes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..extensions import db
from .reminders import queue_reminders
from .services import deliver_due

log = logging.getLogger(__name__)


def deliver_outbox(app, now: datetime) -> dict:
    """Send the due messages of the outbox (each claim and outcome is committed on its own)."""
    with app.app_context():
        try:
            counts = deliver_due(now=now, limit=int(app.config.get("OUTBOX_BATCH", 100)))
            db.session.commit()
            return counts
        except Exception:
            db.session.rollback()
            raise


def send_reminders(app, now: datetime) -> int:
    """Write the appointment reminders due at `now` to the outbox, in one unit of work."""
    with app.app_context():
        try:
            count = queue_reminders(now=now)
            db.session.commit()
            return count
        except Exception:
            db.session.rollback()
            raise
