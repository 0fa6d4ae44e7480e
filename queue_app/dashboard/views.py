"""Thin views of the dashboard: parse, check access, read (or call one service), render.

| route | what |
| --- | --- |
| `GET /dashboard/` | the network overview: every branch the user sees |
| `GET /dashboard/state.json` | the same figures as JSON (+ the page's regions as HTML) |
| `GET /dashboard/<code>` | one branch: queues, counters, service times, the day so far |
| `GET /dashboard/<code>/state.json` | the same as JSON |
| `POST /dashboard/alerts/<id>/acknowledge` | a manager acknowledges an open alert (CSRF) |
"""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..auth.access import branch_access, forbidden, page_error, roles_required
from ..core.errors import DomainError
from ..core.types import utcnow
from ..extensions import db
from . import bp, present, scope
from . import queries as q

NOTE_MAX = 500
ERROR_TEXT = {
    "alert_cleared": _l("The alert has cleared already."),
    "already_acknowledged": _l("Someone acknowledged the alert already."),
    "note_too_long": _l("The note is too long."),
    "conflict": _l("The alert could not be acknowledged. Reload the page and try again."),
}


def _amber() -> float:
    return float(current_app.config.get("DASHBOARD_AMBER_SHARE", q.DEFAULT_AMBER_SHARE))


def _refresh_s() -> int:
    return int(current_app.config.get("DASHBOARD_REFRESH_S", 30))


def _user():
    return current_user._get_current_object()


def _overview():
    user = _user()
    branches = scope.visible_branches(user)
    if not branches:
        forbidden(_("Your account has no branch to show on the dashboard."))
    now = utcnow()
    rows = q.overview(db.session, branches, now, _amber())
    state = present.overview_state(rows, now, lambda b: scope.may_acknowledge(user, b))
    return branches, state


def _branch(code: str):
    user = _user()
    branch = scope.branch_by_code(code)
    if branch is None or not branch.active:
        abort(page_error(404, _("There is no such branch.")))
    if not scope.may_see(user, branch):
        forbidden(_("Your account has no access to branch %(code)s.", code=branch.code))
    now = utcnow()
    view = q.branch_view(db.session, branch, now, _amber())
    state = present.branch_state(view, now, scope.may_acknowledge(user, branch))
    return branch, state


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@roles_required(*scope.PAGE_ROLES)
def overview():
    branches, state = _overview()
    return render_template(
        "dashboard/overview.html",
        network=scope.sees_network(_user()),
        branch_count=len(branches),
        state_url=url_for("dashboard.overview_state"),
        live="*",
        refresh_s=_refresh_s(),
        amber_percent=round(100 * _amber()),
        **state["ctx"],
    )


@bp.get("/state.json")
@roles_required(*scope.PAGE_ROLES)
def overview_state():
    _branches, state = _overview()
    return _no_store(jsonify(state["json"]))


@bp.get("/<code>")
@roles_required(*scope.PAGE_ROLES)
def branch(code):
    branch, state = _branch(code)
    return render_template(
        "dashboard/branch.html",
        state_url=url_for("dashboard.branch_state", code=branch.code),
        live=branch.code,
        refresh_s=_refresh_s(),
        network=scope.sees_network(_user()),
        **state["ctx"],
    )


@bp.get("/<code>/state.json")
@roles_required(*scope.PAGE_ROLES)
def branch_state(code):
    _branch_obj, state = _branch(code)
    return _no_store(jsonify(state["json"]))


def _back(default: str) -> str:
    target = request.form.get("next", "")
    # only a dashboard page of this site, never an open redirect
    if target.startswith("/dashboard/") and "//" not in target and "\\" not in target:
        return target
    return default


@bp.post("/alerts/<int:alert_id>/acknowledge")
@roles_required(*scope.ACK_ROLES)
def acknowledge(alert_id):
    from ..alerts import services as alerts
    from ..alerts.models import Alert

    user = _user()
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        abort(page_error(404, _("There is no such alert.")))
    branch_access(alert.branch)
    if not scope.may_acknowledge(user, alert.branch):
        forbidden(
            _("Your account may not acknowledge alerts of branch %(code)s.", code=alert.branch.code)
        )
    back = _back(url_for("dashboard.branch", code=alert.branch.code))
    note = (request.form.get("note") or "").strip()[:NOTE_MAX] or None
    try:
        alerts.acknowledge(alert, user, utcnow(), note)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        flash(str(ERROR_TEXT.get(error.code, ERROR_TEXT["conflict"])), "error")
        return redirect(back, 303)
    flash(_("Alert acknowledged."), "success")
    return redirect(back, 303)
