"""The scheduled job that keeps the busy-hours statistics up to date."""

from __future__ import annotations

import logging
from datetime import datetime

from ..jobs.units import per_active_branch
from . import services

log = logging.getLogger(__name__)


def roll_up_waits(app, now: datetime) -> int:
    """Roll up every active branch's finished days (hourly: each branch's midnight comes at
    its own time). One branch is one unit of work; the rows written."""
    weeks = app.config.get("BUSY_HOURS_WEEKS", 8)
    return per_active_branch(
        app,
        lambda branch: services.roll_up_branch(branch, now=now, lookback_days=weeks * 7),
        "rolling up waits",
    )
