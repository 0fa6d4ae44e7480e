"""A branch's pre-arrival settings page (`/admin/branches/<code>/settings`): how much of each
service's counter time is bookable, the appointment check-in window, late arrivals and the
remote queue. Admins, and branch managers for their own branches.

The form carries the values it was shown with (`was_<field>`): only what the person changed
is sent to `branches.settings.update_pre_arrival_settings`, so two managers editing different
settings at the same time do not undo each other's change.

Each counter's plan (`branches/plans.py`) is a row of the plan table: per weekday the branch
opens, its hours (empty: the branch's) and its breaks as "12:00-12:30, 15:00-15:15". A counter
whose cells changed gets its whole plan written by `plans.set_counter_plan`, in the same
commit as the other settings: everything is checked before anything is written.
"""

from __future__ import annotations

import re

from babel.dates import get_day_names
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import select

from ..accounts.models import User
from ..auth.access import branch_access, forbidden, roles_required
from ..branches import plans, settings
from ..branches.models import WEEKDAYS, Branch, Counter, LateArrival
from ..core.types import utcnow
from ..extensions import db
from . import bp
from .views import MANAGERS

MAX_CHECK_IN_MIN = settings.MAX_CHECK_IN_S // 60
MINUTE_FIELDS = {"check_in_early_min": "check_in_early_s", "check_in_late_min": "check_in_late_s"}
NUMBER_FIELDS = ("check_in_early_min", "check_in_late_min", "remote_move_back_places",
                 "remote_move_back_limit")  # fmt: skip
CHOICE_FIELDS = ("late_arrival", "remote_intake")


def _service_field(code: str) -> str:
    return f"bookable_percent-{code}"


def _limits(name: str) -> tuple[int, int]:
    if name in MINUTE_FIELDS:
        return 0, MAX_CHECK_IN_MIN
    if name.startswith("bookable_percent-"):
        return settings.LIMITS["bookable_percent"]
    return settings.LIMITS[name]


def _current(branch: Branch) -> dict[str, str]:
    """The form's values as the page shows them (minutes, "1"/"0", percents), as strings."""
    values = settings.pre_arrival_settings(branch)
    shown = {name: str(round(values[column] / 60)) for name, column in MINUTE_FIELDS.items()}
    shown["remote_move_back_places"] = str(values["remote_move_back_places"])
    shown["remote_move_back_limit"] = str(values["remote_move_back_limit"])
    shown["late_arrival"] = values["late_arrival"]
    shown["remote_intake"] = "1" if values["remote_intake"] else "0"
    for code, service in values["services"].items():
        shown[_service_field(code)] = str(service["bookable_percent"])
    shown.update(_plan_shown(branch))
    return shown


# --- counter plans ----------------------------------------------------------------------------

PLAN_PARTS = ("from", "to", "breaks")
PLAN_MAX_CHARS = 120
_LOOSE_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_LOOSE_BREAK = re.compile(r"^(\d{1,2}[:.]\d{2})\s*[-\u2013\u2014]\s*(\d{1,2}[:.]\d{2})$")


def _plan_field(counter: Counter, day: str, part: str) -> str:
    return f"plan-{counter.id}-{day}-{part}"


def _plan_days(branch: Branch) -> list[str]:
    """The weekdays the branch opens: the plan table's columns."""
    return [day for day in WEEKDAYS if (branch.opening_hours or {}).get(day)]


def _plan_shown(branch: Branch) -> dict[str, str]:
    shown = {}
    days = _plan_days(branch)
    for counter in branch.counters:
        plan = plans.normalise_plan(counter.plan)
        for day in days:
            entry = plan.get(day, {})
            hours = entry.get("hours") or ["", ""]
            shown[_plan_field(counter, day, "from")] = hours[0]
            shown[_plan_field(counter, day, "to")] = hours[1]
            shown[_plan_field(counter, day, "breaks")] = ", ".join(
                f"{a}-{b}" for a, b in entry.get("breaks", [])
            )
    return shown


