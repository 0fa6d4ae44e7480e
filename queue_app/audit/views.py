"""`/admin/audit`: the audit log, read-only. Admins see every entry; branch managers the
entries of their branches. Filters: actor (username), branch (code), action (a verb or a
prefix like `ticket.`), outcome, from and to (UTC days); 50 entries a page."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..auth.access import roles_required
from ..branches.models import Branch
from ..extensions import db
from . import queries
from .models import OUTCOMES, VIAS

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")
MAX_PAGE = 10_000


def _branches():
    if current_user.role == Role.ADMIN:
        return list(db.session.scalars(select(Branch).order_by(Branch.code)))
    return list(current_user.branches)


def _day(raw: str, errors: list, message: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(message)
        return None


@bp.get("/")
@roles_required(Role.ADMIN, Role.BRANCH_MANAGER)
def index():
    args = request.args
    errors: list[str] = []
    form = {
        key: (args.get(key) or "").strip()[:80]
        for key in ("actor", "branch", "action", "outcome", "from", "to")
    }
    branches = _branches()
    by_code = {b.code: b for b in branches}
    if form["branch"]:
        branch = by_code.get(form["branch"])
        if branch is None:
            errors.append(_("There is no such branch among yours."))
            branch_ids: tuple[int, ...] | None = ()
        else:
            branch_ids = (branch.id,)
    elif current_user.role == Role.ADMIN:
        branch_ids = None
    else:
        branch_ids = tuple(b.id for b in branches)
    if form["outcome"] and form["outcome"] not in OUTCOMES:
        errors.append(_("Choose an outcome from the list."))
        form["outcome"] = ""
    since = _day(form["from"], errors, _("Write the first day as YYYY-MM-DD."))
    until = _day(form["to"], errors, _("Write the last day as YYYY-MM-DD."))
    page_raw = args.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and 0 < int(page_raw) <= MAX_PAGE else None
    if page is None:
        errors.append(_("The page number must be a whole number from 1."))
        page = 1
    rows, more = [], False
    if not errors:
        rows, more = queries.entries(
            queries.Filters(
                actor=form["actor"] or None,
                branch_ids=branch_ids,
                action=form["action"] or None,
                outcome=form["outcome"] or None,
                since=since,
                until=until,
            ),
            page=page,
        )
    codes = {b.id: b.code for b in db.session.scalars(select(Branch))}
    outcome_names = {"ok": _("done"), "refused": _("refused"), "failed": _("failed")}
    via_names = {
        "page": _("page"),
        "api": _("API"),
        "cli": _("command"),
        "socket": _("socket"),
        "job": _("job"),
    }
    query_args = {k: v for k, v in form.items() if v}
    response = current_app.make_response(
        render_template(
            "audit/index.html",
            rows=rows,
            form=form,
            branches=branches,
            codes=codes,
            errors=errors,
            page=page,
            more=more,
            query_args=query_args,
            outcomes=OUTCOMES,
            outcome_names=outcome_names,
            via_names=via_names,
            vias=VIAS,
        )
    )
    response.status_code = 400 if errors else 200
    response.headers["Cache-Control"] = "no-store"
    return response
