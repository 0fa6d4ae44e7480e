"""Running a job branch by branch."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from ..branches.models import Branch
from ..extensions import db

log = logging.getLogger(__name__)


def per_active_branch(app, work: Callable[[Branch], int], what: str) -> int:
    """`work(branch)` for every active branch, each branch one unit of work: committed after
    it, or rolled back and logged (`what` failed) without holding back the others. Returns
    the sum of what `work` returned."""
    total = 0
    with app.app_context():
        branch_ids = db.session.scalars(select(Branch.id).where(Branch.active.is_(True))).all()
        db.session.rollback()
        for branch_id in branch_ids:
            try:
                count = work(db.session.get(Branch, branch_id))
                db.session.commit()
                total += count
            except Exception:
                db.session.rollback()
                log.exception("%s failed for branch %s", what, branch_id)
                from ..observability.metrics import unit_failed

                unit_failed()  # the job run counts as partial (observability/metrics.py)
    return total