def _loose_time(raw: str) -> str | None:
    """ "8:30", "08.30" -> "08:30"; None for anything else."""
    match = _LOOSE_TIME.match(raw.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return f"{int(match[1]):02d}:{match[2]}"


_PLAN_PROBLEMS = {
    plans.NOT_A_TIME: lambda: _("Enter times as HH:MM, for example 08:30."),
    plans.START_BEFORE_END: lambda: _("A time span must start before it ends."),
    plans.OVERLAP: lambda: _("Breaks must not overlap."),
    plans.OUTSIDE_HOURS: lambda: _("Breaks must lie inside the counter's hours."),
    plans.TOO_MANY: lambda: ngettext(
        "At most %(num)d break a day.", "At most %(num)d breaks a day.", plans.MAX_BREAKS
    ),
}


def _plan_problem(problem: str) -> str:
    known = _PLAN_PROBLEMS.get(problem)
    return known() if known else _("Check this plan: it could not be read.")


def _parse_day(counter: Counter, day: str, form) -> tuple[dict, dict[str, str]]:
    """One cell of the plan table as a day of a plan, and its errors by form field."""
    errors: dict[str, str] = {}
    raw = {part: form.get(_plan_field(counter, day, part), "")[:PLAN_MAX_CHARS].strip()
           for part in PLAN_PARTS}  # fmt: skip
    entry: dict = {}
    if raw["from"] or raw["to"]:
        start, end = _loose_time(raw["from"]), _loose_time(raw["to"])
        if not raw["from"] or not raw["to"]:
            missing = "from" if not raw["from"] else "to"
            errors[_plan_field(counter, day, missing)] = _(
                "Enter both times, or neither for the branch's hours."
            )
        elif start is None or end is None:
            bad = "from" if start is None else "to"
            errors[_plan_field(counter, day, bad)] = _plan_problem(plans.NOT_A_TIME)
        else:
            entry["hours"] = [start, end]
    breaks = []
    for piece in re.split(r"[,;]", raw["breaks"]):
        piece = piece.strip()
        if not piece:
            continue
        match = _LOOSE_BREAK.match(piece)
        times = [_loose_time(match[1]), _loose_time(match[2])] if match else [None]
        if None in times:
            errors[_plan_field(counter, day, "breaks")] = _(
                "Enter breaks as 12:00-12:30, separated by commas."
            )
            break
        breaks.append(times)
    if breaks:
        entry["breaks"] = breaks
    return entry, errors


def _parse_plans(branch: Branch, form) -> tuple[dict[int, dict], dict[str, str]]:
    """The counters whose plan cells changed, each with its whole new plan (the days the
    table does not show are kept), and the errors by form field."""
    days = _plan_days(branch)
    changed: dict[int, dict] = {}
    errors: dict[str, str] = {}
    for counter in branch.counters:
        names = [_plan_field(counter, day, part) for day in days for part in PLAN_PARTS]
        if all(
            form.get(name, "")[:PLAN_MAX_CHARS].strip() == form.get(f"was_{name}", "").strip()
            for name in names
        ):
            continue
        plan = plans.normalise_plan(counter.plan)
        for day in days:
            entry, day_errors = _parse_day(counter, day, form)
            errors.update(day_errors)
            if entry:
                plan[day] = entry
            else:
                plan.pop(day, None)
        if any(name in errors for name in names):
            continue
        problems = plans.check_plan(plan)
        errors.update(_plan_form_errors(counter, problems))
        if not problems:
            changed[counter.id] = plan
    return changed, errors


def _plan_form_errors(counter: Counter, problems: dict[str, str]) -> dict[str, str]:
    """`InvalidPlan.problems` ("mon.hours", "mon.breaks") by form field."""
    errors = {}
    for path, problem in problems.items():
        day, _dot, part = path.partition(".")
        if day not in WEEKDAYS:
            day = _plan_days(counter.branch)[0] if _plan_days(counter.branch) else "mon"
        name = _plan_field(counter, day, "from" if part == "hours" else "breaks")
        errors[name] = _plan_problem(problem)
    return errors


def _plan_rows(branch: Branch) -> dict:
    """What the plan table shows: its days (key, name in the page's language, the branch's
    hours that day) and its counters."""
    names = get_day_names("wide", locale=get_locale() or "en")
    days = []
    for day in _plan_days(branch):
        spans = branch.opening_hours[day]
        days.append(
            {
                "key": day,
                "name": names[WEEKDAYS.index(day)],
                "opens": min(a for a, _b in spans)[:5],
                "closes": max(b for _a, b in spans)[:5],
            }
        )
    return {"days": days, "counters": branch.counters, "field": _plan_field}


def _number_error(name: str) -> str:
    low, high = _limits(name)
    return _("Enter a whole number from %(low)d to %(high)d.", low=low, high=high)


def _parse(branch: Branch, form) -> tuple[dict, dict, dict[str, str]]:
    """What the person changed, as service arguments (branch settings, services), and the
    errors by form field. A field whose value is what the page showed is left out."""
    changes: dict = {}
    services: dict = {}
    errors: dict[str, str] = {}
    names = [*NUMBER_FIELDS, *CHOICE_FIELDS, *(_service_field(s.code) for s in branch.services)]
    for name in names:
        raw = form.get(name, "0" if name == "remote_intake" else "").strip()[:20]
        if raw == form.get(f"was_{name}"):
            continue
        if name == "remote_intake":
            changes[name] = raw == "1"
        elif name == "late_arrival":
            if raw not in {m.value for m in LateArrival}:
                errors[name] = _("Choose what happens to a late arrival.")
            else:
                changes[name] = raw
        else:
            low, high = _limits(name)
            if not raw.isdigit() or not low <= int(raw) <= high:
                errors[name] = _number_error(name)
            elif name in MINUTE_FIELDS:
                changes[MINUTE_FIELDS[name]] = int(raw) * 60
            elif name.startswith("bookable_percent-"):
                services[name.removeprefix("bookable_percent-")] = {"bookable_percent": int(raw)}
            else:
                changes[name] = int(raw)
    return changes, services, errors


def _form_errors(problems: dict[str, str]) -> dict[str, str]:
    """The service's refusals (`InvalidSettings.fields`) by form field, in the page's language."""
    columns = {column: name for name, column in MINUTE_FIELDS.items()}
    errors = {}
    for path, _problem in problems.items():
        if path.startswith("services."):
            parts = path.split(".")
            name = _service_field(parts[1])
        else:
            name = columns.get(path, path)
        if name == "late_arrival":
            errors[name] = _("Choose what happens to a late arrival.")
        elif name == "remote_intake":
            errors[name] = _("Choose whether customers may join from their phone.")
        else:
            errors[name] = _number_error(name)
    return errors


def _page(branch: Branch, *, form=None, errors=None, status=200):
    shown = _current(branch)
    response = current_app.make_response(
        render_template(
            "admin/branch_settings.html",
            branch=branch,
            shown=shown,
            form={**shown, **(form or {})},
            errors=errors or {},
            shares=settings.bookable_shares(branch),
            limits={name: _limits(name) for name in NUMBER_FIELDS},
            max_percent=settings.LIMITS["bookable_percent"][1],
            service_field=_service_field,
            plan=_plan_rows(branch),
        )
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def counters_by_name(branch: Branch) -> dict[str, Counter]:
    return {c.name: c for c in branch.counters}


def _managed(code: str) -> tuple[Branch, User]:
    """The branch of the URL and the signed-in user, if they may change its settings (404 page
    for no such branch, 403 page for someone else's branch)."""
    branch = db.session.scalar(select(Branch).where(Branch.code == code[:64]))
    user = branch_access(branch)
    if not settings.can_manage_settings(user, branch):
        forbidden(_("You may not change the settings of branch %(code)s.", code=branch.code))
    return branch, user


@bp.get("/branches/<code>/settings")
@roles_required(*MANAGERS)
def branch_settings(code: str):
    branch, _user = _managed(code)
    return _page(branch)


@bp.post("/branches/<code>/settings")
@roles_required(*MANAGERS)
def save_branch_settings(code: str):
    branch, user = _managed(code)
    form = {
        key: value[: PLAN_MAX_CHARS if key.startswith("plan-") else 20]
        for key, value in request.form.items()
        if not key.startswith("was_")
    }
    if "remote_intake" not in form:
        form["remote_intake"] = "0"
    changes, services, errors = _parse(branch, request.form)
    new_plans, plan_errors = _parse_plans(branch, request.form)
    errors.update(plan_errors)
    if errors:
        return _page(branch, form=form, errors=errors, status=422)
    counters = {c.id: c for c in branch.counters}
    try:
        now = utcnow()
        done = settings.update_pre_arrival_settings(
            branch, actor=user, now=now, services=services, **changes
        )
        for counter_id, plan in new_plans.items():
            done += plans.set_counter_plan(counters[counter_id], plan, actor=user, now=now)
    except plans.InvalidPlan as error:
        db.session.rollback()
        errors = _plan_form_errors(counters_by_name(branch)[error.counter], error.problems)
        return _page(branch, form=form, errors=errors, status=422)
    except settings.InvalidSettings as error:
        db.session.rollback()
        return _page(branch, form=form, errors=_form_errors(error.fields), status=422)
    db.session.commit()
    if done:
        flash(
            ngettext(
                "Saved: %(num)d setting of %(branch)s changed.",
                "Saved: %(num)d settings of %(branch)s changed.",
                len(done),
                branch=branch.name,
            ),
            "success",
        )
    else:
        flash(_("Nothing changed: the settings are as they were."), "success")
    return redirect(url_for("admin.branch_settings", code=branch.code))
