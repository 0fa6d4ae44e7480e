"""Joining a branch's queue from a phone: choose a service, give a phone number or an e-mail
address (and consent), receive a one-time code, type it in, follow the ticket.

    GET/POST /b/<code>/join          -> tickets.remote.request_code
    GET/POST /b/<code>/join/verify   -> tickets.remote.join -> /t/<token>

The join waiting for its code is kept in the session (branch, service, contact), so the code
page needs nothing but the code. The ticket's token is remembered in the session too: the QR
poster at the entrance confirms the arrival of the tickets this phone joined. Both POSTs are
rate-limited per address as in the API (`REMOTE_CODE_RATE_LIMIT`, `REMOTE_JOIN_RATE_LIMIT`);
the per-contact limits are the domain's (customers/verification.py).
"""

from __future__ import annotations

from flask import current_app, redirect, request, session, url_for

from ..core.errors import DomainError
from ..core.types import utcnow
from ..customers.verification import CodeRejected
from ..extensions import db, limiter
from ..kiosk.services import kiosk_service
from ..tickets import remote
from . import bp
from .branch import service_rows, unknown_branch
from .busy import busy_context
from .common import (
    PENDING_KEY,
    current_lang,
    find_branch,
    page,
    remember_joined,
    speak_branch_language,
)
from .messages import MESSAGES, RATE_LIMITED, message_for

MAX_CONTACT = 255
MAX_CODE_INPUT = 16


def _code_limit() -> str:
    return current_app.config["REMOTE_CODE_RATE_LIMIT"]


def _join_limit() -> str:
    return current_app.config["REMOTE_JOIN_RATE_LIMIT"]


def _client_ip() -> str:
    return request.remote_addr or ""


def _join_page(branch, status=200, *, error=None, form=None):
    now = utcnow()
    services = service_rows(branch, now, current_lang())
    return page(
        "mobile/join.html",
        status,
        branch=branch,
        services=services,
        can_join=any(s["intake_open"] for s in services),
        error=error,
        form=form or {"service": request.args.get("service", "")[:32]},
        **busy_context(branch, now, (form or {}).get("service") or request.args.get("service")),
    )


def _too_many_join(_limit):
    branch = find_branch((request.view_args or {}).get("code", ""))
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    return _join_page(branch, 429, error=str(RATE_LIMITED), form=_form_values())


def _form_values() -> dict:
    form = request.form
    return {
        "service": form.get("service", "")[:32],
        "contact": form.get("contact", "")[:MAX_CONTACT],
        "consent": form.get("consent") == "yes",
    }


@bp.route("/b/<code>/join", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], on_breach=_too_many_join)
def join(code):
    branch = find_branch(code)
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    if request.method == "GET":
        return _join_page(branch)
    values = _form_values()
    error = None
    if not values["service"]:
        error = "no_service"
    elif not values["contact"].strip():
        error = "no_contact"
    elif not values["consent"]:
        error = "no_consent"
    if error:
        return _join_page(branch, 422, error=str(MESSAGES[error]), form=values)
    try:
        service = kiosk_service(branch, values["service"])
        sent = remote.request_code(
            branch,
            service,
            contact=values["contact"].strip(),
            locale=current_lang(),
            ip=_client_ip(),
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _join_page(branch, exc.status, error=message_for(exc.code), form=values)
    session[PENDING_KEY] = {
        "branch": branch.code,
        "service": service.code,
        "contact": values["contact"].strip(),
        "masked": sent.masked,
    }
    return redirect(url_for("mobile.verify", code=branch.code), 303)


def _pending(branch) -> dict | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("branch") != branch.code:
        return None
    return pending


def _verify_page(branch, pending, status=200, *, error=None):
    service = next((s for s in branch.services if s.code == pending["service"]), None)
    return page(
        "mobile/verify.html",
        status,
        branch=branch,
        pending=pending,
        contact=pending.get("masked") or "",
        service_name=service.display_name(current_lang()) if service else "",
        error=error,
    )


def _too_many_verify(_limit):
    branch = find_branch((request.view_args or {}).get("code", ""))
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    pending = _pending(branch)
    if pending is None:
        return redirect(url_for("mobile.join", code=branch.code), 303)
    return _verify_page(branch, pending, 429, error=str(RATE_LIMITED))


@bp.route("/b/<code>/join/verify", methods=["GET", "POST"])
@limiter.limit(_join_limit, methods=["POST"], on_breach=_too_many_verify)
def verify(code):
    branch = find_branch(code)
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    pending = _pending(branch)
    if pending is None:  # nothing asked for yet (or another branch's): start again
        return redirect(url_for("mobile.join", code=branch.code), 303)
    if request.method == "GET":
        return _verify_page(branch, pending)
    typed = "".join(request.form.get("code", "")[:MAX_CODE_INPUT].split())
    if not typed:
        return _verify_page(branch, pending, 422, error=str(MESSAGES["wrong_code"]))
    try:
        service = kiosk_service(branch, pending["service"])
        ticket = remote.join(
            branch,
            service,
            contact=pending["contact"],
            code=typed,
            locale=current_lang(),
            ip=_client_ip(),
            now=utcnow(),
        )
        db.session.commit()
    except CodeRejected as exc:
        db.session.commit()  # the wrong try counts (customers/verification.py)
        return _verify_page(branch, pending, exc.status, error=message_for(exc.code))
    except DomainError as exc:
        db.session.rollback()
        return _verify_page(branch, pending, exc.status, error=message_for(exc.code))
    session.pop(PENDING_KEY, None)
    remember_joined(ticket.token)
    return redirect(url_for("mobile.track", token=ticket.token), 303)
