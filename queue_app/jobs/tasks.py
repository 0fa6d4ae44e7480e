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


def anonymise_personal_data(app, now: datetime) -> int:
    """The retention job (daily): anonymise what is older than `RETENTION_DAYS`, batch by
    batch, each batch one transaction (`customers/retention.py`). Returns the rows changed."""
    from ..audit.services import record as audit
    from ..customers import retention

    with app.app_context():
        try:
            days = int(app.config["RETENTION_DAYS"])
            counts = retention.run(
                now=now, days=days, batch_size=int(app.config["RETENTION_BATCH"])
            )
            changed = sum(counts.as_dict().values())
            if changed:
                audit(
                    "privacy.anonymise",
                    via="job",
                    actor_username="job:anonymise_personal_data",
                    details={"older_than_days": days, **counts.as_dict()},
                    now=now,
                )
                db.session.commit()
            return changed
        except Exception:
            db.session.rollback()
            raise


def purge_audit_log(app, now: datetime) -> int:
    """Daily: audit entries older than `AUDIT_RETENTION_DAYS` deleted (0: kept for ever)."""
    from ..audit.services import purge

    with app.app_context():
        days = int(app.config["AUDIT_RETENTION_DAYS"])
        if days <= 0:
            return 0
        try:
            return purge(now=now, days=days, batch_size=int(app.config["AUDIT_PURGE_BATCH"]))
        except Exception:
            db.session.rollback()
            raise
