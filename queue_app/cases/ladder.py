"""The escalation ladder: configuration, not code (DESIGN.md, "Escalation ladder").

- `CASE_LEVEL_HOURS` (default `"48,24"`): how long each level lasts before a case without a
  logged contact climbs to the next one. `"48,24"` means level 1 lasts 48 hours, level 2
  24 hours, and level 3 is the last (a case there has no due time any more: everybody who
  can be told has been told). `"48,24,24"` would make four levels.
- `CASE_EXECUTIVES` (default: every active user with the role `executive`): the usernames,
  comma-separated, informed when a case reaches the last level.
- `CASE_WORKING_HOURS_CLOCK` (default false): false counts wall-clock hours; true counts only
  the hours the case's branch is open (its `opening_hours` in its own time zone), skipping
  weekends and other closed days, the branch's closures and its country's public holidays
  (the same calendar as bookings: `booking.services.closed_reason`).

`due_after(branch, start, hours, working_hours=...)` is the one clock both the opening of a
case and the sweep use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..accounts.models import Role, User
from ..booking.services import closed_reason
from ..branches.models import Branch
from ..extensions import db

DEFAULT_LEVEL_HOURS = "48,24"
# a branch that is never open (no opening hours at all) would make the working-hours clock
# search forever: after this many days without an open hour the wall clock is used
MAX_SEARCH_DAYS = 366


def _parse_hours(value) -> list[float]:
    if isinstance(value, list | tuple):
        parts = list(value)
    else:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
    hours = [float(p) for p in parts]
    if not hours or any(h <= 0 for h in hours):
        raise ValueError(f"CASE_LEVEL_HOURS must be positive hours, got {value!r}")
    return hours


def level_hours() -> list[float]:
    """The hours of each level but the last (`CASE_LEVEL_HOURS`)."""
    return _parse_hours(current_app.config.get("CASE_LEVEL_HOURS", DEFAULT_LEVEL_HOURS))


def last_level() -> int:
    return len(level_hours()) + 1


def hours_of(level: int) -> float | None:
    """How long `level` lasts; None for the last level (no further escalation)."""
    hours = level_hours()
    return hours[level - 1] if 1 <= level <= len(hours) else None


def working_hours_clock() -> bool:
    value = current_app.config.get("CASE_WORKING_HOURS_CLOCK", False)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def executives() -> list[User]:
    """The people informed at the last level (`CASE_EXECUTIVES`, else every active executive),
    in a stable order."""
    names = current_app.config.get("CASE_EXECUTIVES")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    query = select(User).where(User.active.is_(True)).order_by(User.id)
    if names:
        query = query.where(User.username.in_(list(names)))
    else:
        query = query.where(User.role == Role.EXECUTIVE)
    return list(db.session.scalars(query))


def due_after(branch: Branch, start: datetime, hours: float, *, working_hours: bool) -> datetime:
    """The moment `hours` after `start` on the ladder's clock (UTC).

    Wall clock: plain addition. Working-hours clock: only the branch's opening spans count, in
    its own time zone, on days it is open (no closure, no public holiday of its country); time
    before opening or after closing is skipped, so a case opened on Friday afternoon is due on a
    later working day, not on Sunday.
    """
    start = start.astimezone(UTC)
    remaining = timedelta(hours=hours)
    if not working_hours or remaining <= timedelta(0):
        return start + remaining
    tz = branch.tz
    local_start = start.astimezone(tz)
    day = local_start.date()
    for _ in range(MAX_SEARCH_DAYS):
        if closed_reason(branch, day) is None:
            for opens, closes in branch.hours_on(day):
                span_start = max(datetime.combine(day, opens, tzinfo=tz), local_start)
                span_end = datetime.combine(day, closes, tzinfo=tz)
                if span_end <= span_start:
                    continue
                available = span_end - span_start
                if remaining <= available:
                    return (span_start + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
    # never open within a year: the wall clock is the only honest answer left
    return start + timedelta(hours=hours)


def next_due(branch: Branch, level: int, start: datetime) -> datetime | None:
    """When a case that reached `level` at `start` is due (None at the last level)."""
    hours = hours_of(level)
    if hours is None:
        return None
    return due_after(branch, start, hours, working_hours=working_hours_clock())
