"""The tracking page a customer follows a ticket on (`/t/<token>`: the kiosk ticket's QR code,
the link after joining remotely) and leaving the queue from it.

The page is rendered whole on the server (it works without JavaScript: it reloads itself while
the ticket is active); `static/js/track.js` then follows the ticket live over the `/floor`
namespace with `auth: {"ticket": token}` through `static/js/floor.js`.
"""

from __future__ import annotations

from babel.dates import format_time
from flask import current_app, flash, redirect, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..core.errors import DomainError
from ..core.types import utcnow
from ..extensions import db, limiter
from ..realtime.payloads import ticket_view
from ..tickets import remote
from ..tickets.models import JourneyEvent, Source, TicketStatus
from ..waits.present import range_patterns, wait_text
from . import bp
from .common import (
    find_ticket,
    not_found,
    page,
    remember_joined,
    speak_branch_language,
)

# what the page says for each state of the ticket (the script shows the same texts live)
STATUS_TEXT = {
    "waiting": _l("You are in the queue"),
    "called": _l("It is your turn!"),
    "serving": _l("You are being served"),
    "held": _l("On hold: our staff will call you again"),
    "finished": _l("Your visit is finished. Thank you for coming!"),
    "no_show": _l("You were called but did not come to the counter."),
    "cancelled": _l("This ticket is cancelled: you are no longer in the queue."),
    "transferred": _l("You were sent on to another service."),
}
# a remote ticket whose turn came too often before its customer confirmed arrival
EXPIRED = _l("Your ticket expired: your turn came before you confirmed at the entrance.")
MOVED_BACK = _l(
    "Your turn came before you confirmed that you are here: your ticket moved back a few places."
)
# %(counter)s: the counter's name, e.g. "Loket 3"
GO_TO = _l("Please go to %(counter)s")
SERVED_AT = _l("At %(counter)s")
# the browser tab's title while the ticket is called; %(number)s the ticket, %(counter)s where
CALLED_TITLE = _l("Your turn: %(number)s to %(counter)s")
REFRESH_S = 30  # without JavaScript, an active ticket's page reloads itself this often
LEAVABLE = {TicketStatus.WAITING}  # tickets/services.py leave_queue
CANNOT_LEAVE = _l("This ticket can no longer leave the queue.")


def _unknown():
    return not_found(
        _("We cannot find this ticket. Check the link, or scan the QR code on your ticket again.")
    )


def awaiting_arrival(ticket) -> bool:
    """A remote ticket that must still be confirmed at the entrance to be called."""
    return ticket.source == Source.MOBILE and not ticket.arrival_confirmed


def expired(ticket) -> bool:
    """A remote ticket cancelled because its customer never confirmed arrival in time."""
    if ticket.status != TicketStatus.CANCELLED or ticket.source != Source.MOBILE:
        return False
    data = db.session.scalar(
        select(JourneyEvent.data)
        .where(JourneyEvent.ticket_id == ticket.id, JourneyEvent.kind == "cancel")
        .order_by(JourneyEvent.seq.desc())
        .limit(1)
    )
    return (data or {}).get("reason") == "not_arrived"


def arrival_policy(branch) -> str:
    """What happens to a remote ticket whose turn comes before its customer confirmed."""
    if branch.remote_move_back_limit <= 0:
        return _("If your turn comes before you have confirmed, your ticket expires.")
    return ngettext(
        "If your turn comes before you have confirmed, your ticket moves back %(places)d "
        "places, at most %(num)d time; after that it expires.",
        "If your turn comes before you have confirmed, your ticket moves back %(places)d "
        "places, at most %(num)d times; after that it expires.",
        branch.remote_move_back_limit,
        places=branch.remote_move_back_places,
    )


def _rate_link(ticket):
    from ..feedback.web import rate_link  # "Rate your visit" (feedback/web.py)

    return rate_link(ticket)


def _context(ticket) -> dict:
    view = ticket_view(ticket)
    branch = ticket.branch
    locale = get_locale()
    lang = locale.language if locale else branch.locale
    counter = view["counter"]["name"] if view.get("counter") else None
    texts = {
        "status": {k: str(v) for k, v in STATUS_TEXT.items()},
        "go_to": str(GO_TO),
        "served_at": str(SERVED_AT),
        "called_title": str(CALLED_TITLE),
        "ahead_none": _("None: you are next"),
        "wait_unknown": _("not known yet"),
        "wait_range": range_patterns(),
        "offline": _("Connection lost: reconnecting…"),
        "online": _("Live: this page updates by itself"),
        "refused": _("This page no longer updates. Reload it."),
        "expired": str(EXPIRED),
        "moved_back": str(MOVED_BACK),
    }
    status_text = texts["status"].get(view["status"], "")
    if expired(ticket):
        status_text = texts["expired"]
    return {
        "ticket": ticket,
        "branch": branch,
        "view": view,
        "status": view["status"],
        "service_name": ticket.service.display_name(lang),
        "ahead": None if view["position"] is None else view["position"] - 1,
        "wait_text": wait_text(view),  # "10-15 min": the estimator's range (waits/)
        "counter_name": counter,
        "texts": texts,
        "status_text": status_text,
        "issued_at": format_time(branch.local(ticket.issued_at), "short", locale=locale),
        "awaiting_arrival": awaiting_arrival(ticket),
        "arrival_policy": arrival_policy(branch),
        "can_leave": ticket.status in LEAVABLE,
        "rate_url": _rate_link(ticket),
        "refresh_s": REFRESH_S if ticket.is_active else None,
        "lang": lang,
    }


@bp.get("/t/<token>")
def track(token):
    ticket = find_ticket(token)
    if ticket is None:
        return _unknown()
    speak_branch_language(ticket.branch)
    if awaiting_arrival(ticket):
        # the link from the message may open in another browser than the one that joined:
        # holding the token is enough for the entrance poster to confirm this ticket
        remember_joined(ticket.token)
    return page("mobile/track.html", **_context(ticket))


def _ticket_limit() -> str:
    return current_app.config["REMOTE_TICKET_RATE_LIMIT"]


def _too_many(_limit):
    ticket = find_ticket((request.view_args or {}).get("token", ""))
    if ticket is None:
        return _unknown()
    speak_branch_language(ticket.branch)
    return page(
        "mobile/track.html",
        429,
        error=_("Too many tries. Wait a minute and try again."),
        **_context(ticket),
    )


@bp.route("/t/<token>/leave", methods=["GET", "POST"])
@limiter.limit(_ticket_limit, methods=["POST"], on_breach=_too_many)
def leave(token):
    """GET: are you sure? POST (with its CSRF token): leave the queue, back to the ticket."""
    ticket = find_ticket(token)
    if ticket is None:
        return _unknown()
    speak_branch_language(ticket.branch)
    if request.method == "GET":
        if ticket.status not in LEAVABLE:
            return redirect(url_for("mobile.track", token=token), 303)
        return page("mobile/leave.html", **_context(ticket))
    try:
        remote.leave(ticket, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        ticket = find_ticket(token)
        return page("mobile/track.html", exc.status, error=str(CANNOT_LEAVE), **_context(ticket))
    flash(_("You have left the queue."), "info")
    return redirect(url_for("mobile.track", token=token), 303)
