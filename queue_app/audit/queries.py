"""Reading the audit log: filtered, newest first, a page at a time (the page and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from ..extensions import db
from .models import AuditEntry

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    actor: str | None = None  # a username (exact)
    branch_ids: tuple[int, ...] | None = None  # None: every branch (and entries without one)
    action: str | None = None  # a verb, or its prefix ending in "." ("ticket.")
    outcome: str | None = None
    since: date | None = None  # UTC days, both included
    until: date | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def entries(filters: Filters, *, page: int = 1, size: int = PAGE_SIZE):
    """(entries of the page, whether there is a next page)."""
    query = select(AuditEntry)
    if filters.actor:
        query = query.where(AuditEntry.actor_username == filters.actor)
    if filters.branch_ids is not None:
        query = query.where(AuditEntry.branch_id.in_(filters.branch_ids))
    if filters.action:
        if filters.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == filters.action)
    if filters.outcome:
        query = query.where(AuditEntry.outcome == filters.outcome)
    if filters.since:
        query = query.where(AuditEntry.at >= _day_start(filters.since))
    if filters.until:
        query = query.where(AuditEntry.at < _day_start(filters.until + timedelta(days=1)))
    query = (
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * size)
        .limit(size + 1)
    )
    rows = list(db.session.scalars(query))
    return rows[:size], len(rows) > size
