"""A branch's page on a phone (`/b/<code>`), the arrival scan at its entrance
(`/b/<code>/here?k=...`) and the printable poster with both QR codes (`/b/<code>/poster`).

The arrival scan confirms at once the remote tickets this phone joined. When the phone also
holds an appointment of the branch (booked or opened on it), nothing happens at once: the page
offers each thing to check in as a form (`POST /b/<code>/here`, with the poster's key), see
`arrival.py`."""

from __future__ import annotations

from babel.dates import format_datetime, format_time
from flask import current_app, flash, redirect, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..accounts.models import Role
from ..auth.access import branch_access, roles_required
from ..core.errors import DomainError
from ..core.types import utcnow
from ..extensions import db, limiter
from ..kiosk.qr import qr_svg
from ..realtime.payloads import service_queues
from ..tickets import remote
from ..tickets.models import Source
from ..waits.present import wait_text
from ..web.views import branch_card
from . import arrival, bp
from .busy import busy_context
from .common import (
    MAX_TOKEN,
    appointment_ids,
    current_lang,
    find_branch,
    find_ticket,
    joined_tokens,
    not_found,
    page,
    public_url,
    speak_branch_language,
)
from .messages import BAD_KEY, check_in_message, message_for

BAD_KEY_CODES = {"wrong_arrival_key"}
ARRIVED = _l("Thank you: you are here. Your ticket will be called.")
# an appointment checked in on the phone: on time, after its window (the branch queues it as a
# walk-in), or once more (the ticket of the first check-in)
CHECKED_IN = _l("You are checked in. You will be called around the time of your appointment.")
CHECKED_IN_LATE = _l(
    "You are checked in after your time: you are queued like a customer without an appointment."
)
CHECKED_IN_AGAIN = _l("You were already checked in: here is your ticket.")


def unknown_branch():
    return not_found(_("There is no such branch. Check the link or the QR code."))


def service_rows(branch, now, lang: str) -> list[dict]:
    """Each active service: its name, how many wait, the estimated wait of a ticket taken now,
    and whether it takes remote tickets now (and why not)."""
    queues = {q["code"]: q for q in service_queues(db.session, branch)}
    rows = []
    for service in branch.services:
        queue = queues.get(service.code)
        if queue is None:  # inactive
            continue
        intake = remote.intake(branch, service, now=now)
        rows.append(
            {
                "code": service.code,
                "name": service.display_name(lang),
                "waiting": queue["waiting"],
                "wait_text": wait_text(queue),  # the estimator's range, "10-15 min" (waits/)
                "open_counters": queue["open_counters"],
                "intake_open": intake.open,
                "intake_reason": intake.reason,
                "intake_message": None if intake.open else message_for(intake.reason),
            }
        )
    return rows


@bp.get("/b/<code>")
def branch(code):
    """Name, address, today's hours, each service's queue now, book or join, busy hours."""
    branch = find_branch(code)
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    now = utcnow()
    lang = current_lang()
    services = service_rows(branch, now, lang)
    return page(
        "mobile/branch.html",
        branch=branch,
        card=branch_card(branch, now),
        services=services,
        can_join=any(s["intake_open"] for s in services),
        **busy_context(branch, now, request.args.get("service")),
    )


def _ticket_limit() -> str:
    return current_app.config["REMOTE_TICKET_RATE_LIMIT"]


def _too_many_scans(_limit):
    branch = find_branch((request.view_args or {}).get("code", ""))
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    message = _("Too many tries. Wait a minute and try again.")
    return page("mobile/here.html", 429, branch=branch, tickets=[], appointments=[], error=message)


def _held_tickets(branch) -> list:
    """The active tickets of this branch that this phone joined remotely, newest first."""
    tickets = []
    for token in joined_tokens():
        ticket = find_ticket(token)
        if ticket is not None and ticket.branch_id == branch.id and ticket.is_active:
            tickets.append(ticket)
    return tickets


def _awaiting(ticket) -> bool:
    return ticket.source == Source.MOBILE and not ticket.arrival_confirmed


def _arrival_page(branch, key: str, now, status: int = 200, *, error=None):
    """What this phone can do at the entrance: check in its appointments, confirm its remote
    tickets. Without the poster's `key` (or with a wrong one) only links to the tickets."""
    tickets = _held_tickets(branch)
    appointments = []
    if not remote.check_arrival_key(branch, key):
        key = ""
    else:
        appointments = arrival.held_appointments(
            branch, appointment_ids(), now=now, lang=current_lang()
        )
    return page(
        "mobile/here.html",
        status,
        branch=branch,
        key=key,
        tickets=tickets,
        awaiting=[t for t in tickets if _awaiting(t)] if key else [],
        appointments=appointments,
        error=error,
    )


