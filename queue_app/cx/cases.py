"""The CX team's case pages: `/cx/cases` (the work list: filters, level badges, the most
urgent first, overdue highlighted) and `/cx/cases/<id>` (the response, the visit's facts, the
customer's contact, the timeline of steps, and the forms that work the case). Thin views over
`cases/services.py` and `cases/queries.py`; for the CX roles, a branch manager for their own
branches only."""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import CX_ROLES, User
from ..auth.access import branch_access, forbidden, page_error, roles_required
from ..branches.models import Branch
from ..cases import ladder, queries
from ..cases import services as cases
from ..cases.models import Case, CaseStatus, RootCause, StepKind
from ..core.errors import DomainError
from ..core.types import utcnow
from ..customers import privacy
from ..extensions import db
from ..feedback.questions import reason_label
from . import bp

STATUS_NAMES = {
    "open": _l("Open"),
    "acknowledged": _l("Acknowledged"),
    "resolved": _l("Resolved"),
}
ROOT_CAUSE_NAMES = {
    "policy": _l("Policy"),
    "people": _l("People"),
    "process": _l("Process"),
    "product": _l("Product"),
    "place": _l("Place"),
}
CHANNEL_NAMES = {
    "phone": _l("Phone call"),
    "whatsapp": _l("WhatsApp"),
    "sms": _l("SMS"),
    "email": _l("E-mail"),
    "visit": _l("Visit"),
}
STEP_NAMES = {
    StepKind.OPENED: _l("Case opened"),
    StepKind.ACKNOWLEDGED: _l("Acknowledged"),
    StepKind.CONTACT: _l("Contact attempt"),
    StepKind.NOTE: _l("Note"),
    StepKind.REASSIGNED: _l("Reassigned"),
    StepKind.ESCALATED: _l("Escalated"),
    StepKind.RESOLVED: _l("Resolved"),
    StepKind.RECOVERY_SENT: _l("Recovery survey sent"),
    StepKind.RECOVERY_ANSWERED: _l("Recovery survey answered"),
    StepKind.REOPENED: _l("Reopened"),
}

ERROR_TEXT = {
    "no_contact": _l("Log a contact attempt with the customer before resolving the case."),
    "missing_fields": _l("A root cause, a reason code and the action taken are all required."),
    "invalid_root_cause": _l("Choose a root cause."),
    "invalid_reason_code": _l("Choose a reason code."),
    "case_resolved": _l("The case is resolved already."),
    "already_acknowledged": _l("The case is acknowledged already."),
    "invalid_channel": _l("Choose how you contacted the customer."),
    "empty_note": _l("Write the note first."),
    "invalid_assignee": _l("Choose a person who works on cases here, or name a department."),
    "same_owner": _l("The case has that owner already."),
}


def reason_name(code: str | None) -> str:
    if code == "other":
        return _("Other")
    return reason_label(code) if code else "—"


def trigger_name(trigger: str) -> str:
    """A trigger as people read it: "NPS ≤ 6", "Reason: Waiting time", "Word: kecewa"."""
    kind, _sep, rest = trigger.partition(":")
    if "<=" in trigger and not _sep:
        name, limit = trigger.split("<=", 1)
        return f"{name.upper()} ≤ {limit}"
    if kind == "reason":
        return _("Reason: %(reason)s", reason=reason_name(rest))
    if kind == "keyword":
        return _("Word: %(word)s", word=rest)
    return trigger


