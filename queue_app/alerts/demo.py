"""Demo alert thresholds: a few rules on every demo branch, so the dashboard has something to
raise. Written through `alerts.services.create_rule`; a branch that has rules already is left
alone (idempotent)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..branches.models import Branch
from ..extensions import db
from .models import AlertRule, Metric
from .services import create_rule

# metric, service code (None: the whole branch), raise_at, clear_at, options
DEMO_RULES = [
    (Metric.LONGEST_WAIT_S, "teller", 15 * 60, 10 * 60, {"clear_after_s": 120}),
    (Metric.LONGEST_WAIT_S, "cs", 25 * 60, 15 * 60, {"clear_after_s": 120}),
    (Metric.QUEUE_LENGTH, None, 25, 15, {}),
    (Metric.EWT_S, None, 30 * 60, 20 * 60, {"clear_after_s": 300}),
    (Metric.IDLE_COUNTER_S, None, 5 * 60, 60, {"ack_within_s": 300}),
    (Metric.NO_SHOW_RATE, None, 0.25, 0.15, {"window_s": 7200, "min_count": 12}),
]


def seed_demo_rules(now: datetime) -> int:
    """The demo rules on every active branch without rules; how many were written."""
    written = 0
    branches = db.session.scalars(
        select(Branch).where(Branch.active.is_(True)).order_by(Branch.code)
    ).all()
    for branch in branches:
        if db.session.scalar(select(AlertRule.id).where(AlertRule.branch_id == branch.id)):
            continue
        services = {s.code: s for s in branch.services}
        for metric, code, raise_at, clear_at, options in DEMO_RULES:
            if code is not None and code not in services:
                continue
            create_rule(
                db.session,
                branch,
                metric=metric,
                service=services.get(code) if code else None,
                raise_at=raise_at,
                clear_at=clear_at,
                now=now,
                **options,
            )
            written += 1
    return written
