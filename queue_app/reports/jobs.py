"""The scheduled job that stores the reports of the periods just closed."""

from __future__ import annotations

import logging
from datetime import datetime

from ..jobs.units import per_active_branch
from . import snapshots

log = logging.getLogger(__name__)


def snapshot_closed_periods(app, now: datetime) -> int:
    """Store the report of the day, week and month each active branch closed last (hourly,
    after the end-of-day close: each branch's midnight comes at its own time; a period
    with a ticket still active waits for the next run). Idempotent. One branch is one
    unit of work; the reports stored."""
    return per_active_branch(
        app,
        lambda branch: snapshots.snapshot_branch(branch, now=now),
        "storing the closed reports",
    )
