"""A branch's page on a phone (`/b/<code>`), the arrival scan at its entrance
(`/b/<code>/here?k=...`) and the printable poster with both QR codes (`/b/<code>/poster`)."""

from __future__ import annotations

import math

from flask import current_app, flash, redirect, request, url_for
from flask_babel import force_locale
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
from ..web.views import branch_card
from . import bp
from .busy import busy_context
from .common import (
    current_lang,
    find_branch,
    find_ticket,
    joined_tokens,
    not_found,
    page,
    public_url,
    speak_branch_language,
)
from .messages import message_for

BAD_KEY = _l(
    "This QR code is not the one at this branch's entrance. Scan the poster at the entrance "
    "again, or ask our staff for help."
)
BAD_KEY_CODES = {"wrong_arrival_key"}


def unknown_branch():
    return not_found(_("There is no such branch. Check the link or the QR code."))


def minutes(seconds: int | None) -> int | None:
    return None if seconds is None else max(1, math.ceil(seconds / 60))


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
                "wait_min": minutes(queue["estimated_wait_s"]),
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
    return page("mobile/here.html", 429, branch=branch, tickets=[], error=message)


@bp.get("/b/<code>/here")
@limiter.limit(_ticket_limit, on_breach=_too_many_scans)
def here(code):
    """The entrance QR poster: "I'm here" for the tickets this phone joined remotely."""
    branch = find_branch(code)
    if branch is None:
        return unknown_branch()
    speak_branch_language(branch)
    key = request.args.get("k", "")[:128]
    tickets = []
    for token in joined_tokens():
        ticket = find_ticket(token)
        if ticket is not None and ticket.branch_id == branch.id and ticket.is_active:
            tickets.append(ticket)
    pending = [t for t in tickets if t.source == Source.MOBILE and not t.arrival_confirmed]
    if not tickets:
        return page("mobile/here.html", branch=branch, tickets=[], error=None)
    if pending:
        try:
            now = utcnow()
            for ticket in pending:
                remote.confirm_arrival(ticket, key=key, now=now)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            message = (
                BAD_KEY if exc.code in BAD_KEY_CODES else _("We could not confirm your arrival.")
            )
            return page(
                "mobile/here.html", exc.status, branch=branch, tickets=tickets, error=message
            )
        flash(_("Thank you: you are here. Your ticket will be called."), "info")
    return redirect(url_for("mobile.track", token=tickets[0].token), 303)


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
