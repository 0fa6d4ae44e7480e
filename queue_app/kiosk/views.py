"""Kiosk pages: thin views over `kiosk.services` and `tickets.services`.

Every page after the first carries its language in the path (`/kiosk/en/...`), so the next
customer starts again in the branch's own language. Issuing is a plain form POST (with its CSRF
token and a one-time form key) answered by a redirect to the ticket screen (POST/redirect/GET);
JavaScript only adds the keypad, the automatic return to the start screen and printing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from itertools import groupby

import phonenumbers
from babel.dates import format_datetime, format_time
from flask import current_app, g, make_response, redirect, render_template, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError

from ..core.errors import DomainError, InvalidInput
from ..core.types import utcnow
from ..devices.models import DeviceKind
from ..devices.web import cookie_name, current_device, device_required
from ..extensions import db, limiter
from ..i18n import supported
from ..tickets import queries
from ..waits.text import range_text
from . import bp, services
from .links import ticket_tracking_url
from .qr import qr_svg

KIOSK = DeviceKind.KIOSK
IDENTIFY_MODES = ("phone", "number")

# segment codes of the demo network (and their English spellings) -> a heading in every language
SEGMENTS = {
    "transaksi": _l("Transactions"),
    "transactions": _l("Transactions"),
    "layanan": _l("Accounts, loans and cards"),
    "service": _l("Accounts, loans and cards"),
    "prioritas": _l("Priority banking"),
    "priority": _l("Priority banking"),
}

MESSAGES = {
    "unknown_service": _l("This service is not offered at this branch."),
    "service_unavailable": _l("This service is not available right now. Please choose another."),
    "branch_closed": _l("The branch is closed now: no tickets are issued."),
    "invalid_phone": _l("That is not a valid phone number. Please check it and try again."),
    "invalid_customer_number": _l(
        "That is not a valid customer number. Please check it and try again."
    ),
    "form_expired": _l("This screen has expired. Please start again."),
    "invalid_booking_code": _l("That is not a booking code. Please check it and try again."),
    "unknown_booking": _l(
        "We cannot find a booking with this code at this branch. Please check the code."
    ),
    "booking_not_active": _l(
        "This booking cannot be checked in: it was cancelled or its time has passed."
    ),
    # %(time)s: when check-in opens, in the branch's time ("09:30", or a day and time)
    "too_early": _l("It is too early to check in. You can check in from %(time)s."),
    "too_late": _l(
        "The time to check in for this booking has passed. Please take a ticket instead."
    ),
    "unknown_language": _l("This page does not exist."),
    "too_many": _l(
        "Too many tickets from this kiosk in a short time. Please wait a moment and try again."
    ),
}
FALLBACK_MESSAGE = _l("Something went wrong. Please start again or ask our staff for help.")


# --- helpers -----------------------------------------------------------------------------


def _default_lang() -> str:
    languages = supported()
    branch = g.device.branch if getattr(g, "device", None) is not None else None
    if branch is not None and branch.locale in languages:
        return branch.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _settings() -> dict:
    return {
        "idle_return_s": current_app.config["KIOSK_IDLE_RETURN_S"],
        "ticket_return_s": current_app.config["KIOSK_TICKET_RETURN_S"],
        "start_refresh_s": current_app.config["KIOSK_START_REFRESH_S"],
    }


def _switch_urls(lang: str) -> list[tuple[str, str]]:
    """The same screen in the other languages (after a POST: the service screen)."""
    args = request.view_args or {}
    if "lang" not in args:  # the start screen: straight to the services in another language
        return [
            (other, url_for("kiosk.choose_service", lang=other))
            for other in supported()
            if other != lang
        ]
    urls = []
    for other in supported():
        if other == lang:
            continue
        if request.method == "GET":
            query = {k: v for k, v in request.args.items() if k == "by"}
            urls.append((other, url_for(request.endpoint, **{**args, "lang": other, **query})))
        else:
            urls.append((other, url_for("kiosk.choose_service", lang=other)))
    return urls


def _page(lang: str, template: str, status: int = 200, **context):
    """Render a kiosk page in `lang`; kiosk pages are never cached."""
    with force_locale(lang):
        html = render_template(
            template,
            lang=lang,
            switch_urls=_switch_urls(lang),
            is_start=request.endpoint == "kiosk.start",
            branch=g.device.branch if getattr(g, "device", None) is not None else None,
            kiosk=_settings(),
            **context,
        )
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _message(lang: str, code: str | None, status: int):
    with force_locale(lang):
        text = str(MESSAGES.get(code, FALLBACK_MESSAGE))
    return _page(lang, "kiosk/message.html", status, message=text, code=code)


def _closed(lang: str, status: int = 200):
    branch = g.device.branch
    local = branch.local(utcnow())
    with force_locale(lang):
        locale = get_locale()
        hours = [
            (format_time(a, "short", locale=locale), format_time(b, "short", locale=locale))
            for a, b in branch.hours_on(local.date())
        ]
    return _page(lang, "kiosk/closed.html", status, hours_today=hours, closed_screen=True)


def _checked_lang(lang: str):
    return lang if lang in supported() else None


def _segment_label(segment: str | None) -> str:
    if not segment:
        return ""
    label = SEGMENTS.get(segment.strip().lower())
    return str(label) if label is not None else segment.replace("_", " ").capitalize()


# --- pages -------------------------------------------------------------------------------


@bp.get("/")
@device_required(KIOSK)
def start():
    """Choose a language (the screen speaks the branch's language)."""
    lang = _default_lang()
    if not services.is_open(g.device.branch, utcnow()):
        return _closed(lang)
    return _page(lang, "kiosk/start.html")


@bp.get("/<lang>/")
@device_required(KIOSK)
def choose_service(lang):
    if not _checked_lang(lang):
        return _message(_default_lang(), "unknown_language", 404)
    branch = g.device.branch
    if not services.is_open(branch, utcnow()):
        return _closed(lang)
    offered = services.offered_services(branch)
    with force_locale(lang):
        groups = [
            (_segment_label(segment), list(items))
            for segment, items in groupby(offered, key=lambda s: s.segment or "")
        ]
    # a segment that comes back later in the order joins its first group
    merged: dict[str, list] = {}
    for label, items in groups:
        merged.setdefault(label, []).extend(items)
    return _page(
        lang,
        "kiosk/services.html",
        groups=list(merged.items()),
        waiting=services.waiting_counts(branch),
    )


@bp.get("/<lang>/service/<code>")
@device_required(KIOSK)
def identify(lang, code):
    """Optionally say who you are (phone number or customer number), or skip."""
    if not _checked_lang(lang):
        return _message(_default_lang(), "unknown_language", 404)
    branch = g.device.branch
    if not services.is_open(branch, utcnow()):
        return _closed(lang)
    try:
        service = services.kiosk_service(branch, code)
    except DomainError as exc:
        return _message(lang, exc.code, exc.status)
    mode = request.args.get("by")
    return _identify_page(lang, service, mode if mode in IDENTIFY_MODES else None)


def _identify_page(lang, service, mode, *, status=200, error=None, value=""):
    branch = g.device.branch
    calling_code = phonenumbers.country_code_for_region(branch.country) or None
    return _page(
        lang,
        "kiosk/identify.html",
        status,
        service=service,
        mode=mode,
        form_key=services.new_form_key(),
        calling_code=calling_code,
        error=error,
        value=value,
    )


def _kiosk_limit() -> str:
    return current_app.config["KIOSK_RATE_LIMIT"]


def _kiosk_key() -> str:
    """Limits count per kiosk (its device cookie, hashed: no token in the limit storage), not
    per address: a branch's kiosks often share one. No cookie: the address."""
    token = request.cookies.get(cookie_name(KIOSK))
    if token:
        return "kiosk:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "kiosk-addr:" + (request.remote_addr or "")


def _too_many(_limit_hit):
    lang = (request.view_args or {}).get("lang", "")
    return _message(lang if _checked_lang(lang) else _default_lang(), "too_many", 429)


@bp.post("/<lang>/tickets")
@limiter.limit(_kiosk_limit, key_func=_kiosk_key, on_breach=_too_many)
@device_required(KIOSK)
def issue(lang):
    """Issue the ticket of a form (once), then show it: POST/redirect/GET."""
    if not _checked_lang(lang):
        return _message(_default_lang(), "unknown_language", 404)
    form = request.form
    mode = form.get("by") if form.get("by") in IDENTIFY_MODES else None
    try:
        issued = services.issue_once(
            g.device,
            service_code=form.get("service"),
            form_key=form.get("form_key"),
            now=utcnow(),
            phone=form.get("phone") if mode == "phone" else None,
            customer_number=form.get("customer_number") if mode == "number" else None,
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if isinstance(exc, InvalidInput) and exc.code in {
            "invalid_phone",
            "invalid_customer_number",
        }:
            # the same screen again, with the message and what was typed, to correct it
            service = services.kiosk_service(g.device.branch, form.get("service"))
            with force_locale(lang):
                error = str(MESSAGES[exc.code])
            value = form.get("phone" if mode == "phone" else "customer_number", "")[:40]
            return _identify_page(lang, service, mode, status=422, error=error, value=value)
        if exc.code == "branch_closed":
            return _closed(lang, exc.status)
        return _message(lang, exc.code, exc.status)
    return redirect(url_for("kiosk.ticket", lang=lang, ticket_id=issued.ticket.id), 303)


@bp.get("/<lang>/ticket/<int:ticket_id>")
@device_required(KIOSK)
def ticket(lang, ticket_id):
    """The ticket: number, service, people ahead, estimated wait, QR code, print."""
    if not _checked_lang(lang):
        return _message(_default_lang(), "unknown_language", 404)
    now = utcnow()
    ttl = timedelta(seconds=current_app.config.get("KIOSK_TICKET_SCREEN_TTL_S", 180))
    shown = services.recent_ticket(g.device, ticket_id, now=now, ttl=ttl)
    if shown is None:  # an old ticket (or another kiosk's): its QR code is not for everyone
        return redirect(url_for("kiosk.start"), 303)
    return _page(lang, "kiosk/ticket.html", **_ticket_context(lang, shown))


def _ticket_context(lang: str, shown) -> dict:
    """What `kiosk/ticket.html` shows of a ticket (also the booking check-in's answer)."""
    position, wait_s = queries.standing(shown)
    # the estimator's range ("8-9 min", waits/text.py), None: not known yet
    estimate = queries.ticket_estimate(shown) if wait_s is not None else None
    branch = g.device.branch
    url = ticket_tracking_url(shown.token)
    with force_locale(lang):
        from flask_babel import gettext

        return {
            "ticket": shown,
            "tracking_url": url,
            "ahead": None if position is None else position - 1,
            "wait_text": None if estimate is None else range_text(estimate),
            "issued_at": format_datetime(
                branch.local(shown.issued_at), "medium", locale=get_locale()
            ),
            "service_name": shown.service.display_name(lang),
            "qr": qr_svg(url, label=gettext("QR code to follow your ticket on your phone")),
        }


@bp.route("/<lang>/booking", methods=["GET", "POST"])
@limiter.limit(_kiosk_limit, key_func=_kiosk_key, methods=["POST"], on_breach=_too_many)
@device_required(KIOSK)
def booking(lang):
    """Check in an appointment by its booking code or QR code, and show its ticket.

    The answer to the POST is the ticket screen itself (a repeated POST, a reload, answers the
    same ticket: a booking is checked in once); a refusal shows the form again with why.
    """
    if not _checked_lang(lang):
        return _message(_default_lang(), "unknown_language", 404)
    if request.method == "GET":
        return _page(lang, "kiosk/booking.html", result=None, error=None, value="")
    text = request.form.get("code", "")
    try:
        result = services.check_in_booking(g.device.branch, text, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _page(
            lang,
            "kiosk/booking.html",
            exc.status,
            result=None,
            error=_booking_error(lang, exc),
            error_code=exc.code,
            value=text[:40],
        )
    branch = g.device.branch
    with force_locale(lang):
        due_at = format_time(branch.local(result.appointment.start), "short", locale=get_locale())
    return _page(
        lang,
        "kiosk/booking.html",
        result=result,
        due_at=due_at,
        **_ticket_context(lang, result.ticket),
    )


def _booking_error(lang: str, exc: DomainError) -> str:
    """Why a booking was not checked in, in the kiosk's language."""
    with force_locale(lang):
        message = MESSAGES.get(exc.code, FALLBACK_MESSAGE)
        if exc.code == "too_early" and getattr(exc, "opens_at", None) is not None:
            branch = g.device.branch
            opens = branch.local(exc.opens_at)
            locale = get_locale()
            if opens.date() == branch.local(utcnow()).date():
                when = format_time(opens, "short", locale=locale)
            else:
                when = format_datetime(opens, "EEEE d MMMM, HH:mm", locale=locale)
            return str(message) % {"time": when}
        return str(message)


@bp.errorhandler(CSRFError)
def csrf_failed(_exc):
    """A form without its token (or an old one): say so in the kiosk's language."""
    db.session.rollback()
    device = current_device(KIOSK)  # the check ran before the view: find the kiosk here
    if device is not None and device.is_paired:
        g.device = device
    lang = (request.view_args or {}).get("lang")
    if lang not in supported():
        lang = _default_lang()
    return _message(lang, "form_expired", 400)
