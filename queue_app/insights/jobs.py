"""The scheduled job that keeps the busy-hours statistics up to date."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from ..branches.models import Branch
from ..extensions import db
from . import services

log = logging.getLogger(__name__)


def roll_up_waits(app, now: datetime) -> int:
    """Roll up every active branch's finished days (hourly: each branch's midnight comes at
    its own time). One branch is one unit of work; the rows written."""
    written = 0
    with app.app_context():
        branch_ids = db.session.scalars(select(Branch.id).where(Branch.active.is_(True))).all()
        db.session.rollback()
        for branch_id in branch_ids:
            try:
                branch = db.session.get(Branch, branch_id)
                count = services.roll_up_branch(
                    branch,
                    now=now,
                    lookback_days=app.config.get("BUSY_HOURS_WEEKS", 8) * 7,
                )
                db.session.commit()
                written += count
            except Exception:
                db.session.rollback()
                log.exception("rolling up waits failed for branch %s", branch_id)
    return written
