"""A counter's plan: its staffed hours and planned breaks per weekday.

`Counter.plan` is stored like `Branch.opening_hours`: keyed by weekday (`"mon"` .. `"sun"`),
local times `"HH:MM"` in the branch's own time zone:

    {"mon": {"hours": ["08:30", "14:00"], "breaks": [["12:00", "12:30"]]}, ...}

A day without `"hours"` is staffed during the branch's opening hours; a day left out (or no
plan at all) has no breaks either. A counter takes no new ticket in its planned absences
(`counter_absences`): its breaks, and before its own opening and after its own closing where
its hours are narrower than the branch's. The live wait estimate (`waits/live.py`) reads them.

`set_counter_plan` is the only code that changes a plan: it checks the whole plan first
(`InvalidPlan` names every bad part), locks the branch row like the other settings changes,
and publishes the same `branch_settings_changed` event (who changed what is logged after
the commit). It flushes, never commits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from itertools import pairwise

from sqlalchemy import select

from ..accounts.models import User
from ..extensions import db
from . import settings
from .models import WEEKDAYS, Branch, Counter

log = logging.getLogger(__name__)
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_BREAKS = 6  # per counter and day

# what can be wrong with a part of a plan (the admin page words them in its language)
NOT_A_PAIR = "must be a pair of times"
NOT_A_TIME = "times must be HH:MM (00:00-23:59)"
START_BEFORE_END = "must start before it ends"
OVERLAP = "must not overlap"
OUTSIDE_HOURS = "must lie inside the hours"
TOO_MANY = f"at most {MAX_BREAKS} breaks a day"


class InvalidPlan(settings.InvalidSettings):
    """A counter's plan is not valid. `problems` maps each bad part (`"mon.breaks"`,
    `"tue.hours"`, `"plan"`) to what is wrong with it; `fields` (as every `InvalidSettings`)
    prefixes them with `counters.<name>.plan.`."""

    def __init__(self, counter: str, problems: dict[str, str]):
        self.counter = counter
        self.problems = dict(problems)
        super().__init__({f"counters.{counter}.plan.{k}": v for k, v in self.problems.items()})


# --- reading and checking ---------------------------------------------------------------------


def _time(value) -> time | None:
    if not isinstance(value, str) or not _TIME.match(value):
        return None
    return time.fromisoformat(value)


def _span(value) -> tuple[time, time] | str:
    """A `["HH:MM", "HH:MM"]` pair as times, or what is wrong with it."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return NOT_A_PAIR
    a, b = _time(value[0]), _time(value[1])
    if a is None or b is None:
        return NOT_A_TIME
    if not a < b:
        return START_BEFORE_END
    return a, b


def check_plan(plan) -> dict[str, str]:
    """What is wrong with a plan, by part (empty: nothing). `None` and `{}` are valid."""
    if plan is None:
        return {}
    if not isinstance(plan, Mapping):
        return {"plan": "must be an object keyed by weekday (mon .. sun)"}
    problems: dict[str, str] = {}
    for day, value in plan.items():
        if day not in WEEKDAYS:
            problems[str(day)[:10]] = "is not a weekday (mon .. sun)"
            continue
        if value is None:
            continue
        if not isinstance(value, Mapping):
            problems[day] = "must be an object with hours and breaks"
            continue
        unknown = sorted(set(value) - {"hours", "breaks"})
        if unknown:
            problems[f"{day}.{str(unknown[0])[:20]}"] = "is not part of a plan"
        hours = None
        if value.get("hours") is not None:
            hours = _span(value["hours"])
            if isinstance(hours, str):
                problems[f"{day}.hours"] = hours
                hours = None
        raw_breaks = value.get("breaks") or []
        if not isinstance(raw_breaks, list | tuple):
            problems[f"{day}.breaks"] = "must be a list of pairs of times"
            continue
        if len(raw_breaks) > MAX_BREAKS:
            problems[f"{day}.breaks"] = TOO_MANY
            continue
        spans = []
        for raw in raw_breaks:
            span = _span(raw)
            if isinstance(span, str):
                problems[f"{day}.breaks"] = span
                break
            spans.append(span)
        else:
            spans.sort()
            if any(b[0] < a[1] for a, b in pairwise(spans)):
                problems[f"{day}.breaks"] = OVERLAP
            elif hours is not None and any(a < hours[0] or b > hours[1] for a, b in spans):
                problems[f"{day}.breaks"] = OUTSIDE_HOURS
    return problems


