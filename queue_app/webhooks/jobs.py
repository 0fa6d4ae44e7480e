"""Job `deliver_webhooks` (every 30 s): a plain function of (app, now), as in `jobs/tasks.py`."""

from __future__ import annotations

from datetime import datetime

from ..extensions import db
from .services import deliver_due


def deliver_webhooks(app, now: datetime) -> dict:
    """Send the due webhook deliveries (each claim and outcome is committed on its own)."""
    with app.app_context():
        try:
            counts = deliver_due(now=now, limit=int(app.config.get("WEBHOOK_BATCH", 50)))
            db.session.commit()
            return counts
        except Exception:
            db.session.rollback()
            raise
