"""The audit log complete by construction: no view has to remember to write it.

- Every mutating request (POST, PUT, PATCH, DELETE) made by a member of staff (a signed-in
  session or an API bearer token: `g.user`) that commits writes one entry in the SAME
  transaction, just before the commit (`before_commit` of the request's session, like the
  journal, `tickets/journal.py`): the action and the entry commit together or not at all.
  A request that commits nothing changed nothing and leaves no entry.
- Every refusal (401 or 403 answered to a known member of staff, any method) is written after
  the request, in its own small transaction.
- Views may say more with `annotate(...)` (a better verb, the target, details); by default the
  action is the stable verb of `VERBS` (else the endpoint's name), the target and the branch
  come from the URL (`ticket_id`, `case_id`, `counter_id`, `code` ...).
- CLI commands that change accounts, tokens or customers' data record their own entries
  (`services.record(via="cli")`). The Socket.IO namespace changes no state (connect,
  disconnect, snapshot only), so it has nothing to record.
"""

from __future__ import annotations

import logging

from flask import g, has_request_context, request
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..extensions import db
from . import services
from .models import FAILED, OK, REFUSED, VIA_API, VIA_PAGE

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DONE = "_audit_written"
_NOTE = "_audit_note"

# endpoint -> stable verb (what the entry's `action` says); others keep their endpoint's name
VERBS = {
    "auth.login": "auth.sign_in",
    "auth.logout": "auth.sign_out",
    "admin.pair": "device.pair",
    "admin.revoke": "device.revoke",
    "admin.save_branch_settings": "settings.change",
    "admin.create_alert_rule": "alert_rule.create",
    "admin.update_alert_rule": "alert_rule.change",
    "admin.delete_alert_rule": "alert_rule.delete",
    "settings.patch_settings": "settings.change",
    "alerts.create_rule": "alert_rule.create",
    "alerts.patch_rule": "alert_rule.change",
    "alerts.delete_rule": "alert_rule.delete",
    "alerts.acknowledge": "alert.acknowledge",
    "dashboard.acknowledge": "alert.acknowledge",
    "counter.open_counter": "counter.open",
    "counter.close_counter": "counter.close",
    "counter.pause_counter": "counter.pause",
    "counter.call_next": "ticket.call_next",
    "counters.open_counter": "counter.open",
    "counters.close_counter": "counter.close",
    "counters.pause_counter": "counter.pause",
    "counters.call_next": "ticket.call_next",
    "tickets.call": "ticket.call",
    "tickets.cancel": "ticket.cancel",
    "tickets.finish": "ticket.finish",
    "tickets.hold": "ticket.hold",
    "tickets.no_show": "ticket.no_show",
    "tickets.recall": "ticket.recall",
    "tickets.resume": "ticket.resume",
    "tickets.start": "ticket.start",
    "tickets.transfer": "ticket.transfer",
    "branches.issue_ticket": "ticket.issue",
    "cx.case_acknowledge": "case.acknowledge",
    "cx.case_contact": "case.log_contact",
    "cx.case_note": "case.note",
    "cx.case_reassign": "case.reassign",
    "cx.case_resolve": "case.resolve",
    "cases.acknowledge": "case.acknowledge",
    "cases.log_contact": "case.log_contact",
    "cases.add_note": "case.note",
    "cases.reassign": "case.reassign",
    "cases.resolve": "case.resolve",
    "appointments.book_appointment": "appointment.book",
    "appointments.cancel_appointment": "appointment.cancel",
    "appointments.reschedule_appointment": "appointment.reschedule",
    "appointments.check_in": "appointment.check_in",
}

# URL argument -> target type, most specific first
TARGETS = (
    ("ticket_id", "ticket"),
    ("case_id", "case"),
    ("alert_id", "alert"),
    ("rule_id", "alert_rule"),
    ("device_id", "device"),
    ("counter_id", "counter"),
)


def annotate(
    action: str | None = None,
    *,
    target_type: str | None = None,
    target_id=None,
    branch_id: int | None = None,
    **details,
) -> None:
    """Say more about the current request's action than its URL does (call from a view)."""
    note = g.setdefault(_NOTE, {})
    for key, value in (
        ("action", action),
        ("target_type", target_type),
        ("target_id", target_id),
        ("branch_id", branch_id),
    ):
        if value is not None:
            note[key] = value
    if details:
        note.setdefault("details", {}).update(details)


