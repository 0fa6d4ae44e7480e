"""The jobs themselves: plain functions of (app, now), callable from tests with any `now`."""

from __future__ import annotations

import logging
from datetime import datetime

from ..booking import services as booking
from ..extensions import db
from ..tickets import services as tickets
from .units import per_active_branch

log = logging.getLogger(__name__)


def close_past_business_days(app, now: datetime) -> int:
    """Close the tickets left active from earlier business days, branch by branch.

    One branch is one unit of work: a failure in one branch is logged and rolled back without
    holding back the others.
    """
    return per_active_branch(
        app,
        lambda branch: tickets.close_past_business_days(branch, now=now),
        "closing past business days",
    )


def expire_appointment_holds(app, now: datetime) -> int:
    """Mark the lapsed holds on slots expired (they stopped counting at their expiry already:
    this keeps the table honest for the dashboards)."""
    with app.app_context():
        try:
            count = booking.expire_holds(now=now)
            db.session.commit()
            return count
        except Exception:
            db.session.rollback()
            raise