def when(case: Case, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return format_datetime(case.branch.local(moment).replace(tzinfo=None), "short")


def due_text(case: Case, now: datetime) -> tuple[str, bool]:
    """("due in 5 hours" | "overdue by 2 hours" | "", overdue?)"""
    if case.due_at is None:
        return "", False
    delta = case.due_at - now
    if delta.total_seconds() >= 0:
        return _("due in %(time)s", time=format_timedelta(delta, threshold=1.1)), False
    return _("overdue by %(time)s", time=format_timedelta(-delta, threshold=1.1)), True


def _level_options() -> list[int]:
    return list(range(1, ladder.last_level() + 1))


def _selected_branch(code: str | None) -> Branch | None:
    if not code:
        return None
    branch = db.session.scalar(select(Branch).where(Branch.code == code))
    if queries.sees_every_branch(current_user) and branch is not None and branch.active:
        return branch
    branch_access(branch)  # 404 or 403 page for a manager
    return branch


@bp.get("/cases")
@roles_required(*CX_ROLES)
def cases_list():
    user = current_user._get_current_object()
    status = request.args.get("status", "active")
    if status not in {"active", "all", *STATUS_NAMES}:
        status = "active"
    level = request.args.get("level", "")
    level_value = int(level) if level.isdigit() and int(level) in _level_options() else None
    branch = _selected_branch(request.args.get("branch") or None)
    now = utcnow()
    items = queries.list_cases(
        user,
        status=status if status in STATUS_NAMES else None,
        branch=branch,
        level=level_value,
    )
    if status == "active":
        items = [c for c in items if c.status != CaseStatus.RESOLVED]
    owners = queries.users_by_id(c.owner_id for c in items)
    facts = {c.id: queries.facts_of(c) for c in items}
    rows = []
    for c in items:
        text, overdue = due_text(c, now)
        rows.append(
            {
                "case": c,
                "owner": owners.get(c.owner_id),
                "ticket": facts[c.id].ticket,
                "response": facts[c.id].response,
                "due": text,
                "overdue": overdue,
                "opened": when(c, c.opened_at),
                "triggers": [trigger_name(t) for t in c.triggers or ()],
            }
        )
    return render_template(
        "cx/cases.html",
        rows=rows,
        status=status,
        level=level_value,
        branch=branch,
        branches=queries.visible_branches(user),
        levels=_level_options(),
        status_names=STATUS_NAMES,
        overdue_count=sum(1 for r in rows if r["overdue"]),
    )


def _case(case_id: int) -> Case:
    case = db.session.get(Case, case_id)
    if case is None:
        abort(page_error(404, _("There is no such case.")))
    if not queries.may_see(current_user, case):
        forbidden(_("Your account has no access to branch %(code)s.", code=case.branch.code))
    return case


def _detail(case: Case, *, error: str | None = None, status: int = 200, form=None):
    now = utcnow()
    facts = queries.facts_of(case)
    actors = queries.users_by_id(s.actor_id for s in case.steps)
    text, overdue = due_text(case, now)
    response = facts.response
    wait = response.wait_s if response else None
    quoted = response.quoted_wait_s if response else None
    page = render_template(
        "cx/case.html",
        case=case,
        facts=facts,
        # the customer's contact as this person may see it (`customers/privacy.py`)
        person=privacy.contact_view(current_user, privacy.CASE, facts.customer),
        actors=actors,
        due=text,
        overdue=overdue,
        when=lambda moment: when(case, moment),
        wait_min=round(wait / 60) if wait is not None else None,
        quoted_min=round(quoted / 60) if quoted is not None else None,
        triggers=[trigger_name(t) for t in case.triggers or ()],
        reasons=[reason_name(r) for r in (response.reasons if response else ()) or ()],
        status_names=STATUS_NAMES,
        step_names=STEP_NAMES,
        channel_names=CHANNEL_NAMES,
        root_causes=[(r.value, ROOT_CAUSE_NAMES[r.value]) for r in RootCause],
        root_cause_names=ROOT_CAUSE_NAMES,
        reason_codes=[(c, reason_name(c)) for c in cases.CASE_REASON_CODES],
        reason_name=reason_name,
        channels=[(c, CHANNEL_NAMES[c]) for c in cases.CONTACT_CHANNELS],
        assignable=queries.assignable_users(case),
        has_contact=any(s.kind == StepKind.CONTACT for s in case.steps),
        error=error,
        form=form or {},
    )
    return page, status


@bp.get("/cases/<int:case_id>")
@roles_required(*CX_ROLES)
def case_detail(case_id):
    return _detail(_case(case_id))


def _act(case_id: int, work, done_message):
    """Run one piece of case work from a form: commit and go back to the case, or show the
    page again with the refusal (its 4xx status) and what was typed."""
    case = _case(case_id)
    user = current_user._get_current_object()
    try:
        work(case, user, utcnow())
    except DomainError as error:
        db.session.rollback()
        case = _case(case_id)
        message = str(ERROR_TEXT.get(error.code, error.message))
        return _detail(case, error=message, status=error.status, form=request.form)
    db.session.commit()
    flash(done_message(case) if callable(done_message) else done_message, "success")
    return redirect(url_for("cx.case_detail", case_id=case_id), code=303)


@bp.post("/cases/<int:case_id>/acknowledge")
@roles_required(*CX_ROLES)
def case_acknowledge(case_id):
    return _act(
        case_id,
        lambda case, user, now: cases.acknowledge(case, actor=user, now=now),
        _("You have taken the case."),
    )


@bp.post("/cases/<int:case_id>/contact")
@roles_required(*CX_ROLES)
def case_contact(case_id):
    form = request.form
    reached = form.get("reached")
    if reached not in {"yes", "no"}:
        return _detail(
            _case(case_id), error=_("Say whether the customer was reached."), status=422, form=form
        )
    return _act(
        case_id,
        lambda case, user, now: cases.log_contact(
            case,
            actor=user,
            now=now,
            reached=reached == "yes",
            channel=form.get("channel", ""),
            note=form.get("note"),
        ),
        _("The contact attempt is logged."),
    )


@bp.post("/cases/<int:case_id>/note")
@roles_required(*CX_ROLES)
def case_note(case_id):
    return _act(
        case_id,
        lambda case, user, now: cases.add_note(
            case, actor=user, now=now, note=request.form.get("note", "")
        ),
        _("The note is added."),
    )


@bp.post("/cases/<int:case_id>/reassign")
@roles_required(*CX_ROLES)
def case_reassign(case_id):
    form = request.form
    to_user = None
    raw = form.get("to_user", "")
    if raw.isdigit():
        to_user = db.session.get(User, int(raw))
    if raw and to_user is None:
        return _detail(_case(case_id), error=_("There is no such person."), status=422, form=form)
    return _act(
        case_id,
        lambda case, user, now: cases.reassign(
            case,
            actor=user,
            now=now,
            to_user=to_user,
            department=form.get("department") if to_user is None else None,
            note=form.get("note"),
        ),
        _("The case is reassigned."),
    )


@bp.post("/cases/<int:case_id>/resolve")
@roles_required(*CX_ROLES)
def case_resolve(case_id):
    form = request.form
    return _act(
        case_id,
        lambda case, user, now: cases.resolve(
            case,
            actor=user,
            now=now,
            root_cause=form.get("root_cause") or None,
            reason_code=form.get("reason_code") or None,
            action_taken=form.get("action_taken"),
        ),
        lambda case: (
            _("The case is resolved. The customer will get the short recovery survey.")
            if cases.recovery_reachable(case)
            else _(
                "The case is resolved. The customer left no contact details for the "
                "recovery survey."
            )
        ),
    )
