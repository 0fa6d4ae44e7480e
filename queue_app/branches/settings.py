"""A branch's pre-arrival settings, changed by its managers and admins.

What a branch manager may set without touching the database:

- per service: `bookable_percent`, the share of the counters serving it that is offered for
  booking per slot (the rest of the counters' time is kept for walk-ins). The slot capacity
  (`booking.services.capacity`) is read from it at every booking, so a change applies to the
  next booking at once. Places already booked stay: lowering the share never cancels a
  booking, a slot that holds more than its new capacity just shows no place free.
- per branch: the appointment check-in window (`check_in_early_s`, `check_in_late_s`), what
  happens to a later arrival (`late_arrival`), remote intake on or off (`remote_intake`), and
  how far (`remote_move_back_places`) and how often (`remote_move_back_limit`) an unconfirmed
  remote ticket goes back in its queue.

Every change locks the branch row first (`FOR UPDATE` on PostgreSQL; SQLite serialises
writers anyway), reads the current values under the lock, validates everything before it
changes anything (one `InvalidSettings` naming every bad field), and returns what changed.
Who changed what is logged (logger `queue_app.branches.settings`) once the change is
committed: there is no audit table yet. Services flush, never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..accounts.models import Role, User
from ..booking.services import capacity
from ..core.errors import InvalidInput, NotAllowed
from ..core.events import publish, signal
from ..extensions import db
from .models import Branch, Counter, CounterService, LateArrival, Service

log = logging.getLogger(__name__)

EVENT = "branch_settings_changed"

# the limits of each setting (both ends included); the page and the API show them
MAX_CHECK_IN_S = 4 * 3600  # check-in opens at most 4 hours before a slot / closes 4 h after
LIMITS: dict[str, tuple[int, int]] = {
    "check_in_early_s": (0, MAX_CHECK_IN_S),
    "check_in_late_s": (0, MAX_CHECK_IN_S),
    "remote_move_back_places": (1, 50),
    "remote_move_back_limit": (0, 10),
    "bookable_percent": (0, 100),
}
INT_FIELDS = ("check_in_early_s", "check_in_late_s", "remote_move_back_places",
              "remote_move_back_limit")  # fmt: skip
BRANCH_FIELDS = (*INT_FIELDS, "late_arrival", "remote_intake")
SERVICE_FIELDS = ("bookable_percent",)


class InvalidSettings(InvalidInput):
    """Some settings are out of range or of the wrong kind. `fields` maps each bad field
    (`services.<code>.bookable_percent` for a service's) to what is wrong with it."""

    code = "invalid_settings"

    def __init__(self, fields: dict[str, str]):
        self.fields = dict(fields)
        summary = "; ".join(f"{name}: {problem}" for name, problem in self.fields.items())
        super().__init__(f"invalid settings: {summary}")


@dataclass(frozen=True, slots=True)
class Change:
    """One setting that changed: `service` is the service's code, None for the branch's own."""

    field: str
    old: Any
    new: Any
    service: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --- who may ---------------------------------------------------------------------------------


def can_manage_settings(actor: User | None, branch: Branch) -> bool:
    """Admins, and the branch managers of `branch`."""
    return (
        actor is not None
        and actor.active
        and (
            actor.role == Role.ADMIN
            or (actor.role == Role.BRANCH_MANAGER and actor.belongs_to(branch))
        )
    )


def _require(actor: User, branch: Branch) -> None:
    if not can_manage_settings(actor, branch):
        raise NotAllowed(f"{actor.username} may not change the settings of {branch.code}")


# --- reading ---------------------------------------------------------------------------------


def pre_arrival_settings(branch: Branch) -> dict:
    """The branch's settings as plain values (seconds as stored) with its services'."""
    values = {name: getattr(branch, name) for name in BRANCH_FIELDS}
    values["late_arrival"] = LateArrival(values["late_arrival"]).value
    values["services"] = {
        s.code: {name: getattr(s, name) for name in SERVICE_FIELDS} for s in branch.services
    }
    return values


@dataclass(frozen=True, slots=True)
class BookableShare:
    """A service's bookable share and what it makes per slot (`booking.services.capacity`)."""

    service: Service
    counters: int  # counters of the branch that serve the service
    slot_capacity: int


def bookable_shares(branch: Branch) -> list[BookableShare]:
    """Each service of the branch (in its order) with its serving counters and slot capacity."""
    counts = dict(
        db.session.execute(
            select(CounterService.service_id, func.count())
            .join(Counter, Counter.id == CounterService.counter_id)
            .where(Counter.branch_id == branch.id)
            .group_by(CounterService.service_id)
        ).all()
    )
    return [BookableShare(s, counts.get(s.id, 0), capacity(s)) for s in branch.services]


# --- validating ------------------------------------------------------------------------------


def _check_int(name: str, value, limit_name: str | None = None) -> str | None:
    low, high = LIMITS[limit_name or name]
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if not low <= value <= high:
        return f"must be from {low} to {high}"
    return None


def _check_branch_value(name: str, value) -> str | None:
    if name in INT_FIELDS:
        return _check_int(name, value)
    if name == "remote_intake":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "late_arrival":
        allowed = [m.value for m in LateArrival]
        return None if value in allowed else "must be one of " + ", ".join(allowed)
    return "is not a setting"


def _lock(branch: Branch) -> Branch:
    """Lock the branch row and read its current values (and its services') under the lock."""
    locked = db.session.scalar(
        select(Branch)
        .where(Branch.id == branch.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    db.session.scalars(
        select(Service)
        .where(Service.branch_id == branch.id)
        .execution_options(populate_existing=True)
    ).all()
    return locked


def _finish(branch: Branch, actor: User, now: datetime, changes: list[Change]) -> list[Change]:
    if changes:
        db.session.flush()
        publish(
            db.session,
            EVENT,
            branch=branch.code,
            actor=actor.username,
            at=now.isoformat(),
            changes=[c.as_dict() for c in changes],
        )
    return changes


# --- changing --------------------------------------------------------------------------------


def update_pre_arrival_settings(
    branch: Branch,
    *,
    actor: User,
    now: datetime,
    services: Mapping[str, Mapping[str, Any]] | None = None,
    **changes: Any,
) -> list[Change]:
    """Change any of the branch's pre-arrival settings (`BRANCH_FIELDS`, seconds for the
    check-in window) and its services' (`services={"teller": {"bookable_percent": 40}}`).

    All or nothing: every value is checked first, `InvalidSettings` (422) names each bad one.
    `NotAllowed` (403) unless `actor` is an admin or a manager of the branch. Returns the
    settings that really changed (a value equal to the current one is no change)."""
    _require(actor, branch)
    branch = _lock(branch)
    problems: dict[str, str] = {}
    for name, value in changes.items():
        problem = _check_branch_value(name, value)
        if problem:
            problems[name] = problem
    by_code = {s.code: s for s in branch.services}
    for code, values in (services or {}).items():
        if code not in by_code:
            problems[f"services.{code}"] = "is not a service of this branch"
            continue
        if not isinstance(values, Mapping):
            problems[f"services.{code}"] = "must be an object"
            continue
        for name, value in values.items():
            if name not in SERVICE_FIELDS:
                problems[f"services.{code}.{name}"] = "is not a setting"
                continue
            problem = _check_int(name, value)
            if problem:
                problems[f"services.{code}.{name}"] = problem
    if problems:
        raise InvalidSettings(problems)

    done: list[Change] = []
    for name, value in changes.items():
        if name == "late_arrival":
            value = LateArrival(value)
        old = getattr(branch, name)
        if old != value:
            setattr(branch, name, value)
            new = value.value if isinstance(value, LateArrival) else value
            old = old.value if isinstance(old, LateArrival) else old
            done.append(Change(name, old, new))
    for code, values in (services or {}).items():
        service = by_code[code]
        for name, value in values.items():
            old = getattr(service, name)
            if old != value:
                setattr(service, name, value)
                done.append(Change(name, old, value, service=code))
    return _finish(branch, actor, now, done)


def set_bookable_share(service: Service, percent: int, *, actor: User, now: datetime) -> Change:
    """Offer `percent` (0-100) of the serving counters' time per slot for booking; the rest is
    kept for walk-ins. Returns the change (`old == new` when nothing changed)."""
    branch = service.branch
    changes = update_pre_arrival_settings(
        branch, actor=actor, now=now, services={service.code: {"bookable_percent": percent}}
    )
    return changes[0] if changes else Change("bookable_percent", percent, percent, service.code)


# --- the record of who changed what ----------------------------------------------------------


def _log_changes(_sender, *, branch, actor, at, changes):
    for change in changes:
        where = f"service {change['service']} " if change["service"] else ""
        log.info(
            "settings of %s changed by %s at %s: %s%s %r -> %r",
            branch,
            actor,
            at,
            where,
            change["field"],
            change["old"],
            change["new"],
        )


signal(EVENT).connect(_log_changes)