@bp.get("/b/<code>/here")
@limiter.limit(_ticket_limit, on_breach=_too_many_scans)
def here(code):
    """The entrance QR poster: "I'm here" for the tickets this phone joined remotely; with an
    appointment this phone booked, the choice of what to check in (`here_confirm`)."""
    branch = find_branch(code)
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    key = request.args.get("k", "")[:128]
    now = utcnow()
    tickets = _held_tickets(branch)
    appointments = arrival.held_appointments(
        branch, appointment_ids(), now=now, lang=current_lang()
    )
    if not tickets and not appointments:
        return page("mobile/here.html", branch=branch, tickets=[], appointments=[], error=None)
    if appointments:  # a choice for the customer: nothing changes before it is made
        if not remote.check_arrival_key(branch, key):
            return _arrival_page(branch, key, now, 403, error=BAD_KEY)
        return _arrival_page(branch, key, now)
    pending = [t for t in tickets if _awaiting(t)]
    if pending:
        try:
            for ticket in pending:
                remote.confirm_arrival(ticket, key=key, now=now)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            message = (
                BAD_KEY if exc.code in BAD_KEY_CODES else _("We could not confirm your arrival.")
            )
            return page(
                "mobile/here.html",
                exc.status,
                branch=branch,
                tickets=tickets,
                awaiting=[],
                appointments=[],
                error=message,
            )
        flash(str(ARRIVED), "info")
    return redirect(url_for("mobile.track", token=tickets[0].token), 303)


@bp.post("/b/<code>/here")
@limiter.limit(_ticket_limit, on_breach=_too_many_scans)
def here_confirm(code):
    """The choice made on the arrival page (with its CSRF token and the poster's key): check
    in an appointment of this phone (`appointment=<id>`, the kiosk's rules) or confirm a
    remote ticket (`ticket=<token>`); then its tracking page."""
    branch = find_branch(code)
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    key = request.form.get("k", "")[:128]
    now = utcnow()
    raw_id = request.form.get("appointment", "")[:12]
    if raw_id:
        appointment_id = int(raw_id) if raw_id.isdigit() else None
        if appointment_id not in appointment_ids():
            return _arrival_page(branch, key, now, 404, error=check_in_message("unknown_booking"))
        try:
            done = arrival.check_in_here(branch, appointment_id, key=key, now=now)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return _arrival_page(
                branch, key, now, exc.status, error=_check_in_error(branch, exc, now)
            )
        if done.repeated:
            flash(str(CHECKED_IN_AGAIN), "info")
        else:
            flash(str(CHECKED_IN_LATE if done.late else CHECKED_IN), "info")
        return redirect(url_for("mobile.track", token=done.ticket.token), 303)
    token = request.form.get("ticket", "")[:MAX_TOKEN]
    ticket = find_ticket(token) if token in joined_tokens() else None
    if ticket is None or ticket.branch_id != branch.id:
        return _arrival_page(branch, key, now, 404, error=_("We could not confirm your arrival."))
    try:
        remote.confirm_arrival(ticket, key=key, now=now)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        message = BAD_KEY if exc.code in BAD_KEY_CODES else _("We could not confirm your arrival.")
        return _arrival_page(branch, key, now, exc.status, error=message)
    flash(str(ARRIVED), "info")
    return redirect(url_for("mobile.track", token=ticket.token), 303)


def _check_in_error(branch, exc: DomainError, now) -> str:
    """Why the appointment was not checked in; too early says from when (today: the time;
    another day: the day and the time)."""
    opens_at = getattr(exc, "opens_at", None)
    if exc.code != "too_early" or opens_at is None:
        return check_in_message(exc.code)
    opens = branch.local(opens_at)
    locale = get_locale()
    if opens.date() == branch.local(now).date():
        when = format_time(opens, "short", locale=locale)
    else:
        when = format_datetime(opens, "EEEE d MMMM, HH:mm", locale=locale)
    return check_in_message(exc.code, time=when.replace("\u202f", " "))


@bp.get("/b/<code>/poster")
@roles_required(Role.BRANCH_MANAGER, Role.ADMIN)
def poster(code):
    """An A4 poster for the entrance, in the branch's language: join the queue, and "I'm
    here" (the arrival key is the branch's secret, so only its managers print it)."""
    branch = find_branch(code)
    branch_access(branch)
    join_url = public_url(url_for("mobile.join", code=branch.code))
    here_url = public_url(url_for("mobile.here", code=branch.code, k=remote.arrival_key(branch)))
    with force_locale(branch.locale):
        html_join = qr_svg(join_url, label=_("QR code to join the queue from your phone"))
        html_here = qr_svg(here_url, label=_("QR code to confirm that you are here"))
        return page(
            "mobile/poster.html",
            branch=branch,
            join_url=join_url,
            here_url=here_url,
            join_qr=html_join,
            here_qr=html_here,
            poster_lang=branch.locale,
        )