def principal():
    """The member of staff behind the request: a bearer token's user or the signed-in one."""
    user = g.get("user")
    if user is None:
        login_user = g.get("_login_user")  # set once anything asked for current_user
        if login_user is not None and getattr(login_user, "is_authenticated", False):
            user = login_user
    if user is None or not hasattr(user, "role"):
        return None
    return user


def _via() -> str:
    return VIA_API if request.path.startswith("/api/") else VIA_PAGE


def _action() -> str:
    endpoint = request.endpoint or "unknown"
    if endpoint == "counter.ticket_action":
        return f"ticket.{(request.view_args or {}).get('action', 'action')}"[:80]
    return VERBS.get(endpoint, endpoint)


def _model_for(kind: str):
    from ..alerts.models import Alert, AlertRule
    from ..branches.models import Counter
    from ..cases.models import Case
    from ..devices.models import Device
    from ..tickets.models import Ticket

    return {
        "ticket": Ticket,
        "case": Case,
        "alert": Alert,
        "alert_rule": AlertRule,
        "device": Device,
        "counter": Counter,
    }.get(kind)


def _target(session: Session) -> tuple[str | None, str | None, int | None]:
    """The target and the branch, from the URL's arguments (reading rows the request has
    mostly loaded already)."""
    args = request.view_args or {}
    target_type = target_id = branch_id = None
    for arg, kind in TARGETS:
        if isinstance(args.get(arg), int):
            target_type, target_id = kind, args[arg]
            break
    with session.no_autoflush:
        if target_type is not None:
            model = _model_for(target_type)
            row = session.get(model, target_id) if model is not None else None
            branch_id = getattr(row, "branch_id", None)
        code = args.get("code") or args.get("branch_code")
        if branch_id is None and isinstance(code, str):
            from ..branches.models import Branch

            branch_id = session.scalar(select(Branch.id).where(Branch.code == code))
            if target_type is None:
                target_type, target_id = "branch", code
    return target_type, (str(target_id) if target_id is not None else None), branch_id


def _body_details() -> dict:
    if request.is_json:
        body = request.get_json(silent=True)
        return services.field_details(body if isinstance(body, dict) else None)
    return services.field_details(request.form)


def _entry(session: Session, user, *, outcome: str, status: int | None = None):
    note = g.get(_NOTE, {})
    target_type, target_id, branch_id = _target(session)
    details = _body_details()
    details.update(note.get("details", {}))
    return services.record(
        note.get("action") or _action(),
        via=_via(),
        actor=user,
        target_type=note.get("target_type", target_type),
        target_id=note.get("target_id", target_id),
        branch_id=note.get("branch_id", branch_id),
        outcome=outcome,
        status=status,
        details=details,
        session=session,
    )


@event.listens_for(Session, "before_commit")
def _audit_request(session: Session) -> None:
    if session.in_nested_transaction() or not has_request_context():
        return
    if request.method not in MUTATING or g.get(_DONE):
        return
    registry = db.session.registry
    if not registry.has() or registry() is not session:
        return  # another session of the request (its own small unit of work)
    user = principal()
    if user is None:
        return
    g.setdefault(_DONE, True)
    session.info[_DONE] = True
    _entry(session, user, outcome=OK)


@event.listens_for(Session, "after_commit")
def _audit_committed(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_DONE, None)


@event.listens_for(Session, "after_rollback")
def _audit_rolled_back(session: Session) -> None:
    # the entry went with the rest: a later commit of the same request writes it again
    if session.in_nested_transaction() or not session.info.pop(_DONE, None):
        return
    if has_request_context():
        g.pop(_DONE, None)


def init_audit(app) -> None:
    """Refusals of known members of staff, each in its own small transaction; sign-ins (the
    sign-in page commits before the person is signed in, so the hook cannot see them)."""
    from flask_login import user_logged_in

    def _signed_in(_app, user=None, **_extra):
        if not has_request_context() or user is None:
            return
        try:
            g.setdefault(_DONE, True)
            _entry(db.session, user, outcome=OK)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not record the sign-in of %s", getattr(user, "username", "?"))

    user_logged_in.connect(_signed_in, app, weak=False)

    @app.after_request
    def _audit_refusal(response):
        if response.status_code not in (401, 403) or g.get(_DONE):
            return response
        user = principal()
        if user is None:
            return response
        try:
            session = db.session
            session.rollback()  # nothing of a refused request is kept
            g.setdefault(_DONE, True)
            _entry(session, user, outcome=REFUSED, status=response.status_code)
            session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not record the refusal of %s", request.path)
        return response


__all__ = ["FAILED", "OK", "REFUSED", "annotate", "init_audit", "principal"]
