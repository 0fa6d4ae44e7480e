"""The customer's rating pages on a phone (blueprint `feedback_pages`).

- `/r/<signed>`: from the invitation's e-mail or SMS (`links.py`; channel `link`). The link
  names one visit step; an expired link, a forged one, a step not finished or already rated
  each get a page that says so in plain words, and nothing is recorded.
- `/t/<token>/rate`: from the QR code on the ticket and the tracking page (channel `qr`): the
  visit's last finished-served step without a response (`services.step_to_rate`); the form
  carries the step it shows, so the answer rates exactly that step.

Thin views: find the step, call `services.record_response` once, commit, redirect to the thank
you page (POST/redirect/GET). A refused answer shows the form again with the error next to its
question and what was chosen (422). The form is plain HTML: radio buttons styled as large
buttons, no JavaScript needed. The page speaks the customer's language, else the branch's (the
layout's switch wins).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core.errors import Conflict, DomainError, NotFound
from ..core.types import utcnow
from ..extensions import db, limiter
from ..mobile.common import current_lang, find_ticket, page
from ..tickets.models import Ticket, TicketStatus
from . import links, services
from .models import FeedbackChannel
from .questions import survey_for
from .wording import survey_view

bp = Blueprint("feedback_pages", __name__)

DEFAULT_RATE_LIMIT = "30 per minute"

ERRORS = {
    "invalid_nps": _l("Choose a number from 0 to 10."),
    "invalid_csat": _l("Choose a number from 1 to 5."),
    "invalid_ces": _l("Choose a number from 1 to 5."),
    "unknown_reason": _l("Choose reasons from the list."),
    "comment_too_long": _l("Your comment is too long: at most 2000 characters."),
    "invalid_comment": _l("This survey does not take a comment."),
    "empty_response": _l("Please answer at least one question."),
}

MESSAGES = {
    "already_rated": (
        _l("Already rated"),
        _l("This visit has already been rated. Thank you, we read every answer."),
    ),
    "not_finished": (
        _l("Not finished yet"),
        _l("You can rate your visit once you have been served. Come back to this page then."),
    ),
    "link_expired": (
        _l("This link has expired"),
        _l("Links to rate a visit are valid for a few days only, and this one is too old."),
    ),
    "invalid_link": (
        _l("This link does not work"),
        _l("Check that you opened the whole link from the message."),
    ),
    "not_found": (
        _l("Not found"),
        _l("We could not find this visit. Check the link or the QR code."),
    ),
    "too_many": (
        _l("Too many tries"),
        _l("Too many tries. Wait a minute and try again."),
    ),
}


def _limit() -> str:
    return current_app.config.get("FEEDBACK_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def _message(kind: str, status: int, *, ticket: Ticket | None = None):
    title, text = MESSAGES.get(kind, MESSAGES["not_found"])
    track = url_for("mobile.track", token=ticket.token) if ticket is not None else None
    return page(
        "feedback/phone/message.html",
        status,
        kind=kind,
        title=title,
        text=text,
        branch=ticket.branch if ticket is not None else None,
        track_url=track,
    )


def _too_many(_limit_hit):
    return _message("too_many", 429)


def _speak(ticket: Ticket) -> None:
    """The customer's language, else the branch's (an explicit choice wins, i18n.py)."""
    customer = ticket.visit.customer
    languages = current_app.config["LANGUAGES"]
    if customer is not None and customer.locale in languages:
        g.branch_locale = customer.locale
    else:
        g.branch_locale = ticket.branch.locale


def _score(name: str):
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    return int(raw) if raw.isdigit() and len(raw) <= 3 else raw  # the service refuses the rest


def _form_page(ticket: Ticket, action: str, *, status=200, errors=None, values=None):
    lang = current_lang()
    survey = survey_for(ticket.branch_id, ticket.service_id)
    return page(
        "feedback/phone/rate.html",
        status,
        ticket=ticket,
        branch=ticket.branch,
        service_name=ticket.service.display_name(lang),
        survey=survey_view(survey, ticket.branch.name),
        action=action,
        errors=errors or {},
        values=values or {},
        max_comment=services.MAX_COMMENT,
    )


def _rate(ticket: Ticket, *, channel: FeedbackChannel, action: str, thanks: str):
    """GET: the form (or why not). POST: record the answer, commit, go to the thank-you page."""
    if request.method == "GET":
        if not services.is_rateable(ticket):
            return _message("not_finished", 409, ticket=ticket)
        if services.existing_response(ticket.id) is not None:
            return _message("already_rated", 409, ticket=ticket)
        return _form_page(ticket, action)
    values = {
        "nps": request.form.get("nps", ""),
        "csat": request.form.get("csat", ""),
        "ces": request.form.get("ces", ""),
        "reasons": request.form.getlist("reasons"),
        "comment": request.form.get("comment", "")[: services.MAX_COMMENT + 100],
    }
    try:
        services.record_response(
            ticket,
            channel=channel,
            nps=_score("nps"),
            csat=_score("csat"),
            ces=_score("ces"),
            reasons=request.form.getlist("reasons")[:50],
            comment=request.form.get("comment"),
            locale=current_lang(),
            now=utcnow(),
        )
        db.session.commit()
    except services.InvalidAnswer as exc:
        db.session.rollback()
        field = exc.field or "_"
        errors = {field: str(ERRORS.get(exc.code, exc.message))}
        return _form_page(ticket, action, status=422, errors=errors, values=values)
    except Conflict as exc:
        db.session.rollback()
        return _message(exc.code, exc.status, ticket=ticket)
    return redirect(thanks, 303)


# --- the invitation's link -------------------------------------------------------------------


def _linked(signed: str):
    """(ticket, None) for a good link, else (None, the page that says what is wrong)."""
    try:
        return links.ticket_of(signed[:500], now=utcnow()), None
    except links.LinkExpired:
        return None, _message("link_expired", 410)
    except NotFound:
        return None, _message("invalid_link", 404)


@bp.route("/r/<signed>", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"], on_breach=_too_many)
def by_link(signed):
    ticket, refusal = _linked(signed)
    if ticket is None:
        return refusal
    _speak(ticket)
    return _rate(
        ticket,
        channel=FeedbackChannel.LINK,
        action=url_for(".by_link", signed=signed),
        thanks=url_for(".link_thanks", signed=signed),
    )


@bp.get("/r/<signed>/thanks")
def link_thanks(signed):
    ticket, refusal = _linked(signed)
    if ticket is None:
        return refusal
    _speak(ticket)
    return _thanks(ticket)


# --- the ticket's QR code and the tracking page ----------------------------------------------


def _step_arg(raw) -> int | None:
    return int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) <= 4 else None


@bp.route("/t/<token>/rate", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"], on_breach=_too_many)
def by_token(token):
    current = find_ticket(token)
    if current is None:
        return _message("not_found", 404)
    _speak(current)
    source = request.form if request.method == "POST" else request.args
    try:
        ticket = services.step_to_rate(current.visit_id, _step_arg(source.get("step")))
    except DomainError as exc:
        return _message(exc.code, exc.status, ticket=current)
    return _rate(
        ticket,
        channel=FeedbackChannel.QR,
        action=url_for(".by_token", token=token),
        thanks=url_for(".token_thanks", token=token),
    )


@bp.get("/t/<token>/rate/thanks")
def token_thanks(token):
    current = find_ticket(token)
    if current is None:
        return _message("not_found", 404)
    _speak(current)
    return _thanks(current)


def _thanks(ticket: Ticket):
    return page(
        "feedback/phone/thanks.html",
        branch=ticket.branch,
        track_url=url_for("mobile.track", token=ticket.token),
        title=_("Thank you!"),
    )


def rate_link(ticket: Ticket) -> str | None:
    """The "Rate your visit" link of the tracking page: the visit's current step finished
    served and not rated yet (a finished step is always the visit's last), else None."""
    if ticket.status != TicketStatus.FINISHED:
        return None
    if services.existing_response(ticket.id) is not None:
        return None
    return url_for("feedback_pages.by_token", token=ticket.token)
