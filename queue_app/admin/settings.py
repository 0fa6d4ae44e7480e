"""A branch's pre-arrival settings page (`/admin/branches/<code>/settings`): how much of each
service's counter time is bookable, the appointment check-in window, late arrivals and the
remote queue. Admins, and branch managers for their own branches.

The form carries the values it was shown with (`was_<field>`): only what the person changed
is sent to `branches.settings.update_pre_arrival_settings`, so two managers editing different
settings at the same time do not undo each other's change.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from ..accounts.models import User
from ..auth.access import branch_access, forbidden, roles_required
from ..branches import settings
from ..branches.models import Branch, LateArrival
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
    return shown


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
        )
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


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
    form = {key: value[:20] for key, value in request.form.items() if not key.startswith("was_")}
    if "remote_intake" not in form:
        form["remote_intake"] = "0"
    changes, services, errors = _parse(branch, request.form)
    if errors:
        return _page(branch, form=form, errors=errors, status=422)
    try:
        done = settings.update_pre_arrival_settings(
            branch, actor=user, now=utcnow(), services=services, **changes
        )
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