def normalise_plan(plan) -> dict:
    """A valid plan in its stored form: days in week order, breaks sorted, empty days left
    out (`{}`: no plan)."""
    out: dict = {}
    for day in WEEKDAYS:
        value = (plan or {}).get(day) or {}
        hours = value.get("hours")
        breaks = sorted([a, b] for a, b in value.get("breaks") or [])
        entry: dict = {}
        if hours is not None:
            entry["hours"] = [hours[0], hours[1]]
        if breaks:
            entry["breaks"] = breaks
        if entry:
            out[day] = entry
    return out


def day_plan(counter: Counter, day: date) -> tuple[tuple[time, time] | None, list]:
    """The counter's own hours on `day` (None: the branch's) and its breaks, as local times."""
    plan = counter.plan or {}
    if check_plan(plan):  # written around `set_counter_plan`: not trusted, read as no plan
        log.warning("counter %s has an invalid plan: ignored", counter.id)
        return None, []
    value = plan.get(WEEKDAYS[day.weekday()]) or {}
    hours = value.get("hours")
    own = (time.fromisoformat(hours[0]), time.fromisoformat(hours[1])) if hours else None
    breaks = [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in value.get("breaks") or []]
    return own, sorted(breaks)


def _at(branch: Branch, day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=branch.tz)


def branch_span(branch: Branch, day: date) -> tuple[datetime, datetime] | None:
    """From the branch's first opening to its last closing on `day` (None: closed)."""
    spans = branch.hours_on(day)
    if not spans:
        return None
    return _at(branch, day, min(a for a, _ in spans)), _at(branch, day, max(b for _, b in spans))


def staffed_until(counter: Counter, day: date) -> datetime | None:
    """When the counter's planned day ends (its own closing, never after the branch's; None:
    the branch is closed that day)."""
    span = branch_span(counter.branch, day)
    if span is None:
        return None
    own, _breaks = day_plan(counter, day)
    if own is None:
        return span[1]
    return min(span[1], _at(counter.branch, day, own[1]))


def counter_absences(counter: Counter, day: date) -> list[tuple[datetime, datetime]]:
    """The counter's planned absences on `day`, as aware datetimes in order: its breaks, and
    from the branch's opening to its own, and from its own closing to the branch's, where its
    hours are narrower. Nothing on a day the branch is closed."""
    branch = counter.branch
    span = branch_span(branch, day)
    if span is None:
        return []
    own, breaks = day_plan(counter, day)
    out = [(_at(branch, day, a), _at(branch, day, b)) for a, b in breaks]
    if own is not None:
        start, end = _at(branch, day, own[0]), _at(branch, day, own[1])
        if start > span[0]:
            out.append((span[0], min(start, span[1])))
        if end < span[1]:
            out.append((max(end, span[0]), span[1]))
    return sorted(out)


# --- changing ---------------------------------------------------------------------------------


def set_counter_plan(
    counter: Counter, plan, *, actor: User, now: datetime
) -> list[settings.Change]:
    """Give the counter this plan (None or `{}`: none, the branch's hours without breaks).

    All or nothing: the whole plan is checked first (`InvalidPlan`, 422, names every bad
    part). `NotAllowed` (403) unless `actor` is an admin or a manager of the counter's branch.
    Returns the change (`counters.<name>.plan`, old and new plan), or nothing when the plan
    is the one it had."""
    branch = counter.branch
    settings._require(actor, branch)
    problems = check_plan(plan)
    if problems:
        raise InvalidPlan(counter.name, problems)
    branch = settings._lock(branch)
    counter = db.session.scalar(
        select(Counter).where(Counter.id == counter.id).execution_options(populate_existing=True)
    )
    old = normalise_plan(counter.plan)
    new = normalise_plan(plan)
    if old == new:
        return []
    counter.plan = new
    change = settings.Change(f"counters.{counter.name}.plan", old, new)
    return settings._finish(branch, actor, now, [change])
